"""The dashboard's Starlette app: login, figures for a period, the fleet, CSV of every table."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import secrets
import socket
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

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

from common.i18n import language as process_language
from common.i18n import speaking

from ..config import LedgerConfig
from ..funders.fead import INDICATORS
from ..funders.fead import label as fead_label
from ..funders.fead import sentences as fead_sentences
from ..funders.fead import source as fead_source
from ..funders.render import eco_sentences
from ..redact import error_line, redacted
from ..store import open_store
from . import i18n
from .auth import hash_password, verify_password
from .choice import Choice
from .export import EXTRA_TABLES, attachment, table_csv
from .figures import Dashboard, change_columns, figure_columns, group_title, month_rows, row_label
from .i18n import gettext_ as _
from .security import (
    CSRF_FIELD,
    LoginThrottle,
    SecurityHeaders,
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
        num=i18n.fmt_num,
        int=i18n.fmt_int,
        pct=i18n.fmt_pct,
        when=i18n.fmt_when,
        label=row_label,
        day=i18n.fmt_day,
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
        by = request.query_params.get("by") or ""
        by = by if by in groupings else groupings[0]  # an unknown tab: the first one
        page = await run_in_threadpool(dashboard.overview, choice, by, lang)
        report = page.report
        return render(
            request,
            "overview.html",
            status=400 if choice.problem else 200,  # this year's figures, under the notice
            choice=choice,
            by=by,
            period_label=choice.heading(lang),
            report=report,
            months=month_rows(report),
            summary=page.summary,
            computed_at=page.at,
            tabs=[(name, group_title(name)) for name in groupings],
            title=group_title(by),
            rows_bars=page.bars,
            sentences=page.sentences,
            columns=figure_columns(),
            changes=change_columns(),
            chart=page.chart,
            years=range(datetime.now(UTC).year, 2009, -1),
        )

    @login_required
    async def persons(request: Request) -> Response:
        choice = Choice.from_query(dict(request.query_params), datetime.now(UTC).date())
        lang = language(request)
        report, at = await run_in_threadpool(dashboard.persons, choice)
        trend, _at = await run_in_threadpool(dashboard.trend)
        bands = report.bands()
        return render(
            request,
            "persons.html",
            status=400 if choice.problem else 200,
            choice=choice,
            period_label=choice.heading(lang),
            persons=report,
            bands=bands,
            top=max((n for _band, n in bands), default=0),
            trend=trend,
            computed_at=at,
            years=range(datetime.now(UTC).year, 2009, -1),
        )

    @login_required
    async def funders(request: Request) -> Response:
        choice = Choice.from_query(dict(request.query_params), datetime.now(UTC).date())
        lang = language(request)
        estimate = request.query_params.get("estimate") == "1"
        fead, at = await run_in_threadpool(dashboard.fead, choice, estimate)
        organisms = await run_in_threadpool(dashboard.organisms)
        organism = request.query_params.get("organism") or ""
        organism = organism if organism in organisms else next(iter(organisms), "")
        eco = (await run_in_threadpool(dashboard.eco, choice, organism))[0] if organism else None
        return render(
            request,
            "funders.html",
            status=400 if choice.problem else 200,
            choice=choice,
            period_label=choice.heading(lang),
            fead=fead,
            fead_lines=fead_sentences(fead, lang),
            indicators=[(i.key, fead_label(i), fead_source(i)) for i in INDICATORS],
            estimate=estimate,
            organisms=organisms,
            organism=organism,
            eco=eco,
            eco_lines=eco_sentences(eco, lang) if eco else [],
            computed_at=at,
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
            flooding=sum(1 for r in rows if r["flooding"]),
        )

    @login_required
    async def export(request: Request) -> Response:
        table = request.path_params["table"]
        if table not in ("month", *dashboard.groupings, *EXTRA_TABLES):
            return Response(_("No such table."), status_code=404, media_type="text/plain")
        choice = Choice.from_query(dict(request.query_params), datetime.now(UTC).date())
        if choice.problem and table not in ("fleet", "trend"):  # never another period's figures
            return Response(choice.problem, status_code=400, media_type="text/plain")
        query = dict(request.query_params)
        lang = language(request)
        try:
            body = await run_in_threadpool(table_csv, dashboard, table, choice, lang, query)
        except LookupError:  # an eco-organism the registry does not map
            return Response(_("No such table."), status_code=404, media_type="text/plain")
        period = "" if table in ("fleet", "trend") else "-" + choice.label.replace(" ", "")
        return Response(
            body,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": attachment(f"pesee-{table}{period}.csv")},
        )

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await run_in_threadpool(dashboard.open)
        log.info("dashboard reading %s", redacted(dashboard.store_url))
        warm = threading.Thread(
            target=dashboard.warm, args=(section.language,), name="warm-up", daemon=True
        )
        warm.start()
        # pages asked lately follow the records as they arrive (none when every page is
        # computed when asked: cache_seconds = 0)
        fresh = threading.Thread(target=dashboard.keep_fresh, name="refresher", daemon=True)
        if section.cache_seconds:
            fresh.start()
        try:
            yield
        finally:
            dashboard.stopping.set()
            await run_in_threadpool(warm.join)
            if fresh.is_alive():
                await run_in_threadpool(fresh.join)
            dashboard.close()

    app = Starlette(
        routes=[
            Route("/login", login_page, methods=["GET"]),
            Route("/login", login, methods=["POST"]),
            Route("/logout", logout, methods=["POST"]),
            Route("/", overview),
            Route("/persons", persons),
            Route("/funders", funders),
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


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"
