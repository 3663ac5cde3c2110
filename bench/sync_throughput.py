"""Benchmark: station journal → Mosquitto → ledger process, throughput and press → ack latency."""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import queue
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

# run as `python bench/NAME.py`: the repository root holds the test support (a throwaway broker)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ledger.store import SQLiteLedgerStore
from station.codes import with_check_digit
from station.outbox import JournalOutbox
from station.store import Store
from sync.client import MqttLink, MqttSettings
from sync.station_link import StationLink
from sync.topics import DEFAULT_PREFIX, Topics
from sync.wire import RECORD_FIELDS, StationStatus, WireError, decode_ledger_status, record_hash
from tests.support.broker import Broker, read_tail, reap

DRAIN_STATION = "bench-drain-1"
LIVE_STATION = "bench-live-1"
NAIVE_TOPIC = "naive/stations/" + DRAIN_STATION + "/records"
NAIVE_PROBE = "naive/probe"
CATEGORIES = ("CAT-VET", "CAT-BEBE", "CAT-HYG", "CAT-ALIM")
REFERRERS = ("001", "014")
# Mosquitto's packaged default (/etc/mosquitto: error, warning, notice, information); Broker's own
# "log_type all" writes a debug line per PUBLISH/PUBACK, a cost no production broker pays.
PRODUCTION_LOG = "\n".join(
    ["log_type none"] + [f"log_type {t}" for t in ("error", "warning", "notice", "information")]
)
_INSERT = (
    f"INSERT INTO records ({', '.join(RECORD_FIELDS)}, received_at) "
    f"VALUES ({', '.join('?' * len(RECORD_FIELDS))}, ?)"
)
LEDGER_STOP_TIMEOUT = 15.0


class BenchError(RuntimeError):
    """A part of the bench failed (a process died, a wait timed out, a check did not hold)."""


def pct(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100.0 * len(ordered)))
    return ordered[rank - 1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (all its threads), from /proc."""
    return cpu_seconds_of(f"/proc/{pid}/stat")


def thread_cpu_seconds(pid: int) -> dict[int, float]:
    """CPU seconds of each thread of process ``pid``, by thread id (a thread gone is left out)."""
    seconds: dict[int, float] = {}
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            seconds[int(task)] = cpu_seconds_of(f"/proc/{pid}/task/{task}/stat")
        except OSError:
            continue
    return seconds


def child_pids(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (the ledger's decode process)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except (OSError, ValueError, IndexError):
                continue
    return found


def cpu_seconds_of(stat: str) -> float:
    with open(stat, encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- realistic records ---------------------------------------------------------------------
class Weighings:
    """Weighing fields as the station loop writes them: visits of 1–8 items, Luhn codes, frames."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.boot_id = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        self._left = 0
        self._visit: dict[str, Any] = {}

    def next(self) -> dict[str, Any]:
        rng = self.rng
        if self._left == 0:
            referrer = rng.choice(REFERRERS)
            code = with_check_digit("luhn", f"{referrer}{rng.randrange(10**6):06d}")
            self._visit = {
                "visit": str(uuid.uuid4()),
                "referrer": referrer,
                "beneficiary": "B" + code,
                "operator": rng.choice((None, "OP-0001")),
            }
            self._left = rng.randint(1, 8)
        self._left -= 1
        in_box = rng.random() < 0.2
        box = 450_000 if in_box else 0
        net = rng.randrange(10, 5_000) * 5_000  # 50 g to 25 kg, 5 g divisions
        gross = net + box
        return {
            "mono_ns": time.monotonic_ns(),
            "boot_id": self.boot_id,
            "clock_synced": True,
            **self._visit,
            "category": rng.choice(CATEGORIES),
            "source": "scale",
            "stable": True,
            "gross_mg": gross,
            "tare_mg": box,
            "net_mg": net,
            "unit": "kg",
            "scale_id": "mt-sics",
            "raw": f"S S {gross / 1_000_000:>10.3f} kg",
            "data": {"container": "BAC-1", "container_tare_mg": box} if in_box else None,
        }


def prefill(path: Path, station: str, n: int, seed: int) -> float:
    """Append ``n`` weighings with ``Store.append`` (set-up only: 5k per transaction)."""
    t0 = time.perf_counter()
    gen = Weighings(seed)
    with Store(path, station) as store:
        done = 0
        while done < n:
            with store.transaction():  # one durable commit for the chunk
                for _ in range(min(5_000, n - done)):
                    store.append("weighing", **gen.next())
                    done += 1
        store.checkpoint()
    return time.perf_counter() - t0


# -- processes -----------------------------------------------------------------------------
def production_broker(directory: Path, extra: str = "") -> Broker:
    return Broker(directory, allow_anonymous=True, extra_config=PRODUCTION_LOG + "\n" + extra)


@dataclass
class LedgerProcess:
    """``python -m ledger --config … run``, the real service, its log in the work dir."""

    workdir: Path
    broker: Broker
    proc: subprocess.Popen[bytes] | None = None
    # several workers on one database: ``[ledger] group`` (a shared subscription), each its
    # own MQTT client id, config and log
    name: str = "ledger"
    group: str | None = None

    @property
    def database(self) -> Path:
        return self.workdir / "ledger.db"

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def start(self, timeout: float = 20.0) -> None:
        config = self.workdir / f"{self.name}.toml"
        group = f'group = "{self.group}"\n' if self.group else ""
        config.write_text(
            "[ledger]\n"
            f'database = "{self.database}"\n'
            'language = "en"\n'
            f"{group}"
            "[mqtt]\n"
            f'host = "{self.broker.host}"\n'
            f"port = {self.broker.port}\n"
            'username = "ledger"  # no password file: the bench broker lets anyone in\n'
            f'client_id = "bench-{self.name}"\n',
            encoding="utf-8",
        )
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "ledger", "--config", str(config), "run"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=Path(__file__).resolve().parent.parent,
            )
        online = threading.Event()

        def seen(topic: str, payload: bytes, retained: bool) -> None:
            try:
                if decode_ledger_status(payload).online:
                    online.set()
            except WireError:
                pass

        topics = Topics(DEFAULT_PREFIX)
        probe = MqttLink(
            MqttSettings(self.broker.host, self.broker.port, client_id="bench-probe"),
            subscriptions=[(topics.ledger_status, 1)],
            on_message=seen,
        )
        probe.start()
        try:
            deadline = time.monotonic() + timeout
            while not online.wait(0.1):
                self.check()
                if time.monotonic() > deadline:
                    raise BenchError(f"ledger not online within {timeout:.0f} s:\n{self.tail()}")
        finally:
            probe.stop()

    def check(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise BenchError(f"the ledger exited with {self.proc.returncode}:\n{self.tail()}")

    def tail(self, lines: int = 20) -> str:
        return read_tail(self.log_path, lines)

    def stop(self) -> None:
        """SIGTERM, then wait (it stops within about a second); SIGKILL after a bound."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        reap(proc, LEDGER_STOP_TIMEOUT)


@contextmanager
def started(stop: Callable[[], None]) -> Iterator[None]:
    try:
        yield
    finally:
        stop()


# -- the station side, wired as station/daemon.py does ------------------------------------
@dataclass(frozen=True, slots=True)
class Tuning:
    max_records: int
    max_bytes: int
    window: int


class StationSide:
    """A StationLink over a JournalOutbox; acks go to the thread that owns the store, which
    calls ``mark_synced`` (the daemon posts ``Acked`` to its loop, which does the same)."""

    def __init__(self, store: Store, broker: Broker, tuning: Tuning) -> None:
        self.store = store
        self.acks: queue.SimpleQueue[tuple[float, int]] = queue.SimpleQueue()
        self.ack_log: list[tuple[float, int]] = []  # (perf_counter, through) on the link thread
        self._snapshot = (store.last_seq, store.synced_through)
        self.link = StationLink(
            MqttSettings(
                broker.host, broker.port, client_id=f"station-{store.station}", username=None
            ),
            Topics(DEFAULT_PREFIX),
            JournalOutbox(store.path, store.station, store.epoch),
            acked_through=store.synced_through,
            on_acked=self._on_acked,
            on_registry=lambda topic, payload: None,
            status=self._status,
            max_records=tuning.max_records,
            max_bytes=tuning.max_bytes,
            window=tuning.window,
        )
        self._started = False

    def _on_acked(self, through: int) -> None:
        now = time.perf_counter()
        self.ack_log.append((now, through))
        self.acks.put((now, through))

    def _status(self) -> StationStatus:
        last_seq, synced = self._snapshot
        return StationStatus(
            station=self.store.station,
            online=True,
            session=1,
            version="bench",
            epoch=self.store.epoch,
            last_seq=last_seq,
            synced_through=synced,
            backlog=last_seq - synced,
        )

    def start(self) -> None:
        self._started = True
        self.link.start()

    def stop(self) -> None:
        if self._started:
            self._started = False
            self.link.stop()

    def handle_acks(self, timeout: float) -> int | None:
        """On the store's thread: apply the acks that came (waiting up to ``timeout``)."""
        try:
            _t, through = self.acks.get(timeout=max(0.0, timeout))
        except queue.Empty:
            return None
        while True:
            self.store.mark_synced(through)
            try:
                _t, through = self.acks.get_nowait()
            except queue.Empty:
                break
        self._snapshot = (self.store.last_seq, self.store.synced_through)
        return through

    def notify(self) -> None:
        self._snapshot = (self.store.last_seq, self._snapshot[1])
        self.link.notify()


# -- 1. ours: drain a backlog ------------------------------------------------------------------
@dataclass
class DrainResult:
    records: int
    prefill_s: float
    connect_s: float
    drain_s: float
    marked_s: float
    batches: int
    cpu_ledger_s: float
    cpu_broker_s: float
    cpu_station_s: float
    verified: str
    # the ledgers' child processes (ledger run's decode process), counted in cpu_ledger_s too
    cpu_ledger_children_s: float
    # the ledger's threads during the drain, busiest first (ingest, decode, paho's network)
    cpu_ledger_threads_s: list[float] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return self.records / self.drain_s


def run_drain(
    workdir: Path,
    broker: Broker,
    ledgers: Sequence[LedgerProcess],
    store_path: Path,
    n: int,
    prefill_s: float,
    tuning: Tuning,
    timeout: float,
) -> DrainResult:
    store = Store(store_path, DRAIN_STATION)
    side = StationSide(store, broker, tuning)
    connected_at: list[float] = []

    def _wait_connected() -> None:
        if side.link.link.connected.wait(timeout):
            connected_at.append(time.perf_counter())

    waiter = threading.Thread(target=_wait_connected, daemon=True)
    pids = [ledger.proc.pid for ledger in ledgers if ledger.proc is not None]
    assert len(pids) == len(ledgers) and broker.pid is not None

    # the decode process of each ledger (ledger/decoder.py) is its child: its CPU is the ledger's
    children = [child for pid in pids for child in child_pids(pid)]

    def children_cpu() -> float:
        return sum(cpu_seconds(pid) for pid in children)

    def ledger_cpu() -> float:
        return sum(cpu_seconds(pid) for pid in pids) + children_cpu()

    def ledger_threads() -> dict[tuple[int, int], float]:
        return {(pid, tid): t for pid in pids for tid, t in thread_cpu_seconds(pid).items()}

    with started(store.close), started(side.stop):
        cpu0 = (ledger_cpu(), cpu_seconds(broker.pid), time.process_time(), children_cpu())
        threads0 = ledger_threads()
        waiter.start()
        t0 = time.perf_counter()
        side.start()
        deadline = t0 + timeout
        through = 0
        while through < n:
            got = side.handle_acks(min(1.0, deadline - time.perf_counter()))
            if got is not None:
                through = got
            for ledger in ledgers:
                ledger.check()
            if time.perf_counter() > deadline:
                raise BenchError(f"drain: acked through {through} of {n} after {timeout:.0f} s")
        marked = time.perf_counter()
        t_ack = next(t for t, th in side.ack_log if th >= n)
        cpu1 = (ledger_cpu(), cpu_seconds(broker.pid), time.process_time(), children_cpu())
        threads1 = ledger_threads()
        batches = side.link.uploader.state().batches_sent
        verified = verify_ledger(ledgers[0].database, store)
    return DrainResult(
        n,
        prefill_s,
        (connected_at[0] - t0) if connected_at else float("nan"),
        t_ack - t0,
        marked - t0,
        batches,
        cpu1[0] - cpu0[0],
        cpu1[1] - cpu0[1],
        cpu1[2] - cpu0[2],
        verified,
        cpu1[3] - cpu0[3],
        sorted((t - threads0.get(tid, 0.0) for tid, t in threads1.items()), reverse=True),
    )


def verify_ledger(database: Path, store: Store) -> str:
    """The ledger holds exactly the station's records (seq and hash), acked and unquarantined."""
    station_rows = [(r["seq"], r["hash"]) for r in store.records()]
    db = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)
    try:
        ledger_rows = db.execute(
            "SELECT seq, hash FROM records WHERE station = ? AND epoch = ? ORDER BY seq",
            [store.station, store.epoch],
        ).fetchall()
        head = db.execute(
            "SELECT acked_through FROM heads WHERE station = ? AND epoch = ?",
            [store.station, store.epoch],
        ).fetchone()
        quarantined = db.execute("SELECT count(*) FROM quarantine").fetchone()[0]
        conflicts = db.execute("SELECT count(*) FROM conflicts").fetchone()[0]
    finally:
        db.close()
    problems = []
    if len(ledger_rows) != len(station_rows):
        problems.append(f"ledger has {len(ledger_rows)} records, station {len(station_rows)}")
    elif [tuple(r) for r in ledger_rows] != [tuple(r) for r in station_rows]:
        problems.append("hashes differ")
    if head is None or head[0] != store.last_seq:
        problems.append(f"ledger head {head} != station last seq {store.last_seq}")
    if quarantined or conflicts:
        problems.append(f"{quarantined} quarantined, {conflicts} conflicts")
    if problems:
        raise BenchError("ledger check failed: " + "; ".join(problems))
    return f"{len(ledger_rows)} records, hashes equal"


# -- 2. baseline: one record per message, one transaction per record --------------------------
def naive_receiver(database: str, port: int, n: int) -> int:
    """Hidden mode: subscribe at QoS 1, insert each record in its own durable transaction."""
    store = SQLiteLedgerStore(database)  # the ledger's own schema, WAL, synchronous=FULL
    done = threading.Event()
    ready = threading.Event()
    state = {"count": 0, "bad": 0, "t_first": 0.0, "t_last": 0.0}

    def on_message(topic: str, payload: bytes, retained: bool) -> None:
        if topic == NAIVE_PROBE:
            ready.set()
            return
        if state["count"] == 0:
            state["t_first"] = time.monotonic()
        record = dict.fromkeys(RECORD_FIELDS)
        record.update(json.loads(payload))
        if record_hash(record) != record["hash"]:
            state["bad"] += 1
        now = time.strftime("%Y-%m-%dT%H:%M:%S")
        values = [record[c] for c in RECORD_FIELDS] + [now]
        store.sql.atomic(lambda: store.sql.exec(_INSERT, values))
        state["count"] += 1
        if state["count"] >= n:
            state["t_last"] = time.monotonic()
            done.set()

    link = MqttLink(
        MqttSettings("127.0.0.1", port, client_id="naive-receiver"),
        subscriptions=[("naive/#", 1)],
        on_message=on_message,
    )
    link.start()
    try:
        if not link.connected.wait(10):
            return 1
        while not ready.is_set():  # our own probe back: the subscription is in place
            link.publish(NAIVE_PROBE, b"probe")
            ready.wait(0.2)
        print("ready", flush=True)
        done.wait(600)
        print(json.dumps(state), flush=True)
    finally:
        link.stop()
        store.close()
    return 0


@dataclass
class NaiveResult:
    records: int
    publish_s: float
    end_to_end_s: float
    bad: int

    @property
    def rps(self) -> float:
        return self.records / self.end_to_end_s

    @property
    def publish_rps(self) -> float:
        return self.records / self.publish_s


def run_naive(workdir: Path, store_path: Path, n: int, stack: ExitStack) -> NaiveResult:
    # a broker of its own: with a slow subscriber the backlog queues in the broker, beyond its
    # default max_queued_messages (1000), which would drop messages instead of measuring
    broker = production_broker(workdir / "broker-naive", "max_queued_messages 0").start()
    stack.callback(broker.stop)
    with Store(store_path, DRAIN_STATION, create=False) as store:
        records = list(store.records(0, n))
    payloads = [json.dumps(r, ensure_ascii=False).encode() for r in records]
    receiver = subprocess.Popen(
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "--naive-receiver",
            str(workdir / "naive.db"),
            str(broker.port),
            str(len(payloads)),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parent.parent,
    )

    def _kill() -> None:
        if receiver.poll() is None:
            receiver.kill()
        receiver.wait(5)

    stack.callback(_kill)
    assert receiver.stdout is not None
    if receiver.stdout.readline().strip() != b"ready":
        raise BenchError("naive receiver did not start")
    link = MqttLink(MqttSettings(broker.host, broker.port, client_id="naive-sender"))
    link.start()
    try:
        if not link.connected.wait(10):
            raise BenchError("naive sender could not connect")
        t0 = time.monotonic()
        for payload in payloads:
            # what a naive client does: one message per record, wait for the broker's PUBACK
            link.client.publish(NAIVE_TOPIC, payload, qos=1).wait_for_publish(10)
        t_pub = time.monotonic()
    finally:
        link.stop()
    out, _err = receiver.communicate(timeout=600)
    state = json.loads(out.decode().strip().splitlines()[-1])
    if state["count"] != len(payloads) or not state["t_last"]:
        raise BenchError(f"naive receiver got {state['count']} of {len(payloads)}")
    return NaiveResult(len(payloads), t_pub - t0, state["t_last"] - t0, int(state["bad"]))


# -- 3. press → ledger ack on a live link ----------------------------------------------------
@dataclass
class PressResult:
    presses: int
    commit_ms: list[float] = field(default_factory=list)
    ack_ms: list[float] = field(default_factory=list)  # commit returned → ack at the station


def run_presses(
    workdir: Path,
    broker: Broker,
    ledger: LedgerProcess,
    presses: int,
    gap_s: float,
    warmup: int,
    tuning: Tuning,
) -> PressResult:
    store = Store(workdir / "live" / "station.db", LIVE_STATION)
    side = StationSide(store, broker, tuning)
    gen = Weighings(seed=2)
    result = PressResult(presses)
    committed: dict[int, tuple[float, float]] = {}
    with started(store.close), started(side.stop):
        side.start()
        if not side.link.link.connected.wait(10):
            raise BenchError("live station could not connect")
        rng = random.Random(3)
        next_t = time.perf_counter()
        for i in range(warmup + presses):
            # the station loop: between presses it applies acks (mark_synced), as the daemon does
            while (wait := next_t - time.perf_counter()) > 0:
                side.handle_acks(wait)
            t0 = time.perf_counter()
            row = store.append("weighing", **gen.next())
            t1 = time.perf_counter()
            side.notify()
            if i >= warmup:
                committed[row["seq"]] = (t0, t1)
            next_t = t1 + gap_s * rng.uniform(0.75, 1.25)
        deadline = time.perf_counter() + 15
        while store.synced_through < store.last_seq and time.perf_counter() < deadline:
            side.handle_acks(0.5)
            ledger.check()
        if store.synced_through < store.last_seq:
            raise BenchError(f"live: acked {store.synced_through} of {store.last_seq}")
        acks = list(side.ack_log)
    for seq, (t0, t1) in sorted(committed.items()):
        t_ack = next(t for t, through in acks if through >= seq)
        result.commit_ms.append((t1 - t0) * 1000)
        result.ack_ms.append((t_ack - t1) * 1000)
    return result


# -- report --------------------------------------------------------------------------------
def _row(label: str, values: Sequence[float]) -> str:
    return (
        f"| {label} | {pct(values, 50):.2f} | {pct(values, 90):.2f} | {pct(values, 99):.2f} "
        f"| {max(values):.2f} |"
    )


def report(
    args: argparse.Namespace,
    tuning: Tuning,
    drain: DrainResult,
    naive: NaiveResult | None,
    press: PressResult | None,
) -> dict[str, Any]:
    ratio = drain.rps / naive.rps if naive is not None else None
    print()
    print(
        f"Tuning: max_records={tuning.max_records} max_bytes={tuning.max_bytes} "
        f"window={tuning.window}; {args.ledger_workers} ledger process(es); "
        f"{os.cpu_count()} CPUs; load average {args.load_at_start:.2f} at the start"
    )
    print()
    print("| throughput | records | seconds | records/s |")
    print("|---|---:|---:|---:|")
    print(
        f"| ours: drain (start → ack of last seq) | {drain.records} | {drain.drain_s:.3f} "
        f"| {drain.rps:,.0f} |"
    )
    if naive is not None:
        print(
            f"| baseline: 1 record/message, PUBACK wait, 1 txn/record | {naive.records} "
            f"| {naive.end_to_end_s:.3f} | {naive.rps:,.0f} |"
        )
        print(
            f"| · its sender alone (publish + PUBACK) | {naive.records} | {naive.publish_s:.3f} "
            f"| {naive.publish_rps:,.0f} |"
        )
        print(f"| ratio ours / baseline | | | {ratio:.1f} |")
    print()
    print(
        f"Drain: connected after {drain.connect_s * 1000:.1f} ms, {drain.batches} batches, "
        f"store marked synced {(drain.marked_s - drain.drain_s) * 1000:.1f} ms after the last ack; "
        f"CPU during the drain: ledger {drain.cpu_ledger_s:.2f} s (its decode process "
        f"{drain.cpu_ledger_children_s:.2f} s of it), mosquitto "
        f"{drain.cpu_broker_s:.2f} s, station (this process) {drain.cpu_station_s:.2f} s "
        f"(the ledger's threads, busiest first: "
        f"{', '.join(f'{t:.2f}' for t in drain.cpu_ledger_threads_s[:4])} s); "
        f"check: {drain.verified}. (Prefill, not measured: {drain.prefill_s:.1f} s.)"
    )
    if press is not None and press.ack_ms:
        total = [c + a for c, a in zip(press.commit_ms, press.ack_ms, strict=True)]
        print()
        print(f"Live link, {press.presses} presses ~{args.gap * 1000:.0f} ms apart (ms):")
        print()
        print("| ms | p50 | p90 | p99 | max |")
        print("|---|---:|---:|---:|---:|")
        print(_row("commit (Store.append)", press.commit_ms))
        print(_row("commit returned → ledger ack at the station", press.ack_ms))
        print(_row("commit start → ack (both)", total))
    line: dict[str, Any] = {
        "bench": "sync_throughput",
        "ours_rps": round(drain.rps),
        "naive_rps": round(naive.rps) if naive is not None else None,
        "ratio": round(ratio, 1) if ratio is not None else None,
        "drain_100k_s": round(drain.drain_s, 3),
        "press_to_ack_p50_ms": round(pct(press.ack_ms, 50), 2) if press else None,
        "press_to_ack_p99_ms": round(pct(press.ack_ms, 99), 2) if press else None,
        "commit_p50_ms": round(pct(press.commit_ms, 50), 2) if press else None,
        "records": drain.records,
        "naive_records": naive.records if naive is not None else 0,
        "presses": press.presses if press else 0,
        "max_records": tuning.max_records,
        "max_bytes": tuning.max_bytes,
        "window": tuning.window,
        "ledger_workers": args.ledger_workers,
        "loadavg_1m": round(args.load_at_start, 2),
        # CPU per record during the drain: steady where the wall clock is not (a shared box)
        "ledger_cpu_us": round(drain.cpu_ledger_s / drain.records * 1e6, 1),
        "station_cpu_us": round(drain.cpu_station_s / drain.records * 1e6, 1),
        "decode_process_cpu_us": round(drain.cpu_ledger_children_s / drain.records * 1e6, 1),
        "ledger_threads_cpu_us": [
            round(t / drain.records * 1e6, 1) for t in drain.cpu_ledger_threads_s[:3]
        ],
    }
    print()
    return line


class _QuietStops(logging.Filter):
    """Drop the warning MqttLink logs when we disconnect it ourselves at the end of a part."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Normal disconnection" not in record.getMessage()


def _terminate(signum: int, _frame: Any) -> NoReturn:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks: everything is stopped


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=100_000, help="backlog (%(default)s)")
    parser.add_argument(
        "--naive-records", type=int, default=5_000, help="baseline subset, 0 to skip (%(default)s)"
    )
    parser.add_argument("--presses", type=int, default=200, help="0 to skip (%(default)s)")
    parser.add_argument("--gap", type=float, default=0.02, help="s between presses (%(default)s)")
    parser.add_argument("--max-records", type=int, default=500, help="batch (%(default)s)")
    parser.add_argument("--max-bytes", type=int, default=200_000, help="batch (%(default)s)")
    parser.add_argument("--window", type=int, default=8, help="batches in flight (%(default)s)")
    parser.add_argument(
        "--ledger-workers",
        type=int,
        default=1,
        help="ledger processes on the one database, a shared subscription (%(default)s)",
    )
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temp dir, removed")
    parser.add_argument("--naive-receiver", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.naive_receiver:
        database, port, n = args.naive_receiver
        return naive_receiver(database, int(port), int(n))
    signal.signal(signal.SIGTERM, _terminate)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("sync.client").addFilter(_QuietStops())
    tuning = Tuning(args.max_records, args.max_bytes, args.window)
    args.load_at_start = os.getloadavg()[0]  # other work on the box shows in every figure
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="pesee-sync-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        with ExitStack() as stack:
            store_path = workdir / "drain" / "station.db"
            print(f"prefilling {args.records} weighings…", file=sys.stderr, flush=True)
            prefill_s = prefill(store_path, DRAIN_STATION, args.records, seed=1)
            broker = production_broker(workdir / "broker").start()
            stack.callback(broker.stop)
            group = f"bench-workers-{os.getpid():08d}" if args.ledger_workers > 1 else None
            ledgers = [
                LedgerProcess(workdir, broker, name=f"ledger{i or ''}", group=group)
                for i in range(args.ledger_workers)
            ]
            for ledger in ledgers:
                stack.callback(ledger.stop)
                ledger.start()
            print("draining…", file=sys.stderr, flush=True)
            timeout = 60 + args.records / 1_000
            drain = run_drain(
                workdir, broker, ledgers, store_path, args.records, prefill_s, tuning, timeout
            )
            press = None
            if args.presses > 0:
                print(f"{args.presses} live presses…", file=sys.stderr, flush=True)
                press = run_presses(workdir, broker, ledgers[0], args.presses, args.gap, 10, tuning)
            for ledger in ledgers:
                ledger.stop()
            naive = None
            if args.naive_records > 0:
                print(f"baseline, {args.naive_records} records…", file=sys.stderr, flush=True)
                naive = run_naive(workdir, store_path, min(args.naive_records, args.records), stack)
            line = report(args, tuning, drain, naive, press)
    except BenchError as exc:
        print(f"sync_throughput: {exc}", file=sys.stderr)
        return 1
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(line))
    return 0


if __name__ == "__main__":
    sys.exit(main())
