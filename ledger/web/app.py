"""The dashboard's Starlette app: login, figures for a period, the fleet, CSV of every table."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import logging
import re
import secrets
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import anyio
import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common.i18n import language as process_language
from common.i18n import speaking

from ..charts import bars_svg, monthly_kg_svg
from ..config import LedgerConfig
from ..redact import error_line, redacted
from ..report_render import spreadsheet_cell, summary_lines, to_csv
from ..reports import Period, Report, Row, build_report, load_names
from ..store import open_store
from . import i18n
from .auth import hash_password, verify_password
from .i18n import gettext_ as _
from .security import (
    CSRF_FIELD,
    LoginThrottle,
    ServerSessions,
    SessionStore,
    csrf_token,
    csrf_valid,
    same_origin,
)

__all__ = ["DashboardError", "DatabaseUnavailable", "create_app"]

log = logging.getLogger("ledger.web")
HERE = Path(__file__).parent
COOKIE = "pesee_dashboard"

Handler = Callable[[Request], Awaitable[Response]]


class DashboardError(ValueError):
    """The dashboard cannot start (no users, no secret): one line for the operator."""


class DatabaseUnavailable(DashboardError):
    """The ledger database cannot be opened (server down, wrong path): `ledger serve` exits 74."""


# the periods one can ask for, as `ledger report` (out of it, the date arithmetic overflows)
FIRST_YEAR, LAST_YEAR = 2000, 2100


# -- the period asked for ------------------------------------------------------------------------
@dataclass(frozen=True)
class Choice:
    """The period selector's state, from the query string; ``problem`` says what was ignored."""

    year: int
    quarter: int | None = None
    month: int | None = None
    start: date | None = None
    end: date | None = None
    problem: str | None = None

    @classmethod
    def from_query(cls, query: dict[str, str], today: date) -> Choice:
        def number(name: str, low: int, high: int) -> int | None:
            text = (query.get(name) or "").strip()
            if not text:
                return None
            value = int(text)  # ValueError caught below
            if not low <= value <= high:
                raise ValueError(name)
            return value

        def day(name: str) -> date | None:
            text = (query.get(name) or "").strip()
            if not text:
                return None
            value = date.fromisoformat(text)
            if not FIRST_YEAR <= value.year <= LAST_YEAR:
                raise ValueError(name)
            return value

        try:
            year = number("year", FIRST_YEAR, LAST_YEAR) or today.year
            month = number("month", 1, 12)
            quarter = None if month else number("quarter", 1, 4)
            start, end = day("from"), day("to")
            if (start is None) != (end is None) or (start and end and end < start):
                raise ValueError("range")
            choice = cls(year, quarter, month, start, end)
            choice.period().previous_year()  # what a report computes: fails here, not later
        except (ValueError, OverflowError):
            return cls(
                today.year,
                problem=_(
                    "That period is not valid (dates from {first} to {last}): showing this year."
                ).format(first=f"{FIRST_YEAR}-01-01", last=f"{LAST_YEAR}-12-31"),
            )
        return choice

    @property
    def query(self) -> str:
        """The query string that selects this period again (links, CSV downloads)."""
        if self.start and self.end:
            return urlencode({"from": self.start.isoformat(), "to": self.end.isoformat()})
        params: dict[str, int] = {"year": self.year}
        if self.month:
            params["month"] = self.month
        elif self.quarter:
            params["quarter"] = self.quarter
        return urlencode(params)

    @property
    def label(self) -> str:
        if self.start and self.end:
            return f"{self.start.isoformat()} – {self.end.isoformat()}"
        if self.month:
            return f"{self.year}-{self.month:02d}"
        if self.quarter:
            return _("Q%(n)s") % {"n": self.quarter} + f" {self.year}"
        return str(self.year)

    def period(self) -> Period:
        if self.start and self.end:
            return Period.between(self.start, self.end + timedelta(days=1))  # "to" is included
        if self.month:
            return Period.month(self.year, self.month)
        if self.quarter:
            return Period.quarter(self.year, self.quarter)
        return Period.year(self.year)


# -- figures ---------------------------------------------------------------------------------------
GROUPS = ("category", "referrer", "station")
BOM = "\ufeff".encode()


def _group_title(by: str) -> str:
    return {
        "month": _("By month"),
        "category": _("By category"),
        "referrer": _("By referring structure"),
        "station": _("By station"),
        "group": _("By association"),
    }[by]


def _figure_columns() -> list[tuple[str, str]]:
    """(Figures attribute, header) of every grouped table, in display order."""
    return [
        ("kg", _("kg")),
        ("items", _("items")),
        ("visits", _("visits")),
        ("beneficiaries", _("beneficiaries")),
        ("kg_per_beneficiary", _("kg per beneficiary")),
    ]


@dataclass(frozen=True)
class Overview:
    reports: dict[str, Report]  # by grouping
    charts: dict[str, str]  # inline SVG by grouping, and "month"
    summary: list[str]  # the office's sentences
    at: str  # when computed (UTC), shown: figures may be up to [dashboard] cache_seconds old


@dataclass(frozen=True)
class _Cached:
    at: float  # time.monotonic()
    version: tuple[Any, ...]
    value: Overview


class Dashboard:
    """What the pages read. A yearly report over a big network takes seconds per grouping, so
    results are kept: reused while no record arrived (``version``), and for ``cache_seconds``
    anyway while records stream in; this year's is computed at start-up."""

    KEEP = 48  # cached overviews (periods × languages)

    def __init__(self, config: LedgerConfig, store_url: str) -> None:
        self.config = config
        self.store_url = store_url
        self.store: Any = None  # the reports' connection
        self.fleet_store: Any = None  # its own: the fleet page never waits for a report
        self.lock = threading.Lock()  # the reports' connection and the cache
        self.fleet_lock = threading.Lock()
        self.cache: dict[tuple[Any, ...], _Cached] = {}

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
        """The overview's tables: by association too when the config groups the stations."""
        return (*GROUPS, "group") if self.config.groups else GROUPS

    def _version(self) -> tuple[Any, ...]:
        """Changes whenever a record is stored or the registry (names) changes: cheap (heads
        has a row per station journal)."""
        return tuple(self.store.change_stamp())

    def reports(
        self, choice: Choice, groupings: tuple[str, ...], lang: str, charts: bool = False
    ) -> Overview:
        """One report per grouping (the first also gives the totals, the months and last year's),
        their charts, and the summary sentences. In ``lang``: the reports' and charts' names use
        the global catalogue, switched under report_render's lock."""
        key = (choice, groupings, lang, charts)
        with self.lock:
            version = self._version()
            hit = self.cache.get(key)
            fresh = self.config.dashboard.cache_seconds
            if hit and (hit.version == version or time.monotonic() - hit.at < fresh):
                return hit.value
            value = self._compute(choice, groupings, lang, charts)
            self.cache[key] = _Cached(time.monotonic(), version, value)
            while len(self.cache) > self.KEEP:
                oldest = min(self.cache, key=lambda k: self.cache[k].at)
                del self.cache[oldest]
            return value

    def _compute(
        self, choice: Choice, groupings: tuple[str, ...], lang: str, charts: bool
    ) -> Overview:
        i18n.use(lang)  # this thread's titles (the warm-up runs outside any request)
        period = choice.period()
        svg: dict[str, str] = {}
        with speaking(lang):
            names = load_names(self.store, self.config.groups)
            out = {
                by: build_report(self.store, period, (by,), names=names, compare=n == 0)
                for n, by in enumerate(groupings)
            }
            main = out[groupings[0]]
            empty = not main.total.weighings
            summary = [] if empty else summary_lines(main, lang)
            if charts and not empty:
                svg["month"] = monthly_kg_svg(main, lang=lang)
                for by in groupings:
                    svg[by] = bars_svg(out[by].rows, _group_title(by), lang=lang, limit=12)
        return Overview(out, svg, summary, datetime.now(UTC).strftime("%H:%M:%S UTC"))

    def warm(self, lang: str) -> None:
        """This year's overview computed ahead, so the first visitor does not wait for it."""
        try:
            choice = Choice(datetime.now(UTC).year)
            self.reports(choice, self.groupings, lang, True)
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
        return rows, quarantined


# -- pages ---------------------------------------------------------------------------------------
def _templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        extensions=["jinja2.ext.i18n"],
        undefined=jinja2.StrictUndefined,
    )
    env.install_gettext_callables(i18n.gettext_, i18n.ngettext_, newstyle=True)  # type: ignore[attr-defined]
    env.filters.update(
        num=i18n.fmt_num, int=i18n.fmt_int, pct=i18n.fmt_pct, when=i18n.fmt_when, label=_label
    )
    return Jinja2Templates(env=env)


def allowed_hosts(section: Any) -> list[str]:
    """The Host names the dashboard answers: ``[dashboard] allowed_hosts``, else the loopback
    names and the address it listens on (a wildcard address adds this machine's names)."""
    configured = getattr(section, "allowed_hosts", None)
    if configured:
        return list(configured)
    hosts = ["localhost", "127.0.0.1", "::1", "[::1]"]
    if section.host in ("0.0.0.0", "::", ""):
        name = socket.gethostname()
        hosts += [name, socket.getfqdn(name), f"{name}.local"]
    else:
        hosts.append(section.host)
    return list(dict.fromkeys(hosts))


def _safe_next(target: str | None) -> str:
    """Only a path of this site after login (never //host or a full URL: no open redirect)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def create_app(config: LedgerConfig, store_url: str | None = None) -> Starlette:
    """The dashboard for ``config``, reading ``store_url`` (default: ``[ledger] database``)."""
    section = config.dashboard
    accounts = section.accounts
    with speaking(process_language()):  # said to the operator, in the CLI's language
        if not accounts:
            raise DashboardError(
                _("No dashboard users: add [dashboard.users] (lines from `ledger passwd NAME`).")
            )
        if not section.secret_key:
            raise DashboardError(
                _('No session secret: set [dashboard] secret_key = "env:PESEE_DASHBOARD_SECRET".')
            )
        url = store_url or config.ledger.database
        try:  # here, not in the lifespan: uvicorn would print a traceback and exit 3
            open_store(url).close()
        except Exception as exc:  # sqlite3, psycopg and a bad URL's ValueError alike
            raise DatabaseUnavailable(
                _("Cannot open the ledger database: {error}").format(error=error_line(exc))
            ) from exc
    dashboard = Dashboard(config, url)
    sessions = SessionStore(section.session_hours * 3600)
    throttle = LoginThrottle()
    templates = _templates()
    # an unknown user costs the same scrypt as a known one: response time does not tell names
    decoy = hash_password(secrets.token_hex(16))
    # each check takes 128 MiB for ~0.4 s: two at a time, so a burst of attempts queues
    # instead of exhausting the memory
    hashing = anyio.Semaphore(2)

    def fingerprint(user: str) -> str:
        """Ties a session to the password it was opened with (a digest, never the hash)."""
        return hashlib.sha256(accounts[user].encode()).hexdigest()[:16]

    def language(request: Request) -> str:
        asked = request.query_params.get("lang")
        if asked in i18n.LANGUAGES:
            request.session["lang"] = asked
        lang = str(request.session.get("lang") or section.language)
        i18n.use(lang)
        return lang

    def render(request: Request, template: str, status: int = 200, **context: Any) -> Response:
        lang = language(request)
        here = request.url.path
        keep = {k: v for k, v in request.query_params.items() if k != "lang"}
        switch = {code: here + "?" + urlencode({**keep, "lang": code}) for code in i18n.LANGUAGES}
        return templates.TemplateResponse(
            request,
            template,
            {
                "lang": lang,
                "switch": switch,
                "user": request.session.get("user"),
                "csrf": csrf_token(request.session),
                **context,
            },
            status_code=status,
        )

    def login_required(handler: Handler) -> Handler:
        async def guarded(request: Request) -> Response:
            user = request.session.get("user")
            # a user removed from the config, or whose password changed, is logged out; a
            # signed cookie copied before its logout (or from before a restart) is refused
            if user not in accounts or request.session.get("key") != fingerprint(user):
                for name in ("user", "key"):
                    request.session.pop(name, None)
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse("/login?" + urlencode({"next": target}), status_code=303)
            language(request)
            return await handler(request)

        return guarded

    async def login_page(request: Request) -> Response:
        return render(request, "login.html", next=_safe_next(request.query_params.get("next")))

    def forged(request: Request, form: Any) -> Response | None:
        """403 for a form posted from another site or without this session's token."""
        if same_origin(request.headers, request.headers.get("host", "")) and csrf_valid(
            request.session, form.get(CSRF_FIELD)
        ):
            return None
        log.warning("dashboard: refused a %s without a valid token", request.url.path)
        return Response(
            _("This form has expired: reload the page and try again."),
            status_code=403,
            media_type="text/plain; charset=utf-8",
        )

    async def login(request: Request) -> Response:
        form = await request.form()
        name = str(form.get("user") or "").strip()
        password = str(form.get("password") or "")
        target = _safe_next(str(form.get("next") or ""))
        refused = forged(request, form)
        if refused is not None:
            return refused
        address = _client(request)
        wait = throttle.wait(name, address)
        if wait > 0:
            log.warning("dashboard: login for %r from %s refused: too many failures", name, address)
            minutes = max(1, int(wait // 60) + 1)
            return render(
                request,
                "login.html",
                status=429,
                next=target,
                error=_("Too many failed attempts: try again in {minutes} min.").format(
                    minutes=minutes
                ),
                name=name,
            )
        stored = accounts.get(name)
        async with hashing:
            ok = await run_in_threadpool(verify_password, password, stored or decoy)
        if not (ok and stored):
            throttle.failed(name, address)
            log.warning("dashboard: failed login for %r from %s", name, address)
            return render(
                request,
                "login.html",
                status=401,
                next=target,
                error=_("Wrong user name or password."),
                name=name,
            )
        throttle.succeeded(name)
        lang = request.session.get("lang")
        request.session.clear()  # a new session id and a new token once logged in
        request.session.update(
            {"user": name, "key": fingerprint(name), **({"lang": lang} if lang else {})}
        )
        log.info("dashboard: %s logged in from %s", name, _client(request))
        return RedirectResponse(target, status_code=303)

    async def logout(request: Request) -> Response:
        refused = forged(request, await request.form())
        if refused is not None:
            return refused
        request.session.clear()  # the session is dropped here: copies of its cookie die with it
        return RedirectResponse("/login", status_code=303)

    @login_required
    async def overview(request: Request) -> Response:
        choice = Choice.from_query(dict(request.query_params), datetime.now(UTC).date())
        lang = language(request)
        groupings = dashboard.groupings
        data = await run_in_threadpool(dashboard.reports, choice, groupings, lang, True)
        main = data.reports[groupings[0]]
        return render(
            request,
            "overview.html",
            status=400 if choice.problem else 200,  # this year's figures, under the notice
            choice=choice,
            period_label=choice.label,
            report=main,
            months=_month_rows(main),
            summary=data.summary,
            computed_at=data.at,
            groups=[(by, _group_title(by), data.reports[by]) for by in groupings],
            columns=_figure_columns(),
            charts=data.charts,
            years=range(datetime.now(UTC).year, 2009, -1),
        )

    @login_required
    async def fleet(request: Request) -> Response:
        rows, quarantined = await run_in_threadpool(dashboard.fleet)
        return render(
            request,
            "fleet.html",
            rows=rows,
            quarantined=quarantined,
            online=sum(1 for r in rows if r["online"]),
            conflicts=sum(r["conflicts"] or 0 for r in rows),
        )

    @login_required
    async def export(request: Request) -> Response:
        table = request.path_params["table"]
        if table not in ("month", *dashboard.groupings, "fleet"):
            return Response(_("No such table."), status_code=404, media_type="text/plain")
        choice = Choice.from_query(dict(request.query_params), datetime.now(UTC).date())
        if choice.problem and table != "fleet":  # never another period's figures as a file
            return Response(choice.problem, status_code=400, media_type="text/plain")
        body = await run_in_threadpool(_csv, dashboard, table, choice, language(request))
        period = "" if table == "fleet" else "-" + choice.label.replace(" ", "")
        return Response(
            body,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": _attachment(f"pesee-{table}{period}.csv")},
        )

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await run_in_threadpool(dashboard.open)
        log.info("dashboard reading %s", redacted(dashboard.store_url))
        warm = threading.Thread(
            target=dashboard.warm, args=(section.language,), name="warm-up", daemon=True
        )
        warm.start()
        try:
            yield
        finally:
            await run_in_threadpool(warm.join)
            dashboard.close()

    app = Starlette(
        routes=[
            Route("/login", login_page, methods=["GET"]),
            Route("/login", login, methods=["POST"]),
            Route("/logout", logout, methods=["POST"]),
            Route("/", overview),
            Route("/fleet", fleet),
            Route("/export/{table}.csv", export),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ],
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts(section)),
            Middleware(
                ServerSessions,
                store=sessions,
                cookie=COOKIE,
                max_age=section.session_hours * 3600,
                https_only=section.https_only,
            ),
        ],
        lifespan=lifespan,
    )
    app.state.dashboard = dashboard
    return app


# No script at all; inline styles only for matplotlib's inline SVG; never framed elsewhere.
_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        b"frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]


class SecurityHeaders:
    """Adds the headers above; pages with figures are not kept in caches (no-store)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", [])) + _HEADERS
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _attachment(name: str) -> str:
    """Content-Disposition for ``name``: headers are Latin-1, so an ASCII ``filename`` for
    every client and the exact name (en dash of a range…) as RFC 5987 ``filename*``."""
    fallback = re.sub(r"[^A-Za-z0-9._-]+", "_", name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"


def _month_rows(report: Report) -> list[Row]:
    """Every month of the period as a row, empty months included (a gap is a fact too)."""
    return [Row((key,), (key,), figures) for key, figures in report.monthly]


def _label(row: Row) -> str:
    """The row's names; "(none)" in the request's language (reports translate it globally)."""
    return " / ".join(
        label if key else _("(none)") for key, label in zip(row.key, row.label, strict=True)
    )


FLEET_FIELDS = (
    "station",
    "online",
    "last_seen",
    "backlog",
    "clock_synced",
    "scale_ok",
    "calibration_age_days",
    "calibration_due",
    "records",
    "conflicts",
    "version",
)


def _csv(dashboard: Dashboard, table: str, choice: Choice, lang: str) -> bytes:
    """French: what LibreOffice and Excel open as they are in France (BOM, ``;``, decimal
    comma); English: plain CSV with a BOM (Excel needs it to read UTF-8)."""
    excel = lang == "fr"
    if table != "fleet":
        reports = dashboard.reports(choice, (table,), lang).reports
        return to_csv(reports[table], excel=excel) if excel else BOM + to_csv(reports[table])
    rows, _quarantined = dashboard.fleet()
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";" if excel else ",", lineterminator="\r\n")
    if excel:  # a spreadsheet for people: the fleet page's own column titles
        titles = {
            "station": _("Station"),
            "online": _("Online"),
            "last_seen": _("Last seen"),
            "backlog": _("Backlog"),
            "clock_synced": _("Clock"),
            "scale_ok": _("Scale"),
            "calibration_age_days": _("Calibration (days)"),
            "calibration_due": _("due"),
            "records": _("Records"),
            "conflicts": _("Conflicts"),
            "version": _("Version"),
        }
        writer.writerow([titles[f] for f in FLEET_FIELDS])
    else:
        writer.writerow(FLEET_FIELDS)
    for row in rows:
        values = [row.get(f) for f in FLEET_FIELDS]
        writer.writerow(
            [
                str(v).replace(".", ",") if excel and isinstance(v, float) else spreadsheet_cell(v)
                for v in values
            ]
        )
    return BOM + out.getvalue().encode("utf-8")
