"""The counter screen's access rules over plain HTTP, on the real daemon (issue 15 item 11): the
token opens a random session (never the token in the cookie), a wrong token is refused whatever
its length, sessions expire, renew and survive a restart, and every response says nosniff."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import time
from collections.abc import Iterator
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from common.i18n import set_language
from station.screen.access import (
    COOKIE,
    LIFETIME_S,
    RENEW_AFTER_S,
    SESSIONS_FILE,
    digest,
    token_fingerprint,
)
from station.sim import SimulatedCounter

TOKEN = "a-long-enough-screen-token"


def _counter(tmp_path: Path, **screen: Any) -> SimulatedCounter:
    set_language("fr")
    overrides: dict[str, Any] = {
        "station": {"language": "fr"},
        "screen": {"enabled": True, "port": 0, **screen},
        "sync": {"enabled": False},
    }
    return SimulatedCounter(tmp_path, overrides)


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[SimulatedCounter]:
    with _counter(tmp_path, token=TOKEN, touch_buttons=True) as c:
        yield c


class Reply:
    def __init__(self, status: int, headers: http.client.HTTPMessage, body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def cookie(self) -> str | None:
        """The session cookie this reply sets, if any."""
        for line in self.headers.get_all("Set-Cookie") or []:
            jar: SimpleCookie = SimpleCookie()
            jar.load(line)
            if COOKIE in jar:
                return jar[COOKIE].value
        return None


def _request(
    c: SimulatedCounter,
    path: str,
    *,
    method: str = "GET",
    cookie: str | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    """One plain HTTP request (no redirect followed); a live feed is read up to its headers."""
    url = urlsplit(c.daemon.screen.url)
    conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=10)
    sent = dict(headers or {})
    if cookie is not None:
        sent["Cookie"] = f"{COOKIE}={cookie}"
    try:
        conn.request(method, path, body=b"" if method == "POST" else None, headers=sent)
        response = conn.getresponse()
        stream = response.getheader("Content-Type", "").startswith("text/event-stream")
        body = b"" if stream else response.read()
        return Reply(response.status, response.headers, body)
    finally:
        conn.close()


def _login(c: SimulatedCounter) -> str:
    reply = _request(c, "/?token=" + TOKEN)
    assert reply.status == 303 and "token" not in (reply.headers["Location"] or "")
    cookie = reply.cookie()
    assert cookie is not None
    return cookie


@pytest.mark.parametrize(
    "wrong",
    [
        "x" * 16,  # the old acceptance: any token of the minimum length
        "y" * len(TOKEN),
        TOKEN[:-1] + "X",  # one character off
        TOKEN[:16],  # a prefix
        TOKEN + "-and-more",
        TOKEN.upper(),
        "z" * 256,
        "",
    ],
)
def test_a_token_that_is_not_the_configured_one_is_refused(
    guarded: SimulatedCounter, wrong: str
) -> None:
    for path in ("/", "/view.json", "/events", "/static/screen.js"):
        reply = _request(guarded, f"{path}?token={wrong}")
        assert reply.status == 401, (path, wrong)
        assert reply.cookie() is None
    assert _request(guarded, "/action/press?token=" + wrong, method="POST").status == 401


def test_the_cookie_is_a_random_session_not_the_token(guarded: SimulatedCounter) -> None:
    first, second = _login(guarded), _login(guarded)
    assert first != second  # a new session each time, nothing derived from the token alone
    old_scheme = hmac.new(TOKEN.encode(), b"pesee-screen-cookie", hashlib.sha256).hexdigest()
    for value in (first, second):
        assert TOKEN not in value and value not in (digest(TOKEN), old_scheme)
        assert len(value) >= 40
    assert _request(guarded, "/view.json", cookie=first).status == 200
    assert _request(guarded, "/view.json", cookie=second).status == 200
    # the digest of the token, the old fixed cookie, a forged or truncated value: refused
    for forged in (old_scheme, digest(TOKEN), TOKEN, first[:-1], first + "A", "x"):
        assert _request(guarded, "/view.json", cookie=forged).status == 401, forged

    line = next(
        h for h in _request(guarded, "/?token=" + TOKEN).headers.get_all("Set-Cookie") or []
    )
    attrs = {a.strip().split("=")[0].lower(): a.strip() for a in line.split(";")[1:]}
    assert attrs["max-age"] == f"Max-Age={LIFETIME_S}" and LIFETIME_S <= 12 * 3600
    assert "httponly" in attrs and attrs["samesite"].lower() == "samesite=strict"

    # the station keeps digests only, readable by its own user only
    stored = guarded.config.station.data_dir / SESSIONS_FILE
    text = stored.read_text(encoding="utf-8")
    assert first not in text and TOKEN not in text and digest(first) in text
    assert stored.stat().st_mode & 0o077 == 0


def test_sessions_expire_renew_and_survive_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    now = time.time()
    # written before the daemon starts, as a previous run would have left them
    sessions = {
        digest("expired-session"): now - 1,
        digest("fresh-session"): now + LIFETIME_S,
        digest("old-session"): now + LIFETIME_S - 2 * RENEW_AFTER_S,
    }
    stored = {"salt": "pepper", "token": token_fingerprint("pepper", TOKEN), "sessions": sessions}
    (data / SESSIONS_FILE).write_text(json.dumps(stored), encoding="utf-8")
    with _counter(tmp_path, token=TOKEN) as c:
        assert _request(c, "/view.json", cookie="expired-session").status == 401
        fresh = _request(c, "/view.json", cookie="fresh-session")
        assert fresh.status == 200 and fresh.cookie() is None  # recent: nothing to renew
        old = _request(c, "/view.json", cookie="old-session")
        assert old.status == 200 and old.cookie() == "old-session"  # renewed, same value
        again = _request(c, "/view.json", cookie="old-session")
        assert again.status == 200 and again.cookie() is None  # renewed once, not each time
        kept = json.loads((data / SESSIONS_FILE).read_text(encoding="utf-8"))["sessions"]
        assert digest("expired-session") not in kept
        assert kept[digest("old-session")] > sessions[digest("old-session")]
        session = _login(c)
    with _counter(tmp_path, token=TOKEN) as c:  # the daemon restarted: tablets stay logged in
        assert _request(c, "/view.json", cookie=session).status == 200
        assert _request(c, "/view.json", cookie="fresh-session").status == 200
        assert _request(c, "/view.json", cookie="expired-session").status == 401
    # a new token (the old one leaked): every session opened with the old one is refused
    with _counter(tmp_path, token="another-screen-token-now") as c:
        assert _request(c, "/view.json", cookie=session).status == 401
        assert _request(c, "/view.json", cookie="fresh-session").status == 401
        assert _request(c, "/view.json?token=" + TOKEN).status == 401


def test_every_response_says_nosniff(guarded: SimulatedCounter) -> None:
    cookie = _login(guarded)
    origin = guarded.daemon.screen.url.rstrip("/")
    replies = {
        "page": _request(guarded, "/", cookie=cookie),
        "css": _request(guarded, "/static/screen.css", cookie=cookie),
        "js": _request(guarded, "/static/screen.js", cookie=cookie),
        "json": _request(guarded, "/view.json", cookie=cookie),
        "feed": _request(guarded, "/events", cookie=cookie),
        "missing": _request(guarded, "/static/nothing.js", cookie=cookie),
        "no route": _request(guarded, "/nothing", cookie=cookie),
        "login": _request(guarded, "/?token=" + TOKEN),
        "no token": _request(guarded, "/"),
        "wrong host": _request(guarded, "/", headers={"Host": "evil.example"}),
        "GET action": _request(guarded, "/action/end", cookie=cookie),
        "other origin": _request(
            guarded,
            "/action/end",
            method="POST",
            cookie=cookie,
            headers={"Origin": "http://evil.example"},
        ),
        "action": _request(
            guarded, "/action/end", method="POST", cookie=cookie, headers={"Origin": origin}
        ),
    }
    statuses = {name: r.status for name, r in replies.items()}
    assert statuses == {
        "page": 200,
        "css": 200,
        "js": 200,
        "json": 200,
        "feed": 200,
        "missing": 404,
        "no route": 404,
        "login": 303,
        "no token": 401,
        "wrong host": 403,  # on loopback, only loopback names (DNS rebinding)
        "GET action": 405,
        "other origin": 403,
        "action": 202,
    }
    for name, reply in replies.items():
        assert reply.headers["X-Content-Type-Options"] == "nosniff", name
        assert reply.headers["Referrer-Policy"] == "no-referrer", name
        assert reply.headers["X-Frame-Options"] == "DENY", name
    assert replies["js"].headers["Content-Type"].startswith("text/javascript")
    assert replies["css"].headers["Content-Type"].startswith("text/css")


def test_loopback_refuses_other_host_names_with_the_headers(tmp_path: Path) -> None:
    with _counter(tmp_path) as c:
        assert _request(c, "/view.json").status == 200  # loopback: no token needed
        reply = _request(c, "/", headers={"Host": "evil.example"})
        assert reply.status == 403 and reply.headers["X-Content-Type-Options"] == "nosniff"
