"""Test helpers shared by several modules: polling, codes, a real broker and ledger, a daemon."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from ledger.config import LedgerConfig
from ledger.service import LedgerService
from ledger.store import SQLiteLedgerStore
from station.codes import with_check_digit
from tests.support.broker import Broker


def beneficiary(n: int = 123456, referrer: str = "001") -> str:
    """A valid beneficiary code of the example config (Luhn check digit)."""
    return "B" + with_check_digit("luhn", f"{referrer}{n:06d}")


def until(cond: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll ``cond`` until it holds or ``timeout`` seconds pass; its last answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


class Collector:
    """A publisher for an uploader under test: keeps every payload it is given, from any
    thread, and says it was sent."""

    def __init__(self) -> None:
        self.payloads: list[bytes] = []
        self.lock = threading.Lock()

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> bool:
        with self.lock:
            self.payloads.append(payload)
        return True


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """A real Mosquitto on loopback, anonymous clients allowed."""
    with Broker(tmp_path / "broker", allow_anonymous=True) as b:
        yield b


@pytest.fixture
def ledger(tmp_path: Path, broker: Broker) -> Iterator[LedgerService]:
    """A SQLite ledger service under ``tmp_path`` on ``broker``, connected before the test."""
    config = LedgerConfig.model_validate(
        {
            "ledger": {"database": str(tmp_path / "ledger.db")},
            "mqtt": {"host": broker.host, "port": broker.port, "username": None},
        }
    )
    store = SQLiteLedgerStore(config.ledger.database)
    service = LedgerService(config, store, client_id="ledger-test")
    service.start()
    # subscribed, not only connected: a batch published in between would reach nobody
    assert service.link.subscribed.wait(10)
    yield service
    service.stop()
    store.close()


def start_daemon(config: Path, stdout: int | IO[Any] = subprocess.PIPE) -> subprocess.Popen[str]:
    """``station run`` in a real process, as systemd starts it, on mock pins and in English;
    stderr is piped (the caller stops it and reads it)."""
    env = {**os.environ, "GPIOZERO_PIN_FACTORY": "mock", "PESEE_LANG": "en"}
    return subprocess.Popen(
        [sys.executable, "-m", "station", "--config", str(config), "run"],
        env=env,
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
    )
