"""Household profiles scanned at the counter: their tags go with the visit's weighings, for the
office's reports (``data.profile``), from the config or from the office's registry."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from station.config import ConfigError, parse_config
from station.outcomes import Outcome
from station.registry import RegistryBook
from station.sim import EXAMPLE_CONFIG
from sync.wire import Registry, encode
from tests.support.counter import english_counter, weigh, weighings
from tests.support.helpers import beneficiary

PROFILES = {
    "profiles": [
        {"code": "PROF-MONO", "tag": "single_parent", "name": "Parent isolé"},
        {"code": "PROF-ENC", "tag": "pregnant", "name": "Femme enceinte"},
    ]
}


def _profile(row: dict[str, object]) -> list[str] | None:
    data = json.loads(str(row["data"])) if row["data"] else {}
    return data.get("profile")


def test_profiles_scanned_before_or_during_a_visit_go_with_its_weighings(tmp_path: Path) -> None:
    with english_counter(tmp_path, PROFILES) as c:
        c.scan("PROF-MONO")  # before the beneficiary: kept for the visit that opens next
        assert c.next_result().text == "Household profile: Parent isolé"
        c.scan(beneficiary(1))
        assert c.next_result().outcome is Outcome.VISIT_OPENED
        c.scan("CAT-VET")
        assert c.next_result().outcome is Outcome.CATEGORY_SET
        assert weigh(c, "1.250").outcome is Outcome.RECORDED
        c.scan("PROF-ENC")  # during the visit: from the next weighing on
        assert c.next_result().outcome is Outcome.PROFILE_SET
        assert weigh(c, "2.000").outcome is Outcome.RECORDED
        c.scan(beneficiary(2))  # the next person starts without the previous one's profile
        assert c.next_result().outcome is Outcome.VISIT_CLOSED
        assert c.next_result().outcome is Outcome.VISIT_OPENED
        c.scan("CAT-VET")
        assert c.next_result().outcome is Outcome.CATEGORY_SET
        assert weigh(c, "0.500").outcome is Outcome.RECORDED
        rows = weighings(c)
    assert [_profile(r) for r in rows] == [["single_parent"], ["single_parent", "pregnant"], None]


def test_the_registry_brings_profiles_and_referrer_types(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with english_counter(tmp_path) as c:
        base = c.config
    registry = Registry(
        3,
        referrers=({"code": "014", "name": "Centre hospitalier", "type": "hospital"},),
        extra={"profiles": [{"code": "PROF-RET", "tag": "retired", "name": "Retraité"}]},
    )
    book = RegistryBook(base)  # the station's public way in (what the MQTT callback calls)
    applied = book.receive("all", encode(registry), persist=False)
    assert applied is not None
    # merged by code over the station's own lists (issue 13): 014 gains its type
    assert {r.code: r for r in applied.referrers}["014"].type == "hospital"
    assert "retired" in [p.tag for p in applied.profiles]
    clash = Registry(4, extra={"profiles": [{"code": "CAT-VET", "tag": "x", "name": "x"}]})
    with caplog.at_level(logging.WARNING, logger="station"):
        # a profile code that is already a category: refused, the lists in force kept
        assert book.receive("all", encode(clash), persist=False) is None
    assert "CAT-VET" in caplog.text


def test_a_bad_profile_in_the_config_is_one_clear_error() -> None:
    text = EXAMPLE_CONFIG.read_text(encoding="utf-8")
    text += '\n[[profiles]]\ncode = "PROF-X"\ntag = "Single Parent!"\nname = "x"\n'
    with pytest.raises(ConfigError) as err:
        parse_config(text, "station.toml")
    message = str(err.value)
    assert "profiles" in message and "tag" in message and "Traceback" not in message


def test_scanner_test_names_a_profile_code(tmp_path: Path) -> None:
    from station.cli.scanner import describe_code
    from station.codes import CodeBook

    with english_counter(tmp_path, PROFILES) as c:
        config = c.config
    seen = describe_code(CodeBook(config), config, "PROF-ENC")
    assert seen["kind"] == "profile" and seen["tag"] == "pregnant"
    assert seen["text"] == "household profile “Femme enceinte” (tag pregnant)"
