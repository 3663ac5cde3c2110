"""The dashboard's figures and tables read in headless Chromium against a computation written here:
the month table's visits and persons, every column reachable at a tablet's and two laptops'
widths, the chart's "others" said apart, French dates in the period's fields."""

from __future__ import annotations

import random
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from common.i18n import speaking
from ledger.charts import bars_svg
from ledger.report_render import row_sentences
from ledger.reports import Figures, Period, Row, build_report, import_profiles
from ledger.store import open_store
from ledger.store.conflicts import QuarantineCap
from ledger.store.households import Composition
from sync.wire import Batch, StationStatus, decode_batch, encode
from tests.support import ledger_dataset
from tests.support.dashboard import PASSWORD, cookie_of, get, http_login, ledger_config, serving
from tests.support.helpers import until
from tests.support.ledger_dataset import Dataset

YEAR = 2025  # the network dataset's first whole year (tests/support/ledger_dataset.py)
WIDTHS = (820, 1280, 1920)  # a tablet in portrait, two laptop screens


# -- the data ------------------------------------------------------------------------------------
def fill(url: str) -> Dataset:
    """Two years of five stations (voids, a repaired clock, manual entries), the office's
    profiles, and a fleet with every warning the page can show."""
    data = ledger_dataset.network()
    store = open_store(url)
    try:
        ledger_dataset.ingest(store, data)
        import_profiles(store, data.profiles.items())
        now = datetime.now(UTC).isoformat()
        for station, online, synced, scale, calibration, backlog in [
            ("st-1", True, True, True, 40.0, 0),
            ("st-2", True, False, False, 10.0, 3),  # clock and scale warnings
            ("st-3", True, True, True, 400.0, 0),  # calibration due
            ("st-4", False, True, True, 12.0, 1250),
        ]:
            store.update_status(
                StationStatus(
                    station,
                    True,
                    1,
                    backlog=backlog,
                    clock_synced=synced,
                    scale_ok=scale,
                    calibration_age_days=calibration,
                    version="2.3.0-rc1",
                    ts=now,
                ),
                retained=True,
            )
            if not online:
                store.update_status(StationStatus(station, False, 1), retained=True)
        # st-5 sends garbage: two kept, two over its quarantine cap (a flood)
        cap = QuarantineCap(messages=2)
        for n in range(4):
            store.quarantine("pesee/v1/stations/st-5/records", b"garbage %d" % n, "not JSON", cap)
    finally:
        store.close()
    return data


@dataclass
class Served:
    url: str
    data: Dataset
    store_url: str


@pytest.fixture
def served(tmp_path: Path, ledger_url: str) -> Iterator[Served]:
    data = fill(ledger_url)
    config = ledger_config(tmp_path, ledger_url, cache_seconds="0")
    with serving(config, tmp_path / "serve.log") as (base, _port):
        yield Served(base, data, ledger_url)


def login(page: Page, base: str) -> None:
    page.goto(base + "/login")
    page.fill("input[name=user]", "alice")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(base + "/")


def french(value: Decimal, places: int) -> str:
    """Rounded half up, narrow no-break space between thousands, decimal comma."""
    rounded = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    return f"{rounded:,.{places}f}".replace(",", "\u202f").replace(".", ",")


def months_of(data: Dataset, year: int) -> dict[str, dict[str, Any]]:
    """Per month of ``year``, from the records as the stations sent them: live weighings' kg and
    count, distinct visits (station, visit) and persons. A void cancels the weighing it names;
    a record's month is the one of its repaired time (Dataset.effective_at)."""
    dead = {(r["station"], r["epoch"], r["voids"]) for r in data.records if r["kind"] == "void"}
    out: dict[str, dict[str, Any]] = {
        f"{year}-{m:02d}": {"mg": 0, "items": 0, "visits": set(), "persons": set()}
        for m in range(1, 13)
    }
    for r in data.records:
        at = data.effective_at[r["uuid"]]
        if r["kind"] != "weighing" or not at.startswith(str(year)):
            continue
        if (r["station"], r["epoch"], r["seq"]) in dead:
            continue
        month = out[at[:7]]
        month["mg"] += r["net_mg"]
        month["items"] += 1
        month["visits"].add((r["station"], r["visit"]))
        month["persons"].add(r["beneficiary"])
    return out


def table_text(page: Page, selector: str) -> list[list[str]]:
    """The cells' text of a table's body, row by row."""
    rows: list[list[str]] = page.eval_on_selector(
        selector,
        "t => [...t.tBodies[0].rows].map(r => [...r.cells].map(c => c.textContent.trim()))",
    )
    return rows


# -- item 1: the month table ---------------------------------------------------------------------
def test_the_month_table_shows_each_months_visits_and_persons(
    served: Served, browser: BrowserContext
) -> None:
    """It showed 0 visits, 0 persons and "–" kg per person for every month (quick sums)."""
    expected = months_of(served.data, YEAR)
    assert all(m["persons"] for m in expected.values())  # every month has people to count
    page = browser.new_page()
    login(page, served.url)
    page.goto(f"{served.url}/?year={YEAR}")
    shown = table_text(page, "table[data-table=month]")
    assert [row[0] for row in shown] == list(expected)
    for row, (month, m) in zip(shown, expected.items(), strict=True):
        kg = Decimal(m["mg"]) / 10**6
        persons = len(m["persons"])
        assert row[1:] == [
            french(kg, 1),
            french(Decimal(m["items"]), 0),
            french(Decimal(len(m["visits"])), 0),
            french(Decimal(persons), 0),
            french(kg / persons, 1),
        ], month
    # the month CSV says the same (one report behind both)
    cookie = cookie_of(http_login(served.url)[1])
    text = get(f"{served.url}/export/month.csv?year={YEAR}&lang=en", cookie=cookie)[2]
    lines = [line.split(",") for line in text.splitlines()]
    head = lines[0]
    for line in lines[1:13]:
        m = expected[line[0]]
        assert int(line[head.index("visits")]) == len(m["visits"])
        assert int(line[head.index("beneficiaries")]) == len(m["persons"])


# -- item 6: every column visible or reachable ---------------------------------------------------
# For each table: its header cells and the last row's cells are in the viewport and in their
# scrolling box, or the box scrolls (with a visible cue: the shadow backgrounds) and scrolling it
# brings them in. Returns what fails, as text.
REACHABLE = """
(selector) => {
  const failures = [];
  const vw = document.documentElement.clientWidth;
  const within = (r, left, right) => r.width > 0 && r.left >= left - 1 && r.right <= right + 1;
  for (const table of document.querySelectorAll(selector)) {
    const name = table.dataset.table || table.className;
    const body = table.tBodies[0].rows;
    const last = body.length ? [...body[body.length - 1].cells] : [];
    const cells = [...table.tHead.rows[0].cells, ...last];
    const box = table.closest('.scroll');
    for (const cell of cells) {
      const what = `${name}: "${cell.textContent.trim().slice(0, 30)}"`;
      const r = cell.getBoundingClientRect();
      const b = box ? box.getBoundingClientRect() : {left: 0, right: vw};
      if (within(r, Math.max(0, b.left), Math.min(vw, b.right))) continue;
      if (!box) { failures.push(what + ' is cut off'); continue; }
      const style = getComputedStyle(box);
      if (!['auto', 'scroll'].includes(style.overflowX) || box.scrollWidth <= box.clientWidth) {
        failures.push(what + ' is cut off, its box does not scroll'); continue;
      }
      if (!style.backgroundImage.includes('gradient')) {
        failures.push(what + ' is out of sight with no sign of more'); continue;
      }
      if (b.left < 0 || b.right > vw + 1) {
        failures.push(what + ': its box overflows the page'); continue;
      }
      const before = box.scrollLeft;
      box.scrollLeft = r.left - b.left + box.scrollLeft - (b.width - r.width) / 2;
      const moved = cell.getBoundingClientRect();
      if (!within(moved, b.left, b.right)) failures.push(what + ' cannot be scrolled into view');
      box.scrollLeft = before;
    }
  }
  return failures;
}
"""


def test_every_column_is_visible_or_reachable_at_tablet_and_laptop_widths(
    served: Served, browser: BrowserContext
) -> None:
    """ "kg par bénéficiaire" was hidden in the grouping panels, the fleet's records and
    conflicts at every width, its scale and calibration warnings on a tablet."""
    page = browser.new_page()
    login(page, served.url)
    overflow = "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        for tab in ("category", "referrer", "referrer_type", "profile", "station"):
            page.goto(f"{served.url}/?year={YEAR}&by={tab}")
            expect(page.locator(f"table[data-table={tab}]")).to_have_count(1)
            assert page.evaluate(REACHABLE, "table.figures") == [], (width, tab)
            assert page.evaluate(overflow) <= 0, (width, tab)
        page.goto(f"{served.url}/fleet")
        expect(page.locator("table.fleet tbody tr")).to_have_count(5)
        assert page.evaluate(REACHABLE, "table.fleet") == [], width
        assert page.evaluate(overflow) <= 0, width
        expect(page.locator("[data-kpi=quarantine]")).to_contain_text("1 poste l'inonde")
        # the flood is a state, seen without scrolling even on a tablet
        flood = page.locator("tr[data-station=st-5] [data-flooding]").bounding_box()
        assert flood is not None and flood["x"] + flood["width"] <= width, width
        # the warnings themselves, on screen or one scroll away
        for station, text in [
            ("st-2", "ne répond pas"),
            ("st-3", "à refaire"),
            ("st-5", "inonde : 2 non gardés"),
        ]:
            expect(page.locator(f"tr[data-station={station}]")).to_contain_text(text)


# -- the "others" bar ----------------------------------------------------------------------------
def test_the_rest_of_a_long_chart_is_said_apart_not_drawn_as_a_giant_bar(
    browser: BrowserContext,
) -> None:
    """28 structures, 12 lines: the 17 smallest summed in one bar dwarfed the 11 named ones."""
    rows = [
        Row((f"S{i:02d}",), (f"Structure {i}",), Figures(net_mg=(1000 - 10 * i) * 10**6))
        for i in range(28)
    ]
    with speaking("fr"):
        svg = bars_svg(rows, "Par structure", lang="fr", limit=12)
    page = browser.new_page()
    page.set_content(f"<!doctype html><html><body style='width:720px'>{svg}</body></html>")
    widths = page.evaluate(
        "() => [...Array(12).keys()].map(i => document.getElementById('bar-' + i))"
        ".filter(b => b).map(b => b.getBoundingClientRect().width)"
    )
    assert len(widths) == 11  # the named rows, each its own bar
    assert widths == sorted(widths, reverse=True) and widths[-1] > 0.8 * widths[0]
    rest = sum(1000 - 10 * i for i in range(11, 28))
    expect(page.locator("#others")).to_contain_text(f"+ 17 autres : {french(Decimal(rest), 0)} kg")


# -- French dates --------------------------------------------------------------------------------
def test_the_french_page_takes_and_shows_days_as_dd_mm_yyyy(
    served: Served, browser: BrowserContext
) -> None:
    """A date field shows the browser's own order (mm/dd/yyyy in this Chromium, whatever the
    page's language): the French page uses text fields in French order instead."""
    page = browser.new_page()
    login(page, served.url)
    field = page.locator("input[name=from]")
    expect(field).to_have_attribute("placeholder", "jj/mm/aaaa")
    field.fill("01/03/2025")
    page.fill("input[name=to]", "31/03/2025")
    page.click(".period button[type=submit]")
    expect(page.locator("h1")).to_contain_text("01/03/2025 – 31/03/2025")
    expect(page.locator("input[name=from]")).to_have_value("01/03/2025")
    expect(page.locator("input[name=to]")).to_have_value("31/03/2025")
    march = months_of(served.data, YEAR)["2025-03"]
    expect(page.locator("[data-kpi=visits] .value")).to_have_text(
        french(Decimal(len(march["visits"])), 0)
    )
    # the browser refuses a day it cannot read before it is sent (the field's pattern)
    page.fill("input[name=from]", "March 1st")
    assert not page.eval_on_selector("input[name=from]", "f => f.checkValidity()")
    # the server reads ISO days too (links, the English page's date fields) and refuses the rest
    cookie = cookie_of(http_login(served.url)[1])
    for query, status in [
        ({"from": "2025-03-01", "to": "2025-03-31"}, 200),
        ({"from": "1/3/2025", "to": "31.03.2025"}, 200),
        ({"from": "31/02/2025", "to": "31/03/2025"}, 400),
        ({"from": "01/03/2025", "to": "garbage"}, 400),
    ]:
        code, _h, body = get(f"{served.url}/?{urllib.parse.urlencode(query)}", cookie=cookie)
        assert code == status, query
        if status == 200:
            assert "01/03/2025 – 31/03/2025" in body
    page.click("a[lang=en]")  # English: the browser's own date fields, ISO values
    expect(page.locator("input[name=from]")).to_have_attribute("type", "date")


# -- item 8: by profile and by type of structure -------------------------------------------------
def by_referrer_type(data: Dataset, year: int) -> dict[str, dict[str, Any]]:
    """Per type of referring structure (the registry's), ``year``'s live weighings: kg, visits,
    persons."""
    types = data.referrer_types()
    dead = {(r["station"], r["epoch"], r["voids"]) for r in data.records if r["kind"] == "void"}
    out: dict[str, dict[str, Any]] = {}
    for r in data.records:
        at = data.effective_at[r["uuid"]]
        if r["kind"] != "weighing" or not at.startswith(str(year)):
            continue
        if (r["station"], r["epoch"], r["seq"]) in dead:
            continue
        t = out.setdefault(
            types.get(r["referrer"], ""), {"mg": 0, "visits": set(), "persons": set()}
        )
        t["mg"] += r["net_mg"]
        t["visits"].add((r["station"], r["visit"]))
        t["persons"].add(r["beneficiary"])
    return out


def change(now: int, before: int) -> str:
    """A change in % as the page writes it: signed, rounded half up, "–" with nothing before."""
    if not before:
        return "–"
    pct = Decimal(now - before) * 100 / before
    sign = "+" if pct > 0 else "\u2212" if pct < 0 else ""
    return sign + french(abs(pct), 0) + "\u00a0%"


def test_panels_by_type_of_structure_and_by_profile_with_their_sentences(
    served: Served, browser: BrowserContext
) -> None:
    """The coordinator's views: each type of structure's figures and their change over a year
    (computed here from the registry's types), each profile's rows and sentences as `ledger
    report --by profile` gives them (a person counts in a profile by their status at each
    visit: the report's rule)."""
    year = YEAR + 1  # the dataset's second year: a year before to compare with
    by_type = by_referrer_type(served.data, year)
    before = by_referrer_type(served.data, YEAR)
    page = browser.new_page()
    login(page, served.url)
    page.goto(f"{served.url}/?year={year}")
    page.click("nav.tabs a[data-tab=referrer_type]")
    expect(page.locator("#referrer_type h2")).to_have_text("Par type de structure")
    shown = {
        row.get_attribute("data-key"): row
        for row in page.locator("table[data-table=referrer_type] tbody tr").all()
    }
    assert set(shown) == set(by_type)
    for key, t in by_type.items():
        cells = shown[key].locator("td")
        expect(cells.nth(0)).to_have_text(french(Decimal(t["mg"]) / 10**6, 1))
        expect(cells.nth(2)).to_have_text(french(Decimal(len(t["visits"])), 0))
        expect(cells.nth(3)).to_have_text(french(Decimal(len(t["persons"])), 0))
        then = before.get(key, {"mg": 0, "persons": ()})
        expect(cells.nth(5)).to_have_text(change(t["mg"], then["mg"]))
        expect(cells.nth(6)).to_have_text(change(len(t["persons"]), len(then["persons"])))
    store = open_store(served.store_url)
    try:
        with speaking("fr"):
            by_types = build_report(store, Period.year(year), ("referrer_type",))
            report = build_report(store, Period.year(year), ("profile",))
            type_sentences = row_sentences(by_types, "fr")
            sentences = row_sentences(report, "fr")
    finally:
        store.close()
    # the sentences are the report's (ledger/report_render.py words them)
    assert type_sentences
    expect(page.locator("#referrer_type .sentences li")).to_have_text(type_sentences)
    # one report serves both languages: its names follow the page's (the figures stay)
    names = page.locator("table[data-table=referrer_type] tbody th")
    expect(names).to_contain_text(["hôpital", "(aucun)"])
    page.click("a[lang=en]")
    expect(names).to_contain_text(["hospital", "(none)"])
    expect(page.locator("table[data-table=referrer_type] tr[data-key=''] td").first).to_have_text(
        french(Decimal(by_type[""]["mg"]) / 10**6, 1).replace(",", ".").replace("\u202f", ",")
    )
    page.click("a[lang=fr]")
    assert sentences  # the dataset's profiles give sentences to check
    page.click("nav.tabs a[data-tab=profile]")
    expect(page.locator("#profile .sentences li")).to_have_text(sentences)
    rows = table_text(page, "table[data-table=profile]")
    assert [row[1:] for row in rows] == [
        [
            french(Decimal(row.figures.net_mg) / 10**6, 1),
            french(Decimal(row.figures.items), 0),
            french(Decimal(row.figures.visits), 0),
            french(Decimal(row.figures.beneficiaries), 0),
            french(Decimal(row.figures.net_mg) / 10**6 / row.figures.beneficiaries, 1),
            change(row.figures.net_mg, row.previous.net_mg if row.previous else 0),
            change(row.figures.beneficiaries, row.previous.beneficiaries if row.previous else 0),
        ]
        for row in report.rows
    ]
    # a bar under each profile's kg; none for the untagged (they would flatten the others)
    tagged = [row for row in report.rows if row.key[0]]
    expect(page.locator("#profile .bar")).to_have_count(len(tagged))
    expect(page.locator("#profile tr[data-key=''] .bar")).to_have_count(0)


# -- issue 18: pages kept up to date in the background -------------------------------------------
def test_a_page_asked_lately_follows_new_records_without_a_visitor_waiting(
    tmp_path: Path, ledger_url: str
) -> None:
    """Figures may be an hour old (cache_seconds = 3600): the page asked last is recomputed in
    the background as soon as a record arrives, so its next visitor sees it without waiting for
    the report (before, a page stayed as it was until cache_seconds ran out)."""
    data = fill(ledger_url)
    config = ledger_config(tmp_path, ledger_url, cache_seconds="3600")
    expected = months_of(data, YEAR)
    kg = sum(m["mg"] for m in expected.values())
    with serving(config, tmp_path / "serve.log") as (base, _port):
        cookie = cookie_of(http_login(base)[1])

        def kg_shown() -> str:
            page = get(f"{base}/?year={YEAR}&by=station", cookie=cookie)[2]
            return page.split('data-kpi="kg"')[1].split('class="sub">')[1].split("&nbsp;kg")[0]

        assert kg_shown() == french(Decimal(kg) / 10**6, 1)
        late = ledger_dataset.Journal("st-late", random.Random(5))
        late.append("weighing", datetime(YEAR, 6, 1, 10, tzinfo=UTC), net_mg=5_000_000, visit="v")
        store = open_store(ledger_url)
        try:
            batch = Batch(late.station, late.epoch, tuple(late.records))  # type: ignore[arg-type]
            store.ingest(decode_batch(encode(batch)))
        finally:
            store.close()
        new = french(Decimal(kg + 5_000_000) / 10**6, 1)
        assert until(lambda: kg_shown() == new, timeout=60), kg_shown()


# -- item 8: new and returning persons, visits per person, year by year --------------------------
def test_the_persons_page_new_returning_visits_per_person_and_years(
    served: Served, browser: BrowserContext
) -> None:
    """Computed here from the records: a person is a code with a live weighing, new when their
    first live weighing (any station) is in the period; visits per person are their distinct
    (station, visit); each year's kg, persons and new persons."""
    data = served.data
    dead = {(r["station"], r["epoch"], r["voids"]) for r in data.records if r["kind"] == "void"}
    first: dict[str, str] = {}
    visits: dict[str, dict[str, set[tuple[str, str]]]] = {}
    kg: dict[str, int] = {}
    for r in data.records:
        if r["kind"] != "weighing" or (r["station"], r["epoch"], r["seq"]) in dead:
            continue
        at = data.effective_at[r["uuid"]]
        code = r["beneficiary"]
        first[code] = min(first.get(code, at), at)
        visits.setdefault(at[:4], {}).setdefault(code, set()).add((r["station"], r["visit"]))
        kg[at[:4]] = kg.get(at[:4], 0) + r["net_mg"]
    year = str(YEAR + 1)
    persons = visits[year]
    new = sum(1 for code in persons if first[code] >= year)
    counts = [len(v) for v in persons.values()]

    def band(low: int, high: int | None) -> int:
        return sum(1 for n in counts if n >= low and (high is None or n <= high))

    page = browser.new_page()
    login(page, served.url)
    page.click("nav a[href='/persons']")
    page.select_option("select[name=year]", year)
    page.click(".period button[type=submit]")
    expect(page.locator("h1")).to_have_text(f"Personnes en {year}")
    kpi = page.locator(".kpis")
    expect(kpi.locator("[data-kpi=persons] .value")).to_have_text(french(Decimal(len(persons)), 0))
    expect(kpi.locator("[data-kpi=new] .value")).to_have_text(french(Decimal(new), 0))
    expect(kpi.locator("[data-kpi=returning] .value")).to_have_text(
        french(Decimal(len(persons) - new), 0)
    )
    mean = Decimal(sum(counts)) / len(counts)
    expect(kpi.locator("[data-kpi=frequency] .value")).to_have_text(french(mean, 1))
    rows = table_text(page, "table[data-table=visits]")
    assert [row[:2] for row in rows] == [
        [label, french(Decimal(band(low, high)), 0)]
        for label, low, high in [
            ("1", 1, 1),
            ("2", 2, 2),
            ("3–5", 3, 5),
            ("6–11", 6, 11),
            ("12 +", 12, None),
        ]
    ]
    years = table_text(page, "table[data-table=trend]")
    assert [row[:4] for row in years] == [
        [
            y,
            french(Decimal(kg[y]) / 10**6, 1),
            french(Decimal(len(visits[y])), 0),
            french(Decimal(sum(1 for code in visits[y] if first[code][:4] == y)), 0),
        ]
        for y in sorted(visits)
    ]
    assert years[1][5] == change(kg[year], kg[str(YEAR)])
    overflow = "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        assert page.evaluate(REACHABLE, "table.figures") == [], width
        assert page.evaluate(overflow) <= 0, width


# -- item 8: FEAD / ESF+ indicators and an eco-organism's declaration ----------------------------
def test_the_funders_page_fead_indicators_and_an_eco_declaration(
    served: Served, browser: BrowserContext
) -> None:
    """Households' compositions imported for some codes, clothes (VET) mapped to Refashion's
    "Habillement": the page's counted indicators and tonnes against a computation here."""
    data = served.data
    compositions = {
        f"B{p:06d}": Composition(
            f"B{p:06d}", women=1, men=p % 2, children_0_15=p % 3, children_16_17=int(p % 5 == 0)
        )
        for p in range(0, 160, 4)
    }
    eco = {
        "organisms": [{"code": "refashion", "name": "Refashion"}],
        "categories": [
            {"organism": "refashion", "code": "TLC-HAB", "name": "Habillement", "stream": "TLC"}
        ],
        "mappings": [{"organism": "refashion", "category": "VET", "declares": "TLC-HAB"}],
    }
    store = open_store(served.store_url)
    try:
        store.import_households(list(compositions.values()))
        store.set_registry(replace(data.registry, extra={**data.registry.extra, "eco": eco}))
    finally:
        store.close()
    year = str(YEAR + 1)
    dead = {(r["station"], r["epoch"], r["voids"]) for r in data.records if r["kind"] == "void"}
    codes: set[str] = set()
    clothes = 0
    for r in data.records:
        at = data.effective_at[r["uuid"]]
        if r["kind"] != "weighing" or not at.startswith(year):
            continue
        if (r["station"], r["epoch"], r["seq"]) in dead:
            continue
        codes.add(r["beneficiary"])
        clothes += r["net_mg"] if r["category"] == "VET" else 0
    known = [compositions[c] for c in codes if c in compositions]
    assert known and len(known) < len(codes)  # some households known, some not

    page = browser.new_page()
    login(page, served.url)
    page.click("nav a[href='/funders']")
    page.select_option("select[name=year]", year)
    page.click(".period button[type=submit]")
    expect(page.locator("#fead .sentences")).to_contain_text(f"{len(codes)} foyers aidés")
    rows = {row[0]: row[1] for row in table_text(page, "table[data-table=fead]")}
    assert rows["personnes aidées (membres des foyers)"] == french(
        Decimal(sum(h.size for h in known)), 0
    )
    assert rows["femmes (adultes)"] == french(Decimal(len(known)), 0)
    assert rows["enfants de 15 ans ou moins"] == french(
        Decimal(sum(h.children_0_15 for h in known)), 0
    )
    assert rows["enfants de moins de 18 ans"] == french(
        Decimal(sum(h.children_0_15 + h.children_16_17 for h in known)), 0
    )
    # an estimate only when asked for, in its own columns
    expect(page.locator("table[data-table=fead] thead")).not_to_contain_text("estimé")
    page.check("input[name=estimate]")
    page.click(".period button[type=submit]")
    expect(page.locator("table[data-table=fead] thead")).to_contain_text("estimé")

    tonnes = (Decimal(clothes) / 10**9).quantize(Decimal("0.001"), rounding=ROUND_HALF_UP)
    expect(page.locator("#eco h2")).to_have_text("Refashion : sortie réemploi (don)")
    expect(page.locator("table[data-table=eco] tr[data-key=TLC-HAB] td").nth(1)).to_have_text(
        str(tonnes).replace(".", ",")
    )
    unmapped = page.locator("table[data-table=eco-unmapped] tbody tr")
    expect(unmapped).to_have_count(5)  # the five food and hygiene categories, declared to none
    with page.expect_download() as info:
        page.click("#eco a.csv")
    assert "Habillement" in Path(info.value.path()).read_text(encoding="utf-8-sig")
    overflow = "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        assert page.evaluate(REACHABLE, "table.figures") == [], width
        assert page.evaluate(overflow) <= 0, width
