"""A throwaway PostgreSQL server (initdb in a temp dir, loopback port) and the ledger URL fixtures.

``pg_url`` is a fresh, empty database on a server shared by the whole session; ``ledger_url``
runs a test once on SQLite and once on PostgreSQL::

    def test_x(ledger_url: str) -> None:
        store = open_store(ledger_url)

Postgres refuses to run as root: under root the server runs as the ``postgres`` user (Debian's
package creates it) or ``nobody``. The server is stopped by its PID at the end of the session.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

from tests.support.broker import free_port, read_tail, reap

__all__ = ["PostgresError", "PostgresServer", "find_pg_bin"]

_START_TIMEOUT = 30.0
_STOP_TIMEOUT = 10.0
_MISSING = "PostgreSQL not found in /usr/lib/postgresql/*/bin: run `make test` (installs it)"
_SERVICE_USERS = ("postgres", "nobody")


class PostgresError(RuntimeError):
    """The server could not be initialised, started or stopped (message ends with its log)."""


def find_pg_bin() -> Path:
    """The newest Debian PostgreSQL bin directory; raises (never skips) when none is installed."""
    found = [Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin") if Path(p, "initdb").exists()]
    if not found:
        raise PostgresError(_MISSING)
    return max(found, key=lambda p: [int(x) for x in p.parent.name.split(".") if x.isdigit()])


def _service_user() -> pwd.struct_passwd | None:
    """Who runs the server: ourselves, unless we are root (postgres refuses root)."""
    if os.geteuid() != 0:
        return None
    for name in _SERVICE_USERS:
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise PostgresError("running as root and no unprivileged user (postgres, nobody) to run as")


class PostgresServer:
    """``initdb`` + ``postgres`` on ``127.0.0.1:port`` (trust auth, superuser ``postgres``).

    ``durable=False`` (the tests) turns fsync off: a crash of the test server loses nothing we
    keep. The bench passes ``durable=True`` to measure what production pays.
    """

    def __init__(self, *, durable: bool = False, settings: dict[str, str] | None = None) -> None:
        self.bin = find_pg_bin()
        self.durable = durable
        self.settings = dict(settings or {})
        self.user = _service_user()
        self.directory: Path | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self._names = itertools.count(1)

    # -- lifecycle ---------------------------------------------------------------------------
    def _as_user(self) -> dict[str, Any]:
        if self.user is None:
            return {}
        return {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}

    @property
    def data(self) -> Path:
        assert self.directory is not None
        return self.directory / "data"

    @property
    def log_path(self) -> Path:
        assert self.directory is not None
        return self.directory / "postgres.log"

    def start(self) -> PostgresServer:
        # not under pytest's tmp_path: its parents are 0700 root, the service user cannot enter
        self.directory = Path(tempfile.mkdtemp(prefix="pesee-pg-"))
        if self.user is not None:
            os.chown(self.directory, self.user.pw_uid, self.user.pw_gid)
        env = self._env()
        done = subprocess.run(
            [
                str(self.bin / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                *(["--no-sync"] if not self.durable else []),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            cwd=self.directory,
            check=False,
            **self._as_user(),
        )
        if done.returncode != 0:
            self.stop()
            raise PostgresError(f"initdb failed:\n{done.stdout}{done.stderr}")
        for _attempt in range(5):
            try:
                self._launch(env)
                return self
            except _PortTaken:
                continue
        self.stop()
        raise PostgresError("no free port for postgres after 5 attempts")

    @staticmethod
    def _env() -> dict[str, str]:
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8"}

    def halt(self) -> None:
        """Stop the server (fast shutdown, by PID), keeping its data: a database outage."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            reap(proc, _STOP_TIMEOUT)

    def restart(self) -> None:
        """A server restart: every open connection is cut; the same data on the same port."""
        self.halt()
        self._launch(self._env(), port=self.port)

    def _launch(self, env: dict[str, str], port: int = 0) -> None:
        self.port = port or free_port()
        options = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self.directory),
            "max_connections": "60",
            "shared_buffers": "64MB",
            "fsync": "on" if self.durable else "off",
            "synchronous_commit": "on" if self.durable else "off",
            "full_page_writes": "on" if self.durable else "off",
            **self.settings,
        }
        args = [str(self.bin / "postgres"), "-D", str(self.data)]
        for key, value in options.items():
            args += ["-c", f"{key}={value}"]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.directory,
                start_new_session=True,  # a Ctrl-C of the tests does not hit it before stop()
                **self._as_user(),
            )
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                log_text = self.tail()
                self.proc = None
                if "Address already in use" in log_text:
                    raise _PortTaken(log_text)
                raise PostgresError(f"postgres exited at start:\n{log_text}")
            if self._ready():
                return
            time.sleep(0.05)
        self.stop()
        raise PostgresError(f"postgres not ready within {_START_TIMEOUT:.0f} s:\n{self.tail()}")

    def _ready(self) -> bool:
        import psycopg

        try:
            with psycopg.connect(self.url("postgres"), connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def tail(self, lines: int = 20) -> str:
        return "(no log)" if self.directory is None else read_tail(self.log_path, lines)

    def stop(self) -> None:
        """Fast shutdown (SIGINT) by PID, SIGKILL after a bound; the directory is removed."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            reap(proc, _STOP_TIMEOUT)
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- databases ---------------------------------------------------------------------------
    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str | None = None) -> str:
        """A fresh empty database (from template0); returns its URL."""
        import psycopg

        name = name or f"t{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        import psycopg

        name = url.rsplit("/", 1)[1]
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class _PortTaken(PostgresError):
    pass


# -- fixtures ----------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    with PostgresServer() as server:
        yield server


@pytest.fixture
def pg_url(pg_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test (dropped after it)."""
    url = pg_server.create_database()
    yield url
    pg_server.drop_database(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A ledger database URL: a fresh SQLite file, then a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "ledger.db")
    url: str = request.getfixturevalue("pg_url")
    return url
