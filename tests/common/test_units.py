"""The one mass parser and the one formatter: exact, rounded the same way for people and files."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.i18n import _, set_language, speaking
from common.service import ServiceThread
from common.units import (
    MassError,
    format_mass,
    format_mass_exact,
    format_number,
    kg_text,
    mass_mg,
    parse_mass_text,
)


def test_the_terminal_the_screen_and_a_csv_agree_on_every_mass() -> None:
    # the defect: a CSV truncated 1,234,567 mg to 1.234 while the terminal printed 1.235 kg
    assert kg_text(1_234_567) == "1.235"
    assert format_mass(1_234_567, lang="en") == "1.235 kg"
    assert format_mass(1_234_567, lang="fr") == "1,235 kg"
    assert kg_text(1_234_500) == "1.235"  # a half rounds up, as people and spreadsheets do
    assert kg_text(-1_234_500) == "-1.235"
    assert format_mass(1_234_567_000, lang="fr") == "1\u202f234,567 kg"
    assert format_mass(-400, lang="en") == "0.000 kg" and kg_text(-400) == "0.000"  # no "-0"


@given(st.integers(-(10**12), 10**12))
def test_csv_and_people_show_the_same_digits(mg: int) -> None:
    assert format_mass(mg, lang="en", group=False) == kg_text(mg) + " kg"
    assert format_mass(mg, lang="fr", group=False) == kg_text(mg).replace(".", ",") + " kg"


@pytest.mark.parametrize(
    ("text", "mg"),
    [("2,5 kg", 2_500_000), ("750g", 750_000), ("0.020 kg", 20_000), ("1 t", 10**9),
     ("3 lb", 1_360_777), (" 12 mg ", 12)],
)  # fmt: skip
def test_people_type_masses_with_their_unit(text: str, mg: int) -> None:
    assert parse_mass_text(text) == mg


@pytest.mark.parametrize("text", ["2,5", "kg", "1,2,3 kg", "1e3 kg", "two kg", "", "1.5 stone"])
def test_what_is_not_a_mass_says_how_to_write_one(text: str) -> None:
    set_language("fr")
    with pytest.raises(MassError, match="20 g"):
        parse_mass_text(text)


def test_scale_fields_are_exact_and_never_go_through_float() -> None:
    assert mass_mg(" +0012,50", "kg") == 12_500_000
    assert mass_mg("12:07.50", "lb:oz") == 5_655_730  # 12 × 453,592.37 + 7.5 × 28,349.523125
    assert mass_mg("0.1", "g") + mass_mg("0.2", "g") == mass_mg("0.3", "g")
    with pytest.raises(MassError):
        mass_mg(" +  1.0", "kg")  # a sign alone in the padding is noise, not a negative weight


def test_numbers_follow_the_language() -> None:
    assert format_number(1482.5, 1, "fr") == "1\u202f482,5"
    assert format_number(1482.5, 1, "en") == "1,482.5"
    assert format_number(Decimal("874.85"), 1, "en") == "874.9"
    assert format_number(-0.04, 1, "en") == "0.0"  # never "-0.0"


def test_a_language_set_for_one_context_leaves_the_others_alone() -> None:
    set_language("en")
    seen: list[str] = []
    inside = threading.Event()
    release = threading.Event()

    def request() -> None:
        with speaking("fr"):
            inside.set()
            release.wait(5)
            seen.append(_("unknown key (a typo?); allowed here: {allowed}"))

    thread = threading.Thread(target=request)
    thread.start()
    inside.wait(5)
    # while another thread renders in French, this one still speaks the process's English
    assert _("unknown key (a typo?); allowed here: {allowed}").startswith("unknown key")
    release.set()
    thread.join(5)
    assert seen and seen[0].startswith("clé inconnue")


def test_a_service_thread_starts_once_stops_by_its_event_and_reports_a_crash() -> None:
    ticks: list[int] = []
    crashed: list[BaseException] = []

    def body(stop: threading.Event) -> None:
        while not stop.wait(0.01):
            ticks.append(1)

    service = ServiceThread("t", body)
    service.start()
    service.start()  # a no-op while running
    assert service.running
    assert service.stop(5) and not service.running

    def broken(stop: threading.Event) -> None:
        raise RuntimeError("boom")

    failing = ServiceThread("t2", broken, crashed.append)
    failing.start()
    assert failing.stop(5)
    assert [str(e) for e in crashed] == ["boom"]


def test_a_technician_sees_every_digit_the_scale_sent() -> None:
    assert format_mass_exact(1_250_000, lang="fr") == "1,250 kg"
    assert format_mass_exact(12_500, lang="fr") == "0,0125 kg"
    assert format_mass_exact(2_500, lang="en") == "0.0025 kg"
    assert format_mass_exact(1, lang="en") == "0.000001 kg"
