"""The counter screen's web app (Starlette): the page, its live feed (SSE) and the touch buttons.

It only READS ``Station.snapshot`` (replaced whole by the loop, so reading it needs no lock) and
only WRITES through ``Station.post`` with the very events the panel and the scanner post."""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
from sse_starlette import EventSourceResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from .. import __version__
from ..config import Config
from ..events import ButtonHeld, ButtonPressed, CodeScanned, Event
from ..loop import Snapshot, Station
from .access import Guard
from .view import build, catalogue, pick_language

__all__ = ["POLL_S", "make_app"]

HERE = Path(__file__).parent
POLL_S = 0.15  # how often an open page's feed looks at the snapshot (a pointer compare)

_STATIC = {
    "screen.css": "text/css; charset=utf-8",
    "screen.js": "text/javascript; charset=utf-8",
}
# the page's own; access.SECURITY_HEADERS (nosniff, no framing, no referrer) go on every response
_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; base-uri 'none'",
}


def make_app(station: Station, config: Config, stopping: threading.Event) -> Starlette:
    """The app for ``station``; ``stopping`` set ends every open feed (clean server shutdown)."""
    section = config.screen
    default_lang = section.language or config.station.language
    sync_enabled = config.sync is not None and config.sync.enabled
    static = {name: (HERE / "static" / name).read_bytes() for name in _STATIC}
    version = hashlib.sha256(b"".join(static.values())).hexdigest()[:10]
    envs: dict[str, jinja2.Environment] = {}
    last_tap: dict[str, float] = {}

    def env(lang: str) -> jinja2.Environment:
        if lang not in envs:
            e = jinja2.Environment(
                loader=jinja2.FileSystemLoader(HERE / "templates"),
                autoescape=True,
                extensions=["jinja2.ext.i18n"],
            )
            e.install_gettext_translations(catalogue(lang), newstyle=True)  # type: ignore[attr-defined]
            envs[lang] = e
        return envs[lang]

    def view(snap: Snapshot, lang: str) -> dict[str, Any]:
        return build(snap, station.config, lang, sync_enabled=sync_enabled)

    def lang_of(request: Request) -> str:
        return pick_language(request.query_params.get("lang"), default_lang)

    async def page(request: Request) -> Response:
        lang = lang_of(request)
        html = (
            env(lang)
            .get_template("screen.html")
            .render(
                lang=lang,
                station=config.station.id,
                view=view(station.snapshot, lang),
                touch=section.touch_buttons,
                version=f"{__version__}-{version}",
            )
        )
        return HTMLResponse(html, headers=_HEADERS)

    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in static:
            return PlainTextResponse("not found", status_code=404)
        # the page asks for ?v=<hash of the files>: an update changes the address
        headers = {"Cache-Control": "public, max-age=31536000, immutable"}
        return Response(static[name], media_type=_STATIC[name], headers=headers)

    async def current(request: Request) -> Response:
        return JSONResponse(view(station.snapshot, lang_of(request)), headers=_HEADERS)

    async def feed(request: Request) -> Response:
        lang = lang_of(request)

        async def changes() -> AsyncIterator[dict[str, Any]]:
            # Poll the snapshot's identity: the loop replaces it whole on every turn, so a
            # pointer compare says "maybe changed" and costs nothing; the view is rebuilt and
            # sent only when what the page shows has changed. Nothing here touches the loop.
            seen = station.snapshot
            sent = view(seen, lang)
            yield {"event": "view", "data": _dumps(sent), "retry": 2000}
            while not stopping.is_set():
                await asyncio.sleep(POLL_S)
                snap = station.snapshot
                if snap is not seen and snap != seen:
                    seen = snap
                    data = view(snap, lang)
                    if data != sent:
                        sent = data
                        yield {"event": "view", "data": _dumps(data)}

        return EventSourceResponse(changes(), headers={"Cache-Control": "no-store"})

    def action(make: Callable[[], Event]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            _ = catalogue(lang_of(request)).gettext
            if not section.touch_buttons:
                return PlainTextResponse(_("Touch buttons are off"), status_code=403)
            if not _same_origin(request):
                return PlainTextResponse(_("Refused: not sent by this page"), status_code=403)
            now = time.monotonic()
            name = request.url.path
            if now - last_tap.get(name, -1e9) < section.tap_gap:
                return JSONResponse({"accepted": False, "reason": "double tap"}, status_code=429)
            last_tap[name] = now
            station.post(make())  # the very event the panel / the scanner would post
            return JSONResponse({"accepted": True}, status_code=202)

        return endpoint

    routes = [
        Route("/", page),
        Route("/static/{name}", asset),
        Route("/view.json", current),
        Route("/events", feed),
        Route("/action/press", action(lambda: ButtonPressed(time.monotonic())), methods=["POST"]),
        Route("/action/void", action(lambda: ButtonHeld(time.monotonic())), methods=["POST"]),
        Route(
            "/action/end",
            action(lambda: CodeScanned(station.config.codes.end_visit, time.monotonic())),
            methods=["POST"],
        ),
    ]
    app = Starlette(routes=routes)
    app.add_middleware(Guard, config=config)
    return app


def _dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def _same_origin(request: Request) -> bool:
    """POSTs from this page only: browsers send Origin (or at least Referer) with a fetch POST,
    and a page elsewhere cannot forge either."""
    host = request.headers.get("host", "")
    origin = request.headers.get("origin")
    if origin is None:
        referer = request.headers.get("referer")
        if referer is None:
            return False
        parts = urlsplit(referer)
        origin = f"{parts.scheme}://{parts.netloc}"
    return origin == f"{request.url.scheme}://{host}"
