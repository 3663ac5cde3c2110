"""Two ``ledger run`` processes on one shared subscription and one PostgreSQL: exactly once.

Five station journals (10 000 weighings each) drain through a real Mosquitto to two ledger
workers; batches of one station reach both workers, out of order, and the stations re-send
what the ledger acks late or past a gap, so the same batch also comes twice.
"""

from __future__ import annotations

import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from station.outbox import JournalOutbox
from station.store import Store
from sync.client import MqttSettings
from sync.station_link import StationLink
from sync.topics import DEFAULT_PREFIX, Topics
from sync.wire import StationStatus
from tests.support.broker import Broker

STATIONS = [f"asso-{n}" for n in range(1, 6)]
PER_STATION = 10_000
WORKERS = ("ledger-a", "ledger-b")
ROOT = Path(__file__).resolve().parents[2]


def _journal(path: Path, station: str, seed: int) -> Store:
    """A station journal of PER_STATION weighings (in one transaction: durability is not tested)."""
    rng = random.Random(seed)
    store = Store(path, station)
    with store.transaction():  # one commit for them all
        for i in range(PER_STATION):
            store.append(
                "weighing",
                net_mg=rng.randrange(1, 5000) * 5000,
                category=rng.choice(("CAT-VET", "CAT-ALIM")),
                beneficiary=f"B{rng.randrange(10**9):09d}",
                recorded_at=f"2026-{1 + i % 12:02d}-10T10:00:00.000Z",
            )
    return store


def _wait(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s: {what}")


@pytest.fixture
def workers(tmp_path: Path, pg_url: str) -> Iterator[tuple[Broker, list[subprocess.Popen[bytes]]]]:
    procs: list[subprocess.Popen[bytes]] = []
    with Broker(tmp_path / "broker", allow_anonymous=True) as broker:
        config = tmp_path / "ledger.toml"
        config.write_text(
            f'[ledger]\ndatabase = "{pg_url}"\nlanguage = "en"\ngroup = "pg-workers-test-0001"\n'
            f'[mqtt]\nhost = "{broker.host}"\nport = {broker.port}\nusername = "ledger"\n',
            encoding="utf-8",
        )
        ledger_run = [sys.executable, "-m", "ledger", "--config"]
        try:
            for name in WORKERS:
                log = open(tmp_path / f"{name}.log", "wb")  # noqa: SIM115 (closed with the proc)
                procs.append(
                    subprocess.Popen(
                        [*ledger_run, str(config), "run", "--client-id", name],
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        cwd=ROOT,
                    )
                )
                log.close()
            # both have subscribed (the broker logs each SUBSCRIBE) before any station sends
            _wait(
                lambda: all(
                    f"Received SUBSCRIBE from {n}" in broker.log_path.read_text(errors="replace")
                    for n in WORKERS
                ),
                30,
                "both ledger workers subscribed",
            )
            yield broker, procs
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            for proc in procs:
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)


def test_two_workers_ingest_five_busy_stations_exactly_once(
    tmp_path: Path, pg_url: str, workers: tuple[Broker, list[subprocess.Popen[bytes]]]
) -> None:
    broker, procs = workers
    stores = [_journal(tmp_path / f"{s}.db", s, n) for n, s in enumerate(STATIONS)]
    acked = dict.fromkeys(STATIONS, 0)
    lock = threading.Lock()
    links: list[StationLink] = []

    def on_acked(station: str) -> object:
        def apply(through: int) -> None:
            with lock:
                acked[station] = max(acked[station], through)

        return apply

    try:
        for store in stores:
            link = StationLink(
                MqttSettings(broker.host, broker.port, client_id=store.station, username=None),
                Topics(DEFAULT_PREFIX),
                JournalOutbox(store.path, store.station, store.epoch),
                acked_through=0,
                on_acked=on_acked(store.station),  # type: ignore[arg-type]
                on_registry=lambda topic, payload: None,
                status=lambda s=store.station: StationStatus(s, True, 1),  # type: ignore[misc]
                max_records=200,  # many small batches: more of them reach both workers
                window=8,
                resend_after=3.0,
            )
            links.append(link)
            link.start()
        _wait(
            lambda: all(v == PER_STATION for v in acked.values()) or any(p.poll() for p in procs),
            240,
            "every station acked through its last record",
        )
        assert all(p.poll() is None for p in procs), "a ledger worker died"
        assert acked == dict.fromkeys(STATIONS, PER_STATION)
    finally:
        for link in links:
            link.stop()
    with psycopg.connect(pg_url) as db:
        for store in stores:
            journal = [(r["seq"], r["hash"]) for r in store.records()]
            ledger = db.execute(
                "SELECT seq, hash FROM records WHERE station = %s ORDER BY seq", [store.station]
            ).fetchall()
            assert [tuple(r) for r in ledger] == [tuple(r) for r in journal]  # once, in order
            head = db.execute(
                "SELECT epoch, acked_through, received_through FROM heads WHERE station = %s",
                [store.station],
            ).fetchall()
            assert head == [(store.epoch, PER_STATION, PER_STATION)]
            store.close()
        assert db.execute("SELECT count(*) FROM records").fetchone() == (50_000,)
        assert db.execute("SELECT count(*) FROM conflicts").fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM quarantine").fetchone() == (0,)
    for name in WORKERS:  # no batch needed the one-by-one fallback, none failed
        text = (tmp_path / f"{name}.log").read_text(errors="replace")
        assert "ERROR" not in text and "Traceback" not in text, text[-3000:]
    # the broker gave batches to both workers (Mosquitto logs every PUBLISH it sends)
    log = broker.log_path.read_text(errors="replace")
    for name in WORKERS:
        sent = re.findall(rf"Sending PUBLISH to {name} .*stations/asso-\d/records", log)
        assert len(sent) > 10, f"{name} got {len(sent)} batches"
