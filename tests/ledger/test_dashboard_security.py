"""The dashboard against someone guessing, forging or replaying: `ledger serve` for real, HTTP."""

from __future__ import annotations

import http.client
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.dashboard import (
    PASSWORD,
    USER_HASH,
    cookie_of,
    csrf_of,
    get,
    http_login,
    ledger_config,
    serving,
)


@pytest.fixture
def base(tmp_path: Path) -> Iterator[str]:
    users = f'{{ alice = "{USER_HASH}", bob = "{USER_HASH}" }}'
    config = ledger_config(tmp_path, str(tmp_path / "l.db"), users=users)
    with serving(config, tmp_path / "serve.log") as (url, _port):
        yield url


def _post(
    base: str, path: str, form: dict[str, str], headers: dict[str, str]
) -> tuple[int, dict[str, str], str]:
    """A POST with headers of our choosing (Origin, Host) that urllib would not let us set."""
    parts = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    body = urllib.parse.urlencode(form)
    conn.request(
        "POST",
        path,
        body=body,
        headers={"Content-Type": "application/x-www-form-urlencoded", **headers},
    )
    resp = conn.getresponse()
    out = resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read().decode()
    conn.close()
    return out


def test_guessing_a_password_locks_the_account_out_even_for_the_right_one(base: str) -> None:
    for _ in range(10):
        assert http_login(base, password="guess")[0] == 401
    status, _h, page = http_login(base)  # the right password, now: refused all the same
    assert status == 429
    assert "Trop de tentatives" in page  # French by default, with the wait
    assert http_login(base, user="bob")[0] == 303  # another account is not locked by it


def test_forms_need_their_token_and_this_site_as_origin(base: str) -> None:
    _s, headers, page = get(base + "/login")
    cookie, token = cookie_of(headers), csrf_of(page)
    form = {"user": "alice", "password": PASSWORD}
    assert _post(base, "/login", form, {"Cookie": cookie})[0] == 403  # no token
    wrong = {**form, "csrf": token[::-1]}
    assert _post(base, "/login", wrong, {"Cookie": cookie})[0] == 403
    foreign = {"Cookie": cookie, "Origin": "http://evil.example"}
    assert _post(base, "/login", {**form, "csrf": token}, foreign)[0] == 403
    status, headers, _body = _post(base, "/login", {**form, "csrf": token}, {"Cookie": cookie})
    assert status == 303
    session = cookie_of(headers)
    assert session != cookie  # a new id once logged in: a planted id is worth nothing

    # logout from another site is refused; the session lives on
    _s, _h, page = get(base + "/fleet", cookie=session)
    token = csrf_of(page)
    host = urllib.parse.urlsplit(base).netloc
    forged = {"Cookie": session, "Origin": "http://evil.example"}
    assert _post(base, "/logout", {"csrf": token}, forged)[0] == 403
    assert get(base + "/fleet", cookie=session)[0] == 200
    ours = {"Cookie": session, "Origin": f"http://{host}"}
    assert _post(base, "/logout", {"csrf": token}, ours)[0] == 303
    assert get(base + "/fleet", cookie=session)[0] == 303


def test_a_foreign_host_header_is_refused(base: str) -> None:
    parts = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    conn.request("GET", "/login", headers={"Host": "evil.example"})
    assert conn.getresponse().status == 400
    conn.close()
    assert get(base + "/login")[0] == 200


def test_the_session_cookie_is_an_opaque_id(base: str) -> None:
    status, headers, _body = http_login(base)
    assert status == 303
    header = headers["set-cookie"]
    value = cookie_of(headers).split("=", 1)[1]
    assert "httponly" in header.lower() and "samesite=lax" in header.lower()
    # nothing to read in it: no user name, no signed JSON payload, just a random id
    assert "alice" not in value and "." not in value and len(value) >= 32


def test_allowed_hosts_come_from_the_config(tmp_path: Path) -> None:
    config = ledger_config(tmp_path, str(tmp_path / "l.db"), allowed_hosts='["bureau.example.org"]')
    with serving(config, tmp_path / "serve.log") as (url, _port):
        parts = urllib.parse.urlsplit(url)
        for host, status in [("bureau.example.org", 200), ("127.0.0.1", 400)]:
            conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
            conn.request("GET", "/login", headers={"Host": host})
            assert conn.getresponse().status == status, host
            conn.close()
