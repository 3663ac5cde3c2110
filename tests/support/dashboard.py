"""The dashboard (`ledger serve`) as a process on a free loopback port, and plain HTTP to it."""

from __future__ import annotations

import contextlib
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ledger.web.auth import hash_password

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery"
SECRET = "a-test-secret-of-32-characters!!"
# cheap scrypt parameters for the test's users (the default costs ~0.4 s per login)
USER_HASH = hash_password(PASSWORD, n=2**14)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def ledger_config(tmp_path: Path, url: str, **dashboard: str) -> Path:
    section = {"secret_key": f'"{SECRET}"', **dashboard}
    lines = ["[ledger]", f'database = "{url}"', "[dashboard]"]
    lines += [f"{k} = {v}" for k, v in section.items() if v]
    if "users" not in dashboard:
        lines += ["[dashboard.users]", f'alice = "{USER_HASH}"']
    path = tmp_path / "ledger.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@contextlib.contextmanager
def serving(config: Path, log: Path) -> Iterator[tuple[str, int]]:
    """`ledger serve` as systemd would run it, on a free loopback port; stopped by SIGTERM,
    after which it must have shut down cleanly with exit status 0."""
    port = free_port()
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ledger", "--config", str(config), "serve", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):  # up to ~30 s on a busy machine
            try:
                urllib.request.urlopen(base + "/login", timeout=2).close()
                break
            except urllib.error.HTTPError:  # it answers (a Host it refuses, say): it is up
                break
            except OSError:
                assert proc.poll() is None, log.read_text()
                time.sleep(0.1)
        else:
            pytest.fail("the dashboard did not start:\n" + log.read_text())
        yield base, port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
    assert code == 0, log.read_text()
    assert log.read_text().count("Application shutdown complete") >= 1


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def get(
    url: str, data: dict[str, str] | None = None, cookie: str = ""
) -> tuple[int, dict[str, str], str]:
    opener = urllib.request.build_opener(_NoRedirect)
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body, headers={"Cookie": cookie} if cookie else {})
    try:
        with opener.open(request, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read().decode("utf-8-sig")
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read().decode()


def csrf_of(page: str) -> str:
    """The CSRF token of the first form in ``page``."""
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match, "no CSRF token in the page"
    return match.group(1)


def cookie_of(headers: dict[str, str]) -> str:
    """``name=value`` of the response's session cookie."""
    return headers["set-cookie"].split(";")[0]


def http_login(
    base: str, user: str = "alice", password: str = PASSWORD
) -> tuple[int, dict[str, str], str]:
    """Log in as a browser does: the login page (a session with its token), then the form."""
    _status, headers, page = get(base + "/login")
    cookie = cookie_of(headers)
    return get(
        base + "/login",
        {"user": user, "password": password, "csrf": csrf_of(page)},
        cookie=cookie,
    )


def http_logout(base: str, session: str) -> int:
    """Log out with the token of a page the session can see."""
    _status, _headers, page = get(base + "/fleet", cookie=session)
    return get(base + "/logout", {"csrf": csrf_of(page)}, cookie=session)[0]
