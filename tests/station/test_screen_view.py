"""The counter screen's view (station/screen/view.py) from snapshots, without a browser: the hint
follows the last outcome and the scale, misread codes are masked in either language, a container
not yet on the pan shows no negative weight, numbers are French. The fast tier's share of what
test_screen_visit.py walks in Chromium."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from common.i18n import set_language
from drivers.base import Reading
from station.config import Config
from station.loop import Item, Snapshot, mask
from station.outcomes import Outcome, Result, describe
from station.screen.view import build, catalogue
from station.sim import example_config
from tests.support.helpers import beneficiary

CODE = beneficiary(123456)
MISREAD = CODE[:-1] + str((int(CODE[-1]) + 1) % 10)


@pytest.fixture(autouse=True)
def french() -> Iterator[None]:
    set_language("fr")
    yield
    set_language("fr")


@pytest.fixture
def config() -> Config:
    return example_config({"station": {"language": "fr"}})


def fr(message: str) -> str:
    return catalogue("fr").gettext(message)


def _result(outcome: Outcome, detail: str = "", net_mg: int | None = None) -> Result:
    return Result(outcome, describe(outcome, detail), None, net_mg, 1.0, 2.0)


def _snap(**fields: Any) -> Snapshot:
    base: dict[str, Any] = {
        "scale_ok": True,
        "weight": Reading(0, "kg", True),
        "beneficiary": mask(CODE),
        "category": "CAT-VET",
        "category_name": "Vêtements",
        "clock_synced": True,
    }
    return Snapshot(**{**base, **fields})


def _view(snap: Snapshot, config: Config, lang: str = "fr") -> dict[str, Any]:
    return build(snap, config, lang, sync_enabled=True)


PUT_ON = "Put the item on the scale, then press the button"
TAKE_OFF = "Take the item off the scale, then put the next one on"
NO_SCALE = "The scale does not answer: check that it is on and plugged in"
ITEM = Item(7, 1_250_000, "CAT-VET")


@pytest.mark.parametrize(
    ("fields", "hint", "tone"),
    [
        ({"beneficiary": None}, "Scan the beneficiary's code", "ok"),
        (
            {"category": None, "last": _result(Outcome.VISIT_OPENED)},
            "Scan a category sheet",
            "warn",
        ),
        ({}, PUT_ON, "ok"),
        ({"weight": Reading(1_250_000, "kg", True)}, "Press the button to record this item", "ok"),
        (
            {"weight": Reading(1_250_000, "kg", False)},
            "Wait for a stable weight, then press the button",
            "ok",
        ),
        # the recorded item is still on the pan; then refused as the same item
        (
            {
                "weight": Reading(1_250_000, "kg", True),
                "items": (ITEM,),
                "last": _result(Outcome.RECORDED, "1,250 kg Vêtements", 1_250_000),
            },
            TAKE_OFF,
            "ok",
        ),
        (
            {
                "weight": Reading(1_250_000, "kg", True),
                "items": (ITEM,),
                "last": _result(Outcome.SAME_ITEM),
            },
            TAKE_OFF,
            "warn",
        ),
        # taken off: put the next one on
        ({"items": (ITEM,), "last": _result(Outcome.SAME_ITEM)}, PUT_ON, "ok"),
        # the scale unplugged or silent: never "put the item on"
        ({"scale_ok": False}, NO_SCALE, "bad"),
        ({"weight": None, "last": _result(Outcome.NO_SCALE)}, NO_SCALE, "bad"),
        ({"scale_ok": False, "last": _result(Outcome.SAME_ITEM)}, NO_SCALE, "bad"),
        (
            {"weight": Reading(None, "kg", False, overload=True)},
            "Take the load off the scale",
            "bad",
        ),
        (
            {"weight": Reading(None, "kg", False, underload=True)},
            "Empty the pan, then scan {code}",
            "bad",
        ),
        (
            {"weight": Reading(10_000, "kg", True), "last": _result(Outcome.BELOW_MINIMUM)},
            "Too light: weigh it together with other items",
            "warn",
        ),
        ({"waiting": True}, "Weighing: waiting for a stable weight…", "ok"),
        ({"last": _result(Outcome.MISREAD, MISREAD)}, "Scan the code again", "warn"),
        (
            {"last": _result(Outcome.DISK_FULL)},
            "Call the technician: nothing can be recorded",
            "bad",
        ),
        (
            {"container": "Bac bleu", "container_tare_mg": 450_000},
            "Put the container on the scale, then the item in it",
            "ok",
        ),
        (
            {"last": _result(Outcome.VISIT_OPENED, mask(CODE))},
            "Category still {name}: scan a sheet to change it",
            "warn",
        ),
    ],
)
def test_the_hint_follows_the_outcome_and_the_scale(
    config: Config, fields: dict[str, Any], hint: str, tone: str
) -> None:
    view = _view(_snap(**fields), config)
    assert view["hint"] == fr(hint).format(code=config.codes.zero, name="Vêtements")
    assert view["hint_tone"] == tone


def test_a_store_fault_asks_for_the_technician(config: Config) -> None:
    snap = _snap()
    if "store_fault" not in {f.name for f in dataclasses.fields(snap)}:
        pytest.skip("the loop's snapshot has no store_fault yet")
    view = _view(dataclasses.replace(snap, store_fault=True), config)
    assert view["hint"] == fr("Call the technician: nothing can be recorded")


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_a_misread_code_is_masked_in_the_stations_language(config: Config, lang: str) -> None:
    set_language(lang)  # the loop's words are in the station's language
    view = _view(_snap(last=_result(Outcome.MISREAD, MISREAD)), config, lang="fr")
    assert MISREAD not in str(view)
    assert view["last"]["text"] == describe(Outcome.MISREAD, mask(MISREAD))
    # the scanner's own report of an unreadable frame is not a code: left as it is
    detail = "bad frame (parity)"
    view = _view(_snap(last=_result(Outcome.MISREAD, detail)), config)
    assert view["last"]["text"] == describe(Outcome.MISREAD, detail)


def test_a_container_not_on_the_pan_shows_no_negative_weight(config: Config) -> None:
    snap = _snap(container="Bac bleu", container_tare_mg=450_000)
    view = _view(snap, config)
    assert view["weight"] == {
        "number": "—",
        "unit": "kg",
        "state": "empty",
        "words": fr("Container not on the scale"),
    }
    assert view["container"] == fr("Container {name}: {tare} deducted").format(
        name="Bac bleu", tare="0,450 kg"
    )
    assert "−" not in view["container"] and "-" not in view["container"]
    on = _view(dataclasses.replace(snap, weight=Reading(1_700_000, "kg", True)), config)
    assert on["weight"]["number"] == "1,250" and on["weight"]["state"] == "stable"


def test_numbers_and_items_are_said_in_french(config: Config) -> None:
    items = tuple(Item(i, 1_000_000 + i, "CAT-VET") for i in range(1, 13))
    view = _view(_snap(items=items, backlog=1234, operator="Marie"), config)
    assert view["sync"]["words"] == fr("To send: {n}").format(n="1\u202f234")
    assert view["count"] == fr("Items: {n}").format(n="12")
    assert view["total"] == "12,000 kg"
    assert view["operator"] == "Marie"
    assert view["beneficiary"] == "•••" + CODE[-4:]
    tr = catalogue("fr")
    assert view["more"] == {
        "one": tr.ngettext("+{n} earlier item", "+{n} earlier items", 1),
        "many": tr.ngettext("+{n} earlier item", "+{n} earlier items", 2),
    }
    assert view["void_confirm"] == fr("Void {weight} {category}? Tap the button again").format(
        weight="1,000 kg", category="Vêtements"
    )
    assert _view(_snap(), config)["void_confirm"] == fr("Nothing to void in this visit")


def test_english_on_request(config: Config) -> None:
    view = _view(_snap(weight=Reading(750_000, "kg", True)), config, lang="en")
    assert view["weight"]["number"] == "0.750"
    assert view["hint"] == "Press the button to record this item"
