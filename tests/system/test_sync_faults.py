"""Faults the link must survive, with real processes: broker, ledger and station restarts and kills,
replayed and forged batches, malformed payloads. After each, every record is at the ledger once."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from drivers.sim.scale import ScaleSimulator
from drivers.sim.scanner import ScannerSimulator
from station.sim import EXAMPLE_CONFIG
from station.store import Store
from sync.topics import Topics
from sync.wire import Batch, encode, record_hash
from tests.support.broker import Broker
from tests.support.helpers import beneficiary

STATION = "ressourcerie-nord-1"
TOPICS = Topics()


def _until(cond: Callable[[], bool], timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    if not cond():
        raise AssertionError(f"timed out waiting for {what or cond}")


def _prefill(path: Path, n: int) -> str:
    """A station journal with ``n`` weighings, made fast (this is set-up, not what is tested)."""
    with Store(path, STATION) as store, store.transaction():  # one commit for them all
        for i in range(n):
            store.append(
                "weighing",
                visit=f"v{i // 5}",
                beneficiary=beneficiary(i % 997),
                referrer="001",
                category="CAT-VET",
                source="scale",
                stable=True,
                net_mg=250_000 + i,
                unit="kg",
                boot_id="prefill",
                mono_ns=i,
                raw="S S      0.250 kg",
            )
        return store.epoch


def _ro(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)


@dataclass
class Rig:
    tmp: Path
    broker: Broker
    scale: ScaleSimulator
    scanner: ScannerSimulator
    station_cfg: Path
    ledger_cfg: Path
    station_db: Path
    ledger_db: Path
    station: subprocess.Popen[bytes] | None = None
    ledger: subprocess.Popen[bytes] | None = None

    def start_station(self) -> None:
        env = {**os.environ, "GPIOZERO_PIN_FACTORY": "mock", "PESEE_LANG": "en"}
        log = (self.tmp / "station.log").open("ab")
        self.station = subprocess.Popen(
            [sys.executable, "-m", "station", "--config", str(self.station_cfg), "run"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def start_ledger(self) -> None:
        log = (self.tmp / "ledger.log").open("ab")
        self.ledger = subprocess.Popen(
            [sys.executable, "-m", "ledger", "--config", str(self.ledger_cfg), "run"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def kill(self, proc: subprocess.Popen[bytes] | None) -> None:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)

    def stop(self, proc: subprocess.Popen[bytes] | None) -> int | None:
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                return proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        return proc.returncode

    def ledger_head(self, epoch: str) -> int:
        if not self.ledger_db.exists():
            return 0
        with _ro(self.ledger_db) as db:
            try:
                row = db.execute(
                    "SELECT acked_through FROM heads WHERE station = ? AND epoch = ?",
                    [STATION, epoch],
                ).fetchone()
            except sqlite3.OperationalError:  # tables not created yet
                return 0
        return int(row[0]) if row else 0

    def synced_through(self) -> int:
        with _ro(self.station_db) as db:
            row = db.execute("SELECT v FROM meta WHERE k = 'synced_through'").fetchone()
        return int(row[0])

    def check_exactly_once(self, epoch: str, n: int) -> None:
        """Every record once at the ledger, the same chain as the station's, acks agreeing."""
        with _ro(self.station_db) as db:
            local = db.execute("SELECT seq, hash FROM records ORDER BY seq").fetchall()
        with _ro(self.ledger_db) as db:
            remote = db.execute(
                "SELECT seq, hash FROM records WHERE station = ? AND epoch = ? ORDER BY seq",
                [STATION, epoch],
            ).fetchall()
            conflicts = db.execute("SELECT count(*) FROM conflicts").fetchone()[0]
        assert len(local) == n
        assert remote == local
        assert conflicts == 0
        assert self.ledger_head(epoch) == n
        _until(lambda: self.synced_through() == n, 30, "the station to learn the last ack")


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    broker = Broker(tmp_path / "broker", allow_anonymous=True).start()
    scale, scanner = ScaleSimulator(), ScannerSimulator()
    scale_url = scale.start_pty(tmp_path / "scale")
    scanner_url = scanner.start_pty(tmp_path / "scanner")
    text = EXAMPLE_CONFIG.read_text(encoding="utf-8")
    text = text.replace('"/var/lib/pesee"', f'"{tmp_path / "data"}"')
    text = text.replace('"/run/pesee"', f'"{tmp_path / "run"}"')
    text = text.replace('"/dev/pesee-scale"', f'"{scale_url}"')
    text = text.replace('"/dev/pesee-scanner"', f'"{scanner_url}"')
    text = text.replace("port = 1883", f"port = {broker.port}")
    # small batches and a short resend timer: the faults land in the middle of the drain
    text = text.replace("batch_records = 500", "batch_records = 100")
    text = text.replace("window = 8", "window = 2")
    text = text.replace("resend_after = 15", "resend_after = 2")
    station_cfg = tmp_path / "station.toml"
    station_cfg.write_text(text, encoding="utf-8")
    ledger_cfg = tmp_path / "ledger.toml"
    ledger_cfg.write_text(
        f'[ledger]\ndatabase = "{tmp_path / "ledger.db"}"\n'
        f'[mqtt]\nhost = "{broker.host}"\nport = {broker.port}\n',
        encoding="utf-8",
    )
    r = Rig(
        tmp_path,
        broker,
        scale,
        scanner,
        station_cfg,
        ledger_cfg,
        tmp_path / "data" / "station.db",
        tmp_path / "ledger.db",
    )
    try:
        yield r
    finally:
        r.kill(r.station)
        r.kill(r.ledger)
        broker.stop()
        scale.stop()
        scanner.stop()


N = 10_000


def test_broker_restarted_while_draining_a_backlog(rig: Rig) -> None:
    epoch = _prefill(rig.station_db, N)
    rig.start_ledger()
    rig.start_station()
    _until(lambda: rig.ledger_head(epoch) >= 1000, 60, "the drain to start")
    rig.broker.stop()
    time.sleep(0.5)
    rig.broker.restart()
    _until(lambda: rig.ledger_head(epoch) == N, 120, "the drain to finish")
    rig.check_exactly_once(epoch, N)
    assert rig.stop(rig.station) == 0
    assert rig.stop(rig.ledger) == 0


def test_ledger_killed_in_the_middle_of_a_batch(rig: Rig) -> None:
    epoch = _prefill(rig.station_db, N)
    rig.start_ledger()
    rig.start_station()
    _until(lambda: rig.ledger_head(epoch) >= 1000, 60, "the drain to start")
    rig.kill(rig.ledger)
    stopped_at = rig.ledger_head(epoch)
    assert stopped_at < N
    rig.start_ledger()
    _until(lambda: rig.ledger_head(epoch) == N, 120, "the drain to finish")
    rig.check_exactly_once(epoch, N)


def test_station_killed_in_the_middle_of_a_drain(rig: Rig) -> None:
    epoch = _prefill(rig.station_db, N)
    rig.start_ledger()
    rig.start_station()
    _until(lambda: rig.ledger_head(epoch) >= 1000, 60, "the drain to start")
    rig.kill(rig.station)
    assert rig.synced_through() < N
    rig.start_station()
    _until(lambda: rig.ledger_head(epoch) == N, 120, "the drain to finish")
    rig.check_exactly_once(epoch, N)


def _publisher(rig: Rig) -> mqtt.Client:
    """A test client, returned once the ledger's retained status says it is online (so it has
    subscribed: what is published before would reach nobody)."""
    online = threading.Event()

    def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        if json.loads(msg.payload).get("online"):
            online.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.on_message = on_message
    client.connect(rig.broker.host, rig.broker.port)
    client.subscribe(TOPICS.ledger_status, qos=1)
    client.loop_start()
    assert online.wait(30), "the ledger never came online"
    return client


def _quarantine(rig: Rig) -> list[str]:
    with _ro(rig.ledger_db) as db:
        return [r[0] for r in db.execute("SELECT reason FROM quarantine ORDER BY id")]


def test_replayed_and_forged_batches(rig: Rig) -> None:
    epoch = _prefill(rig.station_db, 50)
    rig.start_ledger()
    rig.start_station()
    _until(lambda: rig.ledger_head(epoch) == 50, 60, "the first sync")
    with Store(rig.station_db, STATION, create=False) as store:
        records = tuple(store.records(limit=10))
    client = _publisher(rig)
    try:
        # the same batch again (a QoS 1 duplicate, a station resend): changes nothing
        client.publish(TOPICS.records(STATION), encode(Batch(STATION, epoch, records)), qos=1)
        # a forged batch: same keys, other content, valid hashes and chain
        forged = []
        prev = records[0]["prev_hash"]
        for r in records:
            f = dict(r, net_mg=r["net_mg"] + 1_000_000, prev_hash=prev)
            f["hash"] = record_hash(f)
            prev = f["hash"]
            forged.append(f)
        info = client.publish(
            TOPICS.records(STATION), encode(Batch(STATION, epoch, tuple(forged))), qos=1
        )
        info.wait_for_publish(5)
    finally:
        client.loop_stop()
        client.disconnect()

    def conflicts() -> int:
        with _ro(rig.ledger_db) as db:
            return int(db.execute("SELECT count(*) FROM conflicts").fetchone()[0])

    _until(lambda: conflicts() == 10, 30, "the forged records to be kept as conflicts")
    with _ro(rig.ledger_db) as db:
        stored = db.execute(
            "SELECT net_mg FROM records WHERE station = ? AND seq <= 10 ORDER BY seq", [STATION]
        ).fetchall()
        count = db.execute("SELECT count(*) FROM records").fetchone()[0]
    assert [s[0] for s in stored] == [r["net_mg"] for r in records]  # the first one wins
    assert count == 50
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "ledger",
            "--lang",
            "en",
            "--config",
            str(rig.ledger_cfg),
            "conflicts",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0
    assert "10 conflict(s)" in done.stderr
    assert f"{STATION} epoch {epoch} seq 1: content" in done.stdout


def test_malformed_and_spoofed_payloads_are_quarantined(rig: Rig) -> None:
    epoch = _prefill(rig.station_db, 20)
    rig.start_ledger()
    with Store(rig.station_db, STATION, create=False) as store:
        records = tuple(store.records())
    good = encode(Batch(STATION, epoch, records))
    client = _publisher(rig)
    try:
        sends = [
            (TOPICS.records(STATION), b"not json at all"),
            (TOPICS.records(STATION), b"\xff\xfe\x00"),
            (TOPICS.records(STATION), json.dumps({"v": 1, "type": "batch"}).encode()),
            (TOPICS.records("another-station"), good),  # payload station ≠ topic station
            (TOPICS.records(STATION), good[:-40]),  # truncated
            (TOPICS.records(STATION), b"[" * 300_000),  # oversized
            (TOPICS.records(STATION), good),  # and a good one still goes through
        ]
        for topic, payload in sends:
            client.publish(topic, payload, qos=1).wait_for_publish(5)
    finally:
        client.loop_stop()
        client.disconnect()
    _until(lambda: rig.ledger_head(epoch) == 20, 30, "the good batch")
    _until(lambda: len(_quarantine(rig)) == 6, 30, "six quarantined payloads")
    reasons = _quarantine(rig)
    assert reasons[0] == "not JSON"
    assert reasons[1] == "not JSON"
    assert reasons[3] == f"station '{STATION}' published under 'another-station'"
    assert reasons[5].startswith("too large")
    with _ro(rig.ledger_db) as db:
        raw = db.execute("SELECT payload FROM quarantine ORDER BY id LIMIT 1").fetchone()[0]
    assert raw == b"not json at all"  # kept as it came
    assert rig.ledger is not None and rig.ledger.poll() is None
    assert rig.stop(rig.ledger) == 0
