"""The counter screen as a volunteer meets it (issue 13), in real headless Chromium on the real
daemon and simulators, at 800×480 and 1280×800: the hint under the banner follows the last outcome
and the scale (never "put the item on" beside "take it off"), readable from 2 m; a misread code is
masked; the operator, the carried-over category, the hidden items and the item a void would
remove are said; a container not yet on the pan shows no negative weight; a 65-character category
name leaves the total and the buttons on screen."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from common.i18n import set_language
from station.loop import mask
from station.outcomes import Outcome
from station.screen.view import catalogue
from station.sim import SimulatedCounter
from tests.support.helpers import beneficiary

VISITOR = beneficiary(123456)
# a misread: the same code with a wrong check digit
MISREAD = VISITOR[:-1] + str((int(VISITOR[-1]) + 1) % 10)
LONG = "Vêtements d'hiver pour enfants de deux à six ans, tailles variées"
CATEGORIES = [
    {"code": "CAT-VET", "name": "Vêtements"},
    {"code": "CAT-LONG", "name": LONG},
    {"code": "CAT-BEBE", "name": "Puériculture"},
]
SIZES = ((800, 480), (1280, 800))
READABLE_PX = 24.0  # the hint's type at the smallest screen: readable from 2 m


def fr(message: str) -> str:
    """A staff string as the French page shows it (the catalogue's, or the source until then)."""
    return catalogue("fr").gettext(message)


def _counter(tmp_path: Path, **over: Any) -> SimulatedCounter:
    set_language("fr")
    overrides: dict[str, Any] = {
        "station": {"language": "fr"},
        "screen": {"enabled": True, "port": 0, "touch_buttons": True, "tap_gap": 30},
        "sync": {"enabled": False},
        "scale": {"stable_wait": 0.6},
        "categories": CATEGORIES,
        **over,
    }
    return SimulatedCounter(tmp_path, overrides)


@pytest.fixture
def counter_800(tmp_path: Path) -> Iterator[SimulatedCounter]:
    with _counter(tmp_path) as c:
        yield c


def _open(browser: BrowserContext, c: SimulatedCounter) -> Page:
    page = browser.new_page()
    page.set_viewport_size({"width": 800, "height": 480})
    page.goto(str(c.daemon.screen.url))
    expect(page.locator("body")).to_have_attribute("data-live", "1")
    return page


def _result(c: SimulatedCounter, outcome: Outcome) -> None:
    got = c.next_result()
    assert got.outcome is outcome, got


def _weigh(c: SimulatedCounter, page: Page, kg: str, outcome: Outcome = Outcome.RECORDED) -> None:
    c.scale.place(kg, settle_s=0.05)
    expect(page.locator("#weight-state")).to_have_text("Stable")
    expect(page.locator("#weight-number")).to_have_text(kg.replace(".", ","))
    c.press()
    _result(c, outcome)


def _font_px(page: Page, selector: str) -> float:
    return float(page.eval_on_selector(selector, "e => parseFloat(getComputedStyle(e).fontSize)"))


def _on_screen(page: Page, ids: tuple[str, ...]) -> list[str]:
    """The ids whose box is not wholly inside the viewport (empty: all on screen), or
    "scroll" when the page itself overflows."""
    result = page.evaluate(
        """(ids) => {
            const root = document.documentElement;
            const out = ids.filter((id) => {
                const r = document.getElementById(id).getBoundingClientRect();
                return !(r.top >= 0 && r.left >= 0 && r.bottom <= innerHeight + 0.5 &&
                         r.right <= innerWidth + 0.5 && r.height > 0 && r.width > 0);
            });
            const scrolls = root.scrollWidth > innerWidth || root.scrollHeight > innerHeight;
            if (scrolls) out.push("scroll");
            return out;
        }""",
        list(ids),
    )
    return list(result)


def test_the_hint_follows_the_last_outcome_and_the_scale(
    browser: BrowserContext, counter_800: SimulatedCounter
) -> None:
    c = counter_800
    page = _open(browser, c)
    hint, banner = page.locator("#hint"), page.locator("#last-text")
    put_on = fr("Put the item on the scale, then press the button")
    take_off = fr("Take the item off the scale, then put the next one on")
    expect(hint).to_have_text(fr("Scan the beneficiary's code"))
    assert _font_px(page, "#hint") >= READABLE_PX

    c.scan(VISITOR)
    _result(c, Outcome.VISIT_OPENED)
    expect(hint).to_have_text(fr("Scan a category sheet"))
    c.scan("CAT-VET")
    _result(c, Outcome.CATEGORY_SET)
    c.scale.place("0.000", settle_s=0.05)
    expect(hint).to_have_text(put_on)
    c.scale.place("1.250", settle_s=0.05)
    expect(hint).to_have_text(fr("Press the button to record this item"))

    # recorded: the item is still on the pan, so the next step is to take it off
    c.press()
    _result(c, Outcome.RECORDED)
    expect(hint).to_have_text(take_off)
    # a second press on it is refused with "take it off": the hint says the same, never "put"
    c.press()
    _result(c, Outcome.SAME_ITEM)
    expect(banner).to_have_text("Refusé : article déjà enregistré, retirez-le de la balance")
    expect(hint).to_have_text(take_off)
    expect(hint).to_have_attribute("data-tone", "warn")
    # taken off: now, and only now, put the next one on
    c.scale.place("0.000", settle_s=0.05)
    expect(hint).to_have_text(put_on)
    # too light to record: the hint does not ask to put on what is already there
    _weigh(c, page, "0.010", Outcome.BELOW_MINIMUM)
    expect(hint).to_have_text(fr("Too light: weigh it together with other items"))
    c.scale.place("0.000", settle_s=0.05)
    expect(hint).to_have_text(put_on)

    c.scale.set_overload(True)
    expect(hint).to_have_text(fr("Take the load off the scale"))
    c.scale.set_overload(False)
    expect(hint).to_have_text(put_on)

    # the scale unplugged: never "put the item on", whatever the last outcome
    c.scale.unplug()
    no_scale = fr("The scale does not answer: check that it is on and plugged in")
    expect(hint).to_have_text(no_scale)
    expect(hint).to_have_attribute("data-tone", "bad")
    c.press()
    _result(c, Outcome.NO_SCALE)
    expect(banner).to_have_text("Refusé : la balance ne répond pas")
    expect(hint).to_have_text(no_scale)
    assert _font_px(page, "#hint") >= READABLE_PX
    c.scale.replug()
    expect(hint).to_have_text(put_on)


def test_the_visit_says_who_what_and_how_much(
    browser: BrowserContext, counter_800: SimulatedCounter
) -> None:
    c = counter_800
    page = _open(browser, c)
    hint = page.locator("#hint")

    # a category scanned before the visit carries into it: pointed out when the visit opens
    c.scan("CAT-VET")
    _result(c, Outcome.CATEGORY_SET)
    c.scan(VISITOR)
    _result(c, Outcome.VISIT_OPENED)
    expect(page.locator("#category-field")).to_have_attribute("data-state", "carried")
    expect(page.locator("#category")).to_have_text("Vêtements")
    expect(hint).to_have_text(
        fr("Category still {name}: scan a sheet to change it").format(name="Vêtements")
    )
    assert _font_px(page, "#category") >= READABLE_PX

    # the operator's badge: the name is shown
    expect(page.locator("#operator")).to_have_text("—")
    c.scan("OP-0001")
    _result(c, Outcome.OPERATOR_SET)
    expect(page.locator("#operator")).to_have_text("Marie")
    expect(page.locator("#category-field")).to_have_attribute("data-state", "")

    # a misread beneficiary code is masked as every other beneficiary code
    c.scan(MISREAD)
    _result(c, Outcome.MISREAD)
    expect(page.locator("#last")).to_have_attribute("data-kind", "refused")
    expect(page.locator("#last-text")).to_contain_text(mask(MISREAD))
    assert MISREAD not in page.content()
    expect(hint).to_have_text(fr("Scan the code again"))

    # ten items: those that fit are listed, the others counted in words
    for n in range(10):
        _weigh(c, page, f"{1 + n / 10:.3f}")
    expect(page.locator("#count")).to_have_text(re.compile(r"\b10\b"))
    more = page.locator("#more")
    expect(more).not_to_have_text("")
    hidden = int(re.sub(r"\D", "", more.inner_text()))
    shown = page.locator("#items li").count()
    assert shown + hidden == 10 and shown >= 4
    words = catalogue("fr").ngettext("+{n} earlier item", "+{n} earlier items", hidden)
    expect(more).to_have_text(words.replace("{n}", str(hidden)))
    expect(page.locator("#items li").last).to_have_text("1,900 kgVêtements")
    clipped = page.evaluate(
        """() => {
            const box = document.getElementById("items").getBoundingClientRect();
            return [...document.querySelectorAll("#items li")].filter((li) => {
                const r = li.getBoundingClientRect();
                return r.top < box.top - 0.5 || r.bottom > box.bottom + 0.5;
            }).length;
        }"""
    )
    assert clipped == 0

    # the void button's first tap names the item a second tap removes
    void = page.locator("#btn-void")
    void.click()
    confirm = fr("Void {weight} {category}? Tap the button again")
    expect(hint).to_have_text(confirm.format(weight="1,900 kg", category="Vêtements"))
    void.click()
    _result(c, Outcome.VOIDED)
    expect(page.locator("#items li").last).to_have_text("1,800 kgVêtements")

    # a container scanned on an empty pan: no negative weight, no double negative
    c.scale.place("0.000", settle_s=0.05)
    c.scan("BAC-1")
    _result(c, Outcome.CONTAINER_SET)
    expect(page.locator("#weight-state")).to_have_text(fr("Container not on the scale"))
    expect(page.locator("#weight-number")).to_have_text("—")
    expect(page.locator("#container")).to_have_text(
        fr("Container {name}: {tare} deducted").format(name="Bac bleu", tare="0,450 kg")
    )
    for selector in ("#weight", "#container", "#hint"):
        text = page.locator(selector).inner_text()
        assert not re.search(r"[-−]\s*\d", text), (selector, text)
    c.scale.place("0.450", settle_s=0.05)  # the box alone
    expect(page.locator("#weight-number")).to_have_text("0,000")
    expect(hint).to_have_text(fr("Put the item on the scale, then press the button"))
    c.scale.place("1.450", settle_s=0.05)  # the box and a kilogram in it
    expect(page.locator("#weight-number")).to_have_text("1,000")


def test_a_long_category_name_leaves_the_total_and_buttons_on_screen(
    browser: BrowserContext, counter_800: SimulatedCounter
) -> None:
    c = counter_800
    page = _open(browser, c)
    assert len(LONG) == 65
    c.scan(VISITOR)
    _result(c, Outcome.VISIT_OPENED)
    c.scan("OP-0001")
    _result(c, Outcome.OPERATOR_SET)
    for code, kg in (("CAT-VET", "1.000"), ("CAT-LONG", "2.345")):
        c.scan(code)
        _result(c, Outcome.CATEGORY_SET)
        _weigh(c, page, kg)
    expect(page.locator("#last-text")).to_have_text(f"Enregistré : 2,345 kg {LONG}")
    expect(page.locator("#total")).to_have_text("3,345 kg")
    ids = (
        "beneficiary",
        "category",
        "operator",
        "weight",
        "count",
        "total",
        "last",
        "hint",
        "sync",
        "btn-press",
        "btn-void",
        "btn-end",
    )
    for width, height in SIZES:
        page.set_viewport_size({"width": width, "height": height})
        assert _on_screen(page, ids) == [], (width, height)
        assert _font_px(page, "#hint") >= READABLE_PX
        # the name is cut with an ellipsis where it is too long, not wrapped over the rest
        assert page.eval_on_selector("#category", "e => e.scrollWidth > e.clientWidth")
        # while the beneficiary's visible end is never cut
        assert page.eval_on_selector("#beneficiary", "e => e.scrollWidth <= e.clientWidth")
        expect(page.locator("#beneficiary")).to_have_text("•••" + VISITOR[-4:])
    # the void button armed with the long name: the hint names it, the layout holds
    page.locator("#btn-void").click()
    expect(page.locator("#hint")).to_contain_text("2,345 kg")
    for width, height in SIZES:
        page.set_viewport_size({"width": width, "height": height})
        assert _on_screen(page, ids) == [], (width, height)


def test_a_visit_without_a_category_asks_for_one(browser: BrowserContext, tmp_path: Path) -> None:
    """No category yet (a fresh station, or ``[visit] category_resets``): the category field is
    pointed out as missing when the visit opens, and the hint asks for a sheet."""
    with _counter(tmp_path, visit={"category_resets": True}) as c:
        page = _open(browser, c)
        c.scan(VISITOR)
        _result(c, Outcome.VISIT_OPENED)
        expect(page.locator("#category-field")).to_have_attribute("data-state", "missing")
        expect(page.locator("#category")).to_have_text("—")
        expect(page.locator("#hint")).to_have_text(fr("Scan a category sheet"))
        expect(page.locator("#hint")).to_have_attribute("data-tone", "warn")
        c.scan("CAT-VET")
        _result(c, Outcome.CATEGORY_SET)
        expect(page.locator("#category-field")).to_have_attribute("data-state", "")
        _weigh(c, page, "1.000")
        # the next beneficiary: with category_resets the category does not carry over
        c.scan(beneficiary(654321))
        assert c.next_result().outcome is Outcome.VISIT_CLOSED
        _result(c, Outcome.VISIT_OPENED)
        expect(page.locator("#category-field")).to_have_attribute("data-state", "missing")
        expect(page.locator("#hint")).to_have_text(fr("Scan a category sheet"))
