"""A throwaway Mosquitto on a free loopback port, for the tests, the demo and the benchmarks."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = [
    "Broker",
    "BrokerError",
    "add_user",
    "find_mosquitto",
    "find_mosquitto_passwd",
    "free_port",
    "read_tail",
    "reap",
]

_START_TIMEOUT = 10.0
_STOP_TIMEOUT = 5.0
_PORT_ATTEMPTS = 5
# Debian installs the broker in /usr/sbin, which is not on a normal user's PATH
_SBIN = "/usr/sbin:/usr/local/sbin:/sbin"
_MISSING = "{tool} not found: run `make test`, which installs Mosquitto, or apt-get install {deb}"


class BrokerError(RuntimeError):
    """The broker could not be started or stopped; the message ends with the tail of its log."""


class _AddressInUse(BrokerError):
    pass


def find_mosquitto() -> str:
    """Path of the ``mosquitto`` binary; raises (never skips) when it is not installed."""
    path = shutil.which("mosquitto") or shutil.which("mosquitto", path=_SBIN)
    if path is None:
        raise BrokerError(_MISSING.format(tool="mosquitto", deb="mosquitto"))
    return path


def find_mosquitto_passwd() -> str:
    """Path of ``mosquitto_passwd``; raises (never skips) when it is not installed."""
    path = shutil.which("mosquitto_passwd") or shutil.which("mosquitto_passwd", path=_SBIN)
    if path is None:
        raise BrokerError(_MISSING.format(tool="mosquitto_passwd", deb="mosquitto"))
    return path


def add_user(password_file: str | os.PathLike[str], user: str, password: str) -> None:
    """Add or update ``user`` in a Mosquitto password file (created with ``-c`` if missing)."""
    path = Path(password_file)
    args = [find_mosquitto_passwd()]
    if not path.exists():
        args.append("-c")
    args += ["-b", str(path), user, password]
    done = subprocess.run(args, capture_output=True, text=True, timeout=30, check=False)
    if done.returncode != 0:
        raise BrokerError(f"mosquitto_passwd failed for {user!r}: {done.stdout}{done.stderr}")


# -- small helpers for any throwaway server (also the tests' PostgreSQL, the bench's ledger) --


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` now; another process may take it before the server binds it,
    so a caller retries on "address in use"."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def read_tail(path: Path, lines: int) -> str:
    """The last ``lines`` of a server's log file, for an error message; "(no log)" without one."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def reap(proc: subprocess.Popen[Any], timeout: float) -> None:
    """Wait up to ``timeout`` s for ``proc``, already asked to stop, to exit; SIGKILL it past
    that, so a stuck server never outlives its caller."""
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=_STOP_TIMEOUT)


class Broker:
    """``mosquitto -c`` with a config written into ``directory``, listening on ``host:port``.

    ``allow_anonymous`` defaults to true without a password file and false with one. The log
    (``log_type all``, and anything the broker prints before its log is set up) goes to
    ``log_path``, appended across restarts. Use as a context manager or call ``stop()``.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        password_file: str | os.PathLike[str] | None = None,
        acl_file: str | os.PathLike[str] | None = None,
        allow_anonymous: bool | None = None,
        persistence: bool = False,
        max_packet_size: int | None = None,
        extra_config: str = "",
        host: str = "127.0.0.1",
    ) -> None:
        self.directory = Path(directory)
        self.password_file = None if password_file is None else Path(password_file)
        self.acl_file = None if acl_file is None else Path(acl_file)
        self.allow_anonymous = password_file is None if allow_anonymous is None else allow_anonymous
        self.persistence = persistence
        self.max_packet_size = max_packet_size
        self.extra_config = extra_config
        self.host = host
        self.port = 0
        self.config_path = self.directory / "mosquitto.conf"
        self.log_path = self.directory / "mosquitto.log"
        self.persistence_location = self.directory / "persistence"
        self._proc: subprocess.Popen[bytes] | None = None
        self._paused = False

    # -- life cycle ------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> Broker:
        """Start on a free port (picked again if it was taken meanwhile); ready when it returns."""
        if self.running:
            raise BrokerError("broker already running")
        last: BrokerError | None = None
        for _ in range(_PORT_ATTEMPTS):
            self.port = free_port(self.host)
            try:
                self._start_once()
                return self
            except _AddressInUse as exc:
                last = exc
        raise BrokerError(f"no free port after {_PORT_ATTEMPTS} attempts") from last

    def restart(self) -> Broker:
        """Stop, then start again on the same port (retrying while the port is still busy)."""
        if not self.port:
            raise BrokerError("restart() before start()")
        self.stop()
        deadline = time.monotonic() + _START_TIMEOUT
        while True:
            try:
                self._start_once()
                return self
            except _AddressInUse:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self) -> None:
        """SIGTERM, wait, SIGKILL after a bound. Idempotent; also works on a paused broker."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            if self._paused:
                os.kill(proc.pid, signal.SIGCONT)  # a stopped process never acts on SIGTERM
            reap(proc, _STOP_TIMEOUT)
        self._paused = False

    def pause(self) -> None:
        """SIGSTOP: the kernel still accepts TCP connections, but the broker answers nothing."""
        if self._proc is None or not self.running:
            raise BrokerError("broker not running")
        os.kill(self._proc.pid, signal.SIGSTOP)
        self._paused = True

    def resume(self) -> None:
        """SIGCONT after ``pause()``."""
        if self._proc is None:
            raise BrokerError("broker not running")
        os.kill(self._proc.pid, signal.SIGCONT)
        self._paused = False

    def __enter__(self) -> Broker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- helpers ---------------------------------------------------------------------------

    def log_tail(self, lines: int = 40) -> str:
        return read_tail(self.log_path, lines)

    def config_text(self) -> str:
        lines = [
            f"listener {self.port} {self.host}",
            f"allow_anonymous {'true' if self.allow_anonymous else 'false'}",
            "set_tcp_nodelay true",
            "log_dest stderr",
            "log_type all",
            "log_timestamp_format %H:%M:%S",
            "connection_messages true",
        ]
        if os.geteuid() == 0:
            # as root Mosquitto drops to the "mosquitto" user, which cannot read a 0700 tmp dir
            lines.append("user root")
        if self.persistence:
            self.persistence_location.mkdir(parents=True, exist_ok=True)
            lines += ["persistence true", f"persistence_location {self.persistence_location}/"]
        else:
            lines.append("persistence false")
        if self.password_file is not None:
            lines.append(f"password_file {self.password_file}")
        if self.acl_file is not None:
            lines.append(f"acl_file {self.acl_file}")
        if self.max_packet_size is not None:
            lines.append(f"max_packet_size {self.max_packet_size}")
        if self.extra_config:
            lines.append(self.extra_config.rstrip("\n"))
        return "\n".join(lines) + "\n"

    def _start_once(self) -> None:
        binary = find_mosquitto()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.config_text(), encoding="utf-8")
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        # stderr to a file, never a pipe: an unread pipe fills up and blocks the broker
        with open(self.log_path, "ab") as log:
            proc = subprocess.Popen(
                [binary, "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._proc = proc
        self._paused = False
        deadline = time.monotonic() + _START_TIMEOUT
        connected = logged = False
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self._proc = None
                new_log = self._log_since(offset)
                message = (
                    f"mosquitto exited with {proc.returncode} on port {self.port}:\n"
                    + self.log_tail()
                )
                if "Address already in use" in new_log:
                    raise _AddressInUse(message)
                raise BrokerError(message)
            if not connected:
                try:
                    socket.create_connection((self.host, self.port), timeout=0.5).close()
                    connected = True
                except OSError:
                    pass
            if not logged:
                logged = " running" in self._log_since(offset)
            if connected and logged:
                return
            time.sleep(0.02)
        self.stop()
        raise BrokerError(
            f"mosquitto not ready within {_START_TIMEOUT:.0f} s on port {self.port} "
            f"(connect={connected}, running logged={logged}):\n" + self.log_tail()
        )

    def _log_since(self, offset: int) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                return f.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return ""
