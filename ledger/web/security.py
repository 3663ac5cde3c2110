"""The dashboard's guards: opaque server-side sessions, login throttling, CSRF tokens, Origin."""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import OrderedDict, deque
from http.cookies import SimpleCookie
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "CSRF_FIELD",
    "LoginThrottle",
    "SecurityHeaders",
    "ServerSessions",
    "SessionStore",
    "csrf_token",
    "csrf_valid",
    "same_origin",
]

CSRF_FIELD = "csrf"
# the key in scope where the middleware leaves the request's session id (tests read the cookie)
_SID = "pesee.sid"


class SessionStore:
    """Sessions kept in this process: the cookie holds a random id and nothing else (no user
    name, no password fingerprint to read). An id unused for ``lifetime`` seconds, revoked at
    logout, or from before a restart is worth nothing. One process serves (uvicorn's default)."""

    LIMIT = 10_000  # sessions kept at most: the oldest idle one goes first

    def __init__(self, lifetime: float) -> None:
        self.lifetime = lifetime
        self._data: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()

    def load(self, sid: str | None) -> dict[str, Any] | None:
        """A copy of the session's data, or None for an unknown or expired id; renews it."""
        if not sid:
            return None
        now = time.monotonic()
        with self._lock:
            entry = self._data.get(sid)
            if entry is None or now - entry[0] > self.lifetime:
                self._data.pop(sid, None)
                return None
            self._data[sid] = (now, entry[1])
            self._data.move_to_end(sid)
            return dict(entry[1])

    def save(self, sid: str | None, data: dict[str, Any]) -> str:
        """Store ``data`` under ``sid`` (a new random id when None); returns the id."""
        sid = sid or secrets.token_urlsafe(24)
        now = time.monotonic()
        with self._lock:
            self._data[sid] = (now, dict(data))
            self._data.move_to_end(sid)
            while len(self._data) > self.LIMIT:
                self._data.popitem(last=False)
        return sid

    def drop(self, sid: str | None) -> None:
        if sid:
            with self._lock:
                self._data.pop(sid, None)

    def __len__(self) -> int:
        return len(self._data)


class ServerSessions:
    """ASGI middleware giving ``request.session`` from :class:`SessionStore`. The session id
    changes when the logged-in user does (no session fixation), an emptied session is dropped
    with its cookie, and the cookie is HttpOnly, SameSite=Lax, Secure when ``https_only``."""

    def __init__(
        self,
        app: ASGIApp,
        store: SessionStore,
        cookie: str,
        max_age: int,
        https_only: bool = False,
    ) -> None:
        self.app = app
        self.store = store
        self.cookie = cookie
        self.max_age = max_age
        self.https_only = https_only

    def _sid(self, scope: Scope) -> str | None:
        for name, value in scope.get("headers", []):
            if name == b"cookie":
                jar: SimpleCookie = SimpleCookie()
                try:
                    jar.load(value.decode("latin-1"))
                except Exception:  # a malformed cookie header is no session, not an error
                    return None
                morsel = jar.get(self.cookie)
                if morsel is not None:
                    return morsel.value
        return None

    def _set_cookie(self, value: str, max_age: int) -> bytes:
        parts = [f"{self.cookie}={value}", "Path=/", f"Max-Age={max_age}", "HttpOnly"]
        parts.append("SameSite=Lax")
        if self.https_only:
            parts.append("Secure")
        return "; ".join(parts).encode("latin-1")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sid = self._sid(scope)
        loaded = self.store.load(sid)
        if loaded is None:
            sid = None
        before = dict(loaded or {})
        scope["session"] = dict(before)
        scope[_SID] = sid

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                data: dict[str, Any] = scope["session"]
                header: bytes | None = None
                if not data:
                    if sid is not None:
                        self.store.drop(sid)
                        header = self._set_cookie("", 0)
                elif data != before or sid is None:
                    new_sid = sid
                    if sid is not None and data.get("user") != before.get("user"):
                        self.store.drop(sid)  # a login or logout: never keep the old id
                        new_sid = None
                    new_sid = self.store.save(new_sid, data)
                    if new_sid != sid:
                        header = self._set_cookie(new_sid, self.max_age)
                elif sid is not None:
                    self.store.save(sid, data)
                if header is not None:
                    headers = [*message.get("headers", []), (b"set-cookie", header)]
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_cookie)


class LoginThrottle:
    """Failed logins per account and per address in a sliding window. Past the limit, every
    attempt is refused until the oldest failure leaves the window, the right password too: a
    guesser cannot tell a lockout from a miss by trying it."""

    def __init__(self, per_account: int = 10, per_address: int = 30, window: float = 900.0) -> None:
        self.per_account = per_account
        self.per_address = per_address
        self.window = window
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and now - times[0] > self.window:
            times.popleft()
        if not times:
            del self._failures[key]
            return deque()
        return times

    def wait(self, account: str, address: str) -> float:
        """Seconds before ``account`` may try again from ``address`` (0: now)."""
        now = time.monotonic()
        with self._lock:
            waits = [0.0]
            for key, limit in (
                (f"u:{account}", self.per_account),
                (f"a:{address}", self.per_address),
            ):
                times = self._recent(key, now)
                if len(times) >= limit:
                    waits.append(self.window - (now - times[0]))
            return max(waits)

    def failed(self, account: str, address: str) -> None:
        now = time.monotonic()
        with self._lock:
            for key in (f"u:{account}", f"a:{address}"):
                self._recent(key, now)
                self._failures.setdefault(key, deque()).append(now)
            # bounded: an address spraying names cannot grow this without end
            while len(self._failures) > 50_000:
                self._failures.pop(next(iter(self._failures)))

    def succeeded(self, account: str) -> None:
        with self._lock:
            self._failures.pop(f"u:{account}", None)


def csrf_token(session: dict[str, Any]) -> str:
    """The session's CSRF token, made on first use; every POST form carries it."""
    token = session.get(CSRF_FIELD)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(24)
        session[CSRF_FIELD] = token
    return token


def csrf_valid(session: dict[str, Any], given: object) -> bool:
    expected = session.get(CSRF_FIELD)
    return (
        isinstance(expected, str)
        and isinstance(given, str)
        and hmac.compare_digest(expected.encode(), given.encode())
    )


def same_origin(headers: Any, host: str) -> bool:
    """False when the browser says the request comes from another site (Origin or Referer
    naming another host); a request without either (curl, old clients) relies on the token."""
    for name in ("origin", "referer"):
        value = headers.get(name)
        if value:
            if value == "null":
                return False
            rest = str(value).split("://", 1)[-1]
            return bool(rest.split("/", 1)[0].lower() == host.lower())
    return True


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
