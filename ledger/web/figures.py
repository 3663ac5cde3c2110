"""What the dashboard's pages read: the reports of a period (cached), the fleet, table helpers."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from common.i18n import speaking

from ..charts import monthly_kg_svg
from ..config import LedgerConfig
from ..funders.eco import EcoReport, build_eco, load_mapping
from ..funders.fead import FeadReport, build_fead
from ..funders.persons import PersonsReport, TrendReport, build_persons, build_trend
from ..report_render import row_sentences, summary_lines
from ..reports import Period, Report, Row, build_report, load_names
from ..store import open_store
from . import i18n
from .choice import Choice
from .i18n import gettext_ as _

__all__ = [
    "GROUPS",
    "SENTENCES",
    "Dashboard",
    "Overview",
    "bar_shares",
    "change_columns",
    "figure_columns",
    "group_title",
    "in_language",
    "month_rows",
    "row_label",
]

log = logging.getLogger("ledger.web")

# the overview's tabs; by profile and by type of structure with the funders' sentences
GROUPS = ("category", "referrer", "referrer_type", "profile", "station")
SENTENCES = ("referrer_type", "profile")


def group_title(by: str) -> str:
    return {
        "month": _("By month"),
        "category": _("By category"),
        "referrer": _("By referring structure"),
        "station": _("By station"),
        "group": _("By association"),
        "referrer_type": _("By type of structure"),
        "profile": _("By household profile"),
    }[by]


def figure_columns() -> list[tuple[str, str]]:
    """(Figures or Changes attribute, header) of every grouped table, in display order."""
    return [
        ("kg", _("kg")),
        ("items", _("items")),
        ("visits", _("visits")),
        ("beneficiaries", _("beneficiaries")),
        ("kg_per_beneficiary", _("kg per beneficiary")),
    ]


def change_columns() -> list[tuple[str, str]]:
    """The grouped tables' year-on-year columns: against the same key over the same period a
    year before (Row.changes). Not for the months: the page's report has no month a year
    before for each month, and a column of "–" would read as no change."""
    return [("kg_pct", _("kg, change")), ("persons_pct", _("persons, change"))]


def month_rows(report: Report) -> list[Row]:
    """Every month of the period as a row, empty months included (a gap is a fact too)."""
    return [Row((key,), (key,), figures) for key, figures in report.monthly]


def row_label(row: Row) -> str:
    """The row's names; "(none)" in the request's language (reports translate it globally)."""
    return " / ".join(
        label if key else _("(none)") for key, label in zip(row.key, row.label, strict=True)
    )


@dataclass(frozen=True)
class Overview:
    """One page of figures: ONE report (totals, counted months, last year, rows by ``by``)."""

    report: Report  # its row names in the page's language
    by: str
    bars: list[float | None]  # per row, its kg as a share of the biggest named row's (0..1)
    chart: str  # the months' inline SVG ("" when empty or not asked)
    summary: list[str]  # the office's sentences
    sentences: list[str]  # by profile or type of structure: "332 women with children (2.2 t)…"
    at: str  # when the report was computed (UTC): up to [dashboard] cache_seconds old


def _now() -> str:
    return datetime.now(UTC).strftime("%H:%M:%S UTC")


@dataclass(frozen=True)
class _Cached:
    at: float  # time.monotonic()
    version: tuple[Any, ...]
    value: Any
    stamp: str = ""  # when computed, for the page


def bar_shares(report: Report) -> list[float | None]:
    """Each row's kg against the biggest named row's, for the bar in its kg cell. Rows without a
    key ("(none)": untagged persons, structures without a type) have no bar: they are often the
    majority and would flatten the others (the table gives their figures)."""
    named = [row.figures.net_mg for row in report.rows if all(row.key)]
    top = max(named, default=0)
    return [
        (row.figures.net_mg / top if top else 0.0) if all(row.key) else None for row in report.rows
    ]


def in_language(report: Report) -> Report:
    """``report`` with its rows named in the current language ("(none)", built-in profile and
    structure type names): a cached report serves every language."""
    rows = [
        replace(
            row,
            label=tuple(report.names.label(g, k) for g, k in zip(report.by, row.key, strict=True)),
        )
        for row in report.rows
    ]
    return replace(report, rows=rows)


class Dashboard:
    """What the pages read. A page shows one report: the period's totals, its months with their
    visits and persons, last year's, and the rows of one grouping (a tab). Reports are kept
    whatever the language, reused while the ledger's change stamp is the same (no record, no
    registry change) and for ``cache_seconds`` anyway while records stream in; this year's
    first tab is computed at start-up, and the pages asked last are recomputed in the
    background when records arrive (:meth:`refresh`)."""

    KEEP = 48  # cached reports, and as many pages (periods × tabs × languages)
    # pages kept up to date in the background: the 8 asked last, if asked in the last 5 min
    # (someone is looking at them)
    RECENT, RECENT_S = 8, 300.0
    REFRESH_S = 5.0  # how often the refresher looks at the change stamp, at the most

    def __init__(self, config: LedgerConfig, store_url: str) -> None:
        self.config = config
        self.store_url = store_url
        self.store: Any = None  # the reports' connection
        self.fleet_store: Any = None  # its own: the fleet page never waits for a report
        self.lock = threading.Lock()  # the reports' connection and the caches
        self.fleet_lock = threading.Lock()
        self.cache: dict[tuple[Any, ...], _Cached] = {}  # reports, language-free
        self.pages: dict[tuple[Any, ...], _Cached] = {}  # overviews, per language
        self.charts: dict[tuple[Any, ...], _Cached] = {}  # the months' SVG, per period
        self.asked: dict[tuple[Any, ...], float] = {}  # page key -> last asked (monotonic)
        # the persons and funders pages' figures: key -> (last asked, how to compute them)
        self.computations: dict[tuple[Any, ...], tuple[float, Callable[[], Any]]] = {}
        self.stopping = threading.Event()

    def open(self) -> None:
        self.store = open_store(self.store_url)
        self.fleet_store = open_store(self.store_url)

    def close(self) -> None:
        for store in (self.store, self.fleet_store):
            if store is not None:
                store.close()
        self.store = self.fleet_store = None

    @property
    def groupings(self) -> tuple[str, ...]:
        """The overview's tabs: by association too when the config groups the stations."""
        return (*GROUPS, "group") if self.config.groups else GROUPS

    def version(self) -> tuple[Any, ...]:
        """Changes whenever a record is stored or the registry (names) changes: cheap (heads
        has a row per station journal)."""
        return tuple(self.store.change_stamp())

    def _fresh(self, hit: _Cached | None, version: tuple[Any, ...]) -> bool:
        fresh = self.config.dashboard.cache_seconds
        return hit is not None and (hit.version == version or time.monotonic() - hit.at < fresh)

    @staticmethod
    def _keep(cache: dict[tuple[Any, ...], _Cached], key: tuple[Any, ...], entry: _Cached) -> None:
        cache[key] = entry
        while len(cache) > Dashboard.KEEP:
            del cache[min(cache, key=lambda k: cache[k].at)]

    def _report(
        self, period: Period, by: str, version: tuple[Any, ...], exact: bool = False
    ) -> _Cached:
        """The report of ``period`` by ``by`` (lock held): totals, months with their visits and
        persons (``detail``: what `ledger report --by month` says), last year's. ``exact``:
        computed at this ``version``, however recent a cached one."""
        key = (period.start, period.end, by)
        hit = self.cache.get(key)
        if hit is not None and (
            hit.version == version or (not exact and self._fresh(hit, version))
        ):
            return hit
        names = load_names(self.store, self.config.groups)
        report = build_report(self.store, period, (by,), names=names, compare=True, detail=True)
        entry = _Cached(time.monotonic(), version, report, _now())
        self._keep(self.cache, key, entry)
        return entry

    def report(self, choice: Choice, by: str, lang: str) -> Report:
        """The report of a table (a CSV download), its rows named in ``lang``."""
        with self.lock:
            entry = self._report(choice.period(), by, self.version())
        with speaking(lang):
            return in_language(entry.value)

    def overview(self, choice: Choice, by: str, lang: str, charts: bool = True) -> Overview:
        """The page of ``choice`` with the tab ``by``, in ``lang``."""
        key = (choice, by, lang, charts)
        with self.lock:
            self.asked[key] = time.monotonic()
            while len(self.asked) > self.KEEP:
                del self.asked[min(self.asked, key=self.asked.__getitem__)]
            version = self.version()
            hit = self.pages.get(key)
            if hit is not None and self._fresh(hit, version):
                page: Overview = hit.value
                return page
            entry = self._report(choice.period(), by, version)
            page = self._page(entry, by, lang, charts)
            self._keep(self.pages, key, _Cached(entry.at, entry.version, page))
            return page

    def _page(self, entry: _Cached, by: str, lang: str, charts: bool) -> Overview:
        """The page from its report (lock held), in ``lang``."""
        i18n.use(lang)  # this thread's titles (the warm-up runs outside any request)
        with speaking(lang):
            report = in_language(entry.value)
            empty = not report.total.weighings
            return Overview(
                report,
                by,
                bar_shares(report),
                self._chart(entry, lang) if charts and not empty else "",
                [] if empty else summary_lines(report, lang),
                row_sentences(report, lang) if by in SENTENCES else [],
                entry.stamp,
            )

    def _chart(self, entry: _Cached, lang: str) -> str:
        """The months' chart: the same for every tab of a period (every report has the months),
        drawn once per period, language and change stamp (matplotlib takes a good part of a
        page's time)."""
        report: Report = entry.value
        key = (report.period.start, report.period.end, lang)
        hit = self.charts.get(key)
        if hit is not None and hit.version == entry.version:
            svg: str = hit.value
            return svg
        svg = monthly_kg_svg(report, lang=lang)
        self._keep(self.charts, key, _Cached(entry.at, entry.version, svg))
        return svg

    def refresh(self) -> int:
        """Recompute the most recently asked pages whose figures changed (the change stamp
        moved), so that their next visitor gets them at once; returns how many. Pages are still
        never older than ``cache_seconds``: one asked after that waits for its figures."""
        with self.lock:
            since = time.monotonic() - self.RECENT_S
            asked = [k for k, at in self.asked.items() if at >= since]
            recent = sorted(asked, key=self.asked.__getitem__, reverse=True)[: self.RECENT]
        done = 0
        for key in recent:
            if self.stopping.is_set():
                break
            choice, by, lang, charts = key
            with self.lock:  # one page at a time: a visitor's request waits for one at most
                version = self.version()
                hit = self.pages.get(key)
                if hit is not None and hit.version == version:
                    continue
                entry = self._report(choice.period(), by, version, exact=True)
                page = self._page(entry, by, lang, charts)
                self._keep(self.pages, key, _Cached(entry.at, entry.version, page))
                done += 1
        return done + self._refresh_computed()

    def _refresh_computed(self) -> int:
        """:meth:`refresh` for the persons and funders pages' figures asked lately."""
        with self.lock:
            since = time.monotonic() - self.RECENT_S
            asked = [(at, k) for k, (at, _c) in self.computations.items() if at >= since]
            asked.sort(key=lambda pair: pair[0], reverse=True)
            recent = [k for _at, k in asked[: self.RECENT]]
        done = 0
        for key in recent:
            if self.stopping.is_set():
                break
            with self.lock:
                version = self.version()
                hit, asked_for = self.cache.get(key), self.computations.get(key)
                if asked_for is None or (hit is not None and hit.version == version):
                    continue
                compute = asked_for[1]
                self._keep(self.cache, key, _Cached(time.monotonic(), version, compute(), _now()))
                done += 1
        return done

    def keep_fresh(self) -> None:
        """The refresher's loop (a thread of `ledger serve` when ``cache_seconds`` > 0), until
        ``stopping`` is set."""
        pause = self.REFRESH_S
        while not self.stopping.wait(pause):
            started = time.monotonic()
            try:
                self.refresh()
            except Exception:  # a database hiccup: the next round, or a visit, tries again
                log.exception("dashboard: refreshing the figures failed")
            # at most half the time computing: the ledger's ingest shares the machine, and
            # records arriving all day would otherwise keep a core busy with reports
            pause = max(self.REFRESH_S, time.monotonic() - started)

    def _computed(self, key: tuple[Any, ...], compute: Callable[[], Any]) -> _Cached:
        """``compute()`` kept under ``key`` while the change stamp is the same (and for
        ``cache_seconds`` anyway), as the reports are."""
        with self.lock:
            self.computations[key] = (time.monotonic(), compute)  # kept fresh by refresh()
            while len(self.computations) > self.KEEP:
                del self.computations[min(self.computations, key=lambda k: self.computations[k][0])]
            version = self.version()
            hit = self.cache.get(key)
            if hit is not None and self._fresh(hit, version):
                return hit
            entry = _Cached(time.monotonic(), version, compute(), _now())
            self._keep(self.cache, key, entry)
            return entry

    def persons(self, choice: Choice) -> tuple[PersonsReport, str]:
        """New and returning persons of the period, their visits per person (ledger persons),
        and when computed."""
        period = choice.period()
        entry = self._computed(
            ("persons", period.start, period.end), lambda: build_persons(self.store, period)
        )
        report: PersonsReport = entry.value
        return report, entry.stamp

    def trend(self) -> tuple[TrendReport, str]:
        """Every year the ledger holds: kg, persons, new persons, visits (ledger trend)."""
        entry = self._computed(("trend",), lambda: build_trend(self.store))
        report: TrendReport = entry.value
        return report, entry.stamp

    def fead(self, choice: Choice, estimate: bool) -> tuple[FeadReport, str]:
        """The FEAD / ESF+ indicators of the period (ledger fead), and when computed."""
        period = choice.period()
        entry = self._computed(
            ("fead", period.start, period.end, estimate),
            lambda: build_fead(self.store, period, estimate=estimate),
        )
        report: FeadReport = entry.value
        return report, entry.stamp

    def organisms(self) -> dict[str, str]:
        """The eco-organisms the registry maps categories to: code -> name."""
        entry = self._computed(("organisms",), lambda: dict(load_mapping(self.store).organisms))
        found: dict[str, str] = entry.value
        return found

    def eco(self, choice: Choice, organism: str) -> tuple[EcoReport, str]:
        """``organism``'s "sortie réemploi (don)" declaration for the period (ledger eco)."""
        period = choice.period()
        entry = self._computed(
            ("eco", period.start, period.end, organism),
            lambda: build_eco(self.store, period, organism),
        )
        report: EcoReport = entry.value
        return report, entry.stamp

    def warm(self, lang: str) -> None:
        """This year's first tab computed ahead, so the first visitor does not wait for it."""
        try:
            self.overview(Choice(datetime.now(UTC).year), self.groupings[0], lang)
        except Exception:  # a warm-up failing must not stop the server; a visit shows why
            log.exception("dashboard: warming up this year's figures failed")

    def fleet(self) -> tuple[list[dict[str, Any]], int]:
        """Each station's state, and how many messages wait in quarantine."""
        with self.fleet_lock:
            rows = [dict(r) for r in self.fleet_store.fleet()]  # typed rows: add a column
            quarantined = len(self.fleet_store.quarantined())
        due = self.config.dashboard.calibration_days
        for row in rows:
            age = row.get("calibration_age_days")
            row["calibration_due"] = None if age is None else age >= due
            # over its quarantine cap ([ledger] quarantine_max_*): a station sending garbage
            row["flooding"] = (row.get("quarantine_dropped") or 0) > 0
        return rows, quarantined
