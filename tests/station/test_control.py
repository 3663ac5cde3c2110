"""The control socket under abuse (PIN lockout, a cap on clients); live_daemon's pid check."""

from __future__ import annotations

import errno
import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from station.cli.live import alive_after, live_daemon
from station.control import AuthGuard, ControlServer, daemon_handlers, request
from station.loop import Station
from station.manual import ManualRequest
from station.pinhash import hash_pin
from station.sim import example_config
from station.store import Store
from tests.support.helpers import beneficiary

PIN = "4821"


class _Clock:
    """Time the test moves by hand: lockouts are checked without waiting for them."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def station(tmp_path: Path) -> Iterator[Station]:
    """A real station loop on a real journal, in its own thread."""
    config = example_config(
        {
            "station": {"data_dir": str(tmp_path / "data"), "runtime_dir": str(tmp_path / "run")},
            "technicians": [
                {"name": "Alice", "pin": hash_pin(PIN, iterations=1000)},
                {"name": "Bob", "badge": "TECH-BOB"},
            ],
        }
    )
    with Store(config.store_path, config.station.id) as store:
        loop = Station(config, store)
        thread = threading.Thread(target=loop.run, daemon=True)
        thread.start()
        try:
            yield loop
        finally:
            loop.stop("test")
            thread.join(10)
    assert not thread.is_alive()


def _manual(handlers: dict[str, Any], **proof: str) -> dict[str, Any]:
    entry = ManualRequest((1_000_000,), "CAT-VET", beneficiary(77), "Alice").to_json()
    reply: dict[str, Any] = handlers["manual"]({"op": "manual", **proof, "request": entry})
    return reply


def test_wrong_pins_lock_the_socket_for_longer_each_time(station: Station) -> None:
    clock = _Clock()
    guard = AuthGuard(base=1.0, cap=30.0, clock=clock)
    handlers = daemon_handlers(station, None, guard=guard)
    assert _manual(handlers, pin="0000")["kind"] == "auth"
    assert guard.failures == 1
    locked = _manual(handlers, pin=PIN)  # even the right PIN waits out the lockout
    assert locked["kind"] == "locked" and locked["error"] == (
        "too many wrong PINs or badges: try again in 1 s"
    )
    assert (guard.refused, station.store.count()) == (1, 0)
    clock.now += 1.0
    assert _manual(handlers, badge="TECH-NOPE")["kind"] == "auth"  # badges count too
    clock.now += 1.5  # 2 s after the second failure: still locked
    assert _manual(handlers, pin=PIN)["kind"] == "locked"
    for _i in range(8):  # doubling, capped at 30 s
        clock.now += 60
        assert _manual(handlers, pin="0000")["kind"] == "auth"
    assert guard.failures == 10
    assert _manual(handlers, pin=PIN)["error"].endswith("try again in 30 s")
    clock.now += 30
    assert _manual(handlers, pin=PIN) == {"ok": True, "seqs": [1]}
    assert guard.failures == 0  # a success resets the count
    assert _manual(handlers, pin="0000")["kind"] == "auth"
    assert _manual(handlers, pin=PIN)["error"].endswith("try again in 1 s")


def test_clients_beyond_the_cap_get_a_one_line_refusal(tmp_path: Path) -> None:
    inside = threading.Semaphore(0)
    release = threading.Event()

    def slow(req: dict[str, Any]) -> dict[str, Any]:
        inside.release()
        release.wait(20)
        return {"ok": True}

    path = tmp_path / "control.sock"
    server = ControlServer(path, {"slow": slow}, max_clients=2)
    assert server.start()
    replies: list[dict[str, Any]] = []
    clients = [
        threading.Thread(target=lambda: replies.append(request(path, {"op": "slow"})))
        for _i in range(2)
    ]
    try:
        for c in clients:
            c.start()
        assert inside.acquire(timeout=10) and inside.acquire(timeout=10)  # both slots taken
        assert request(path, {"op": "slow"}, timeout=10) == {
            "ok": False,
            "kind": "busy",
            "error": "too many requests",
        }
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as raw:  # a client that hangs
            raw.settimeout(10)
            raw.connect(str(path))
            assert json.loads(raw.recv(4096))["kind"] == "busy"
        assert server.refused == 2
    finally:
        release.set()
        for c in clients:
            c.join(10)
        server.stop()
    assert replies == [{"ok": True}, {"ok": True}]  # the slots came back
    assert not path.exists()


def test_a_daemon_of_another_user_is_alive() -> None:
    """kill(pid, 0) on another user's process fails with EPERM: the process exists."""
    assert alive_after(None)
    assert alive_after(PermissionError(errno.EPERM, "Operation not permitted"))
    assert not alive_after(ProcessLookupError(errno.ESRCH, "No such process"))


@pytest.mark.parametrize(("pid", "alive"), [(1, True), ("gone", False), (0, False)])
def test_live_daemon_reads_the_pid_of_the_status_file(
    tmp_path: Path, pid: int | str, alive: bool
) -> None:
    # pid 1 always exists: as root the signal check passes, as a user it raises EPERM
    if pid == "gone":
        child = subprocess.Popen([sys.executable, "-c", "pass"])
        child.wait(10)
        pid = child.pid
    config = example_config({"station": {"runtime_dir": str(tmp_path / "run")}})
    config.status_path.parent.mkdir(parents=True)
    config.status_path.write_text(json.dumps({"pid": pid}), encoding="utf-8")
    assert (live_daemon(config) is not None) is alive
