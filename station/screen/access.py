"""Who may see the counter screen: loopback names only, or a token once then a session cookie.

The cookie is a random session value (never the token, nor anything derived from it), valid
``LIFETIME_S`` and renewed while a page stays open; the station keeps only a digest of each
session, in ``<data_dir>/screen-sessions.json`` so a daemon restart does not log tablets out."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from starlette.datastructures import URL, MutableHeaders
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common.i18n import _, pick_language

from ..config import Config
from .view import catalogue

__all__ = [
    "COOKIE",
    "LIFETIME_S",
    "LOOPBACK_NAMES",
    "MAX_SESSIONS",
    "RENEW_AFTER_S",
    "SECURITY_HEADERS",
    "SESSIONS_FILE",
    "Guard",
    "Sessions",
    "digest",
    "token_fingerprint",
]

log = logging.getLogger("station")

COOKIE = "pesee_screen"
LIFETIME_S = 12 * 3600  # a counter day; a page left open renews it (RENEW_AFTER_S)
RENEW_AFTER_S = 3600  # renew (and rewrite the file) at most once an hour per session
MAX_SESSIONS = 32  # a handful of tablets; the oldest session goes first
SESSIONS_FILE = "screen-sessions.json"
LOOPBACK_NAMES = {"127.0.0.1", "localhost", "::1"}
# on every response, errors and static files included
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",  # no framing of the touch buttons by another page
    "Referrer-Policy": "no-referrer",
}


def digest(value: str) -> str:
    """What is stored and compared: a fixed-length digest, so comparisons leak no length."""
    return hashlib.sha256(value.encode()).hexdigest()


def token_fingerprint(salt: str, token: str) -> str:
    """Which token the stored sessions were opened with: a new token logs every tablet out."""
    return digest(salt + token)


class Sessions:
    """Session digests and their expiry (wall-clock seconds: they must outlive the process).

    The file: ``{"salt": …, "token": token_fingerprint(salt, token), "sessions": {digest:
    expiry}}``; sessions opened with another token are dropped when it is read."""

    def __init__(self, path: Path | None, token: str) -> None:
        self.path = path
        self.token = token
        self._salt = secrets.token_hex(16)
        self._lock = threading.Lock()  # uvicorn runs one event loop, but stay safe
        self._expiry: dict[str, float] = self._load()

    def _load(self) -> dict[str, float]:
        if self.path is None:
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning(_("counter screen: sessions unreadable, tablets must log in: %s"), exc)
            return {}
        if not isinstance(data, dict) or not isinstance(data.get("salt"), str):
            return {}
        fingerprint = token_fingerprint(data["salt"], self.token)
        if not hmac.compare_digest(str(data.get("token", "")), fingerprint):
            return {}  # opened with another token: the token was changed
        sessions = data.get("sessions")
        if not isinstance(sessions, dict):
            return {}
        self._salt = data["salt"]
        now = time.time()
        return {
            k: float(v)
            for k, v in sessions.items()
            if isinstance(k, str) and isinstance(v, (int, float)) and v > now
        }

    def _save(self) -> None:
        if self.path is None:
            return
        tmp = self.path.with_name(self.path.name + ".tmp")
        data = {
            "salt": self._salt,
            "token": token_fingerprint(self._salt, self.token),
            "sessions": self._expiry,
        }
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(data, out)
            os.replace(tmp, self.path)
        except OSError as exc:  # the sessions still work until the daemon restarts
            log.warning(_("counter screen: cannot save sessions: %s"), exc)

    def new(self) -> str:
        """A fresh session: the cookie's value (returned once, never stored as such)."""
        value = secrets.token_urlsafe(32)
        with self._lock:
            now = time.time()
            live = {k: v for k, v in self._expiry.items() if v > now}
            while len(live) >= MAX_SESSIONS:
                del live[min(live, key=live.__getitem__)]
            live[digest(value)] = now + LIFETIME_S
            self._expiry = live
            self._save()
        return value

    def check(self, value: str) -> bool | None:
        """None: not a live session. False: live. True: live and just renewed (send the cookie
        again with a fresh lifetime)."""
        given = digest(value)
        now = time.time()
        with self._lock:
            found = None
            for key in list(self._expiry):  # every stored digest, each in constant time
                if hmac.compare_digest(key, given):
                    found = key
            if found is None or self._expiry[found] <= now:
                return None
            if self._expiry[found] - now > LIFETIME_S - RENEW_AFTER_S:
                return False
            self._expiry[found] = now + LIFETIME_S
            self._save()
            return True


def _host_name(host_header: str) -> str:
    return (urlsplit(f"//{host_header}").hostname or "").lower()


class Guard:
    """Access rules and security headers in front of every route.

    Loopback: only requests addressed to a loopback name (a web page elsewhere cannot reach the
    station through DNS rebinding). With a token: ``?token=`` once opens a session (a cookie)."""

    def __init__(self, app: ASGIApp, config: Config) -> None:
        self.app = app
        self.section = config.screen
        token = self.section.token or ""
        self.token_digest = digest(token) if token else ""
        self.lang = self.section.language or config.station.language
        self.sessions = Sessions(config.station.data_dir / SESSIONS_FILE if token else None, token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cookie: str | None = None

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
                if cookie is not None:
                    headers.append("set-cookie", _set_cookie(cookie))
            await send(message)

        request = Request(scope)
        _ = catalogue(pick_language(request.query_params.get("lang"), self.lang)).gettext
        host = _host_name(request.headers.get("host", ""))
        if self.section.loopback and host not in LOOPBACK_NAMES:
            response: Response = PlainTextResponse(_("Wrong address"), status_code=403)
            await response(scope, receive, send_with_headers)
            return
        if self.token_digest:
            given = request.query_params.get("token")
            if given is not None and hmac.compare_digest(digest(given), self.token_digest):
                if request.method == "GET" and scope["path"] in ("/", ""):
                    # keep the token out of the address bar and history: a session from now on
                    query = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
                    target = URL(scope=scope).replace_query_params(**dict(query))
                    cookie = self.sessions.new()
                    response = Response(status_code=303, headers={"Location": str(target)})
                    await response(scope, receive, send_with_headers)
                    return
            else:
                value = request.cookies.get(COOKIE, "")
                state = self.sessions.check(value) if value else None
                if state is None:
                    text = _("Token required: open this address once with ?token=… (see [screen])")
                    response = PlainTextResponse(text, status_code=401)
                    await response(scope, receive, send_with_headers)
                    return
                if state:
                    cookie = value  # renewed: the browser keeps it another LIFETIME_S
        await self.app(scope, receive, send_with_headers)


def _set_cookie(value: str) -> str:
    return f"{COOKIE}={value}; Max-Age={LIFETIME_S}; Path=/; HttpOnly; SameSite=Strict"
