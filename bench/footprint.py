"""Benchmark: the station daemon's memory (VmRSS) and CPU as a process, idle and at 10 scans/s."""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

# run as `python bench/NAME.py`: the repository root holds the test support (a throwaway broker)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from drivers.sim.scale import ScaleSimulator
from drivers.sim.scanner import ScannerSimulator
from station.codes import with_check_digit
from station.sim import EXAMPLE_CONFIG
from station.store import Store
from tests.support.broker import Broker

CLK_TCK = os.sysconf("SC_CLK_TCK")
MIB = 1024 * 1024
BAUD = 9600
WATCHDOG_USEC = 30_000_000  # as WatchdogSec=30 in systemd/pesee-station.service
TARGET_RSS_MIB = 35.0
TARGET_IDLE_CPU_PCT = 0.5
CATEGORIES = ("CAT-VET", "CAT-HYG")
# what `station run` imports (the console script's package and its click-free start for a
# plain `run`, then the daemon's: station/cli/start.py)
DAEMON_IMPORTS = "import station.cli, station.cli.start, station.daemon"
# libraries weighed one at a time in a bare interpreter (import RSS over a bare one); the
# daemon is meant to import only the first group
LIBRARIES = ("gpiozero", "paho.mqtt.client", "ssl", "click", "sqlite3", "hashlib")
NOT_FOR_THE_DAEMON = ("pydantic", "sqlite_utils", "numpy", "evdev")


def beneficiary(n: int) -> str:
    """A valid beneficiary code of the example config (referrer 001, Luhn check digit)."""
    return "B" + with_check_digit("luhn", f"001{n:06d}")


def cpu_ticks(pid: int) -> int:
    """utime + stime of every thread of ``pid``, in clock ticks (/proc/<pid>/stat fields 14-15)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()  # the command name may hold spaces
    return int(fields[11]) + int(fields[12])


def status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def threads(pid: int) -> int:
    return status_kib(pid, "Threads")


def wakeups(pid: int) -> int:
    """Voluntary context switches of all threads: how often the process went to sleep."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += status_kib(int(task.name), "voluntary_ctxt_switches")
        except (FileNotFoundError, ProcessLookupError):  # a thread that just ended
            continue
    return total


@dataclass
class Window:
    """CPU and memory of one process over one stretch of wall-clock time."""

    name: str
    seconds: float = 0.0
    cpu_s: float = 0.0
    rss_kib: list[int] = field(default_factory=list)
    anon_kib: int = 0
    file_kib: int = 0
    wakeups: int = 0

    @property
    def wakeups_per_s(self) -> float:
        return self.wakeups / self.seconds if self.seconds else 0.0

    @property
    def cpu_pct(self) -> float:
        return 100.0 * self.cpu_s / self.seconds if self.seconds else 0.0

    @property
    def rss_mib(self) -> float:
        return self.rss_kib[-1] / 1024 if self.rss_kib else 0.0

    @property
    def rss_max_mib(self) -> float:
        return max(self.rss_kib) / 1024 if self.rss_kib else 0.0


def measure(
    pid: int,
    name: str,
    seconds: float,
    *,
    every: float = 1.0,
    during: Callable[[], None] | None = None,
) -> Window:
    """Sample ``pid`` for ``seconds`` while ``during`` (if any) runs in a thread."""
    win = Window(name)
    worker = threading.Thread(target=during, daemon=True) if during else None
    t0, c0, w0 = time.monotonic(), cpu_ticks(pid), wakeups(pid)
    if worker is not None:
        worker.start()
    end = t0 + seconds
    while True:
        win.rss_kib.append(status_kib(pid, "VmRSS"))
        now = time.monotonic()
        if now >= end:
            break
        time.sleep(min(every, end - now))
    win.seconds = time.monotonic() - t0
    win.cpu_s = (cpu_ticks(pid) - c0) / CLK_TCK
    win.wakeups = wakeups(pid) - w0
    win.anon_kib = status_kib(pid, "RssAnon")
    win.file_kib = status_kib(pid, "RssFile")
    if worker is not None:
        worker.join()
    return win


class NotifySocket:
    """A datagram socket standing in for systemd's NOTIFY_SOCKET: counts READY/WATCHDOG/STATUS."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.5)
        self.ready = threading.Event()
        self.counts: dict[str, int] = {}
        self.last_status = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="notify", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            for line in data.decode(errors="replace").splitlines():
                key, _, val = line.partition("=")
                self.counts[key] = self.counts.get(key, 0) + 1
                if key == "READY":
                    self.ready.set()
                elif key == "STATUS":
                    self.last_status = val

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


def baseline_rss(code: str) -> float:
    """VmRSS in MiB of a fresh interpreter that ran ``code`` (then waits to be measured)."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            code + "\nimport sys; sys.stdout.write('ok\\n'); sys.stdout.flush()\nsys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env={**os.environ, "GPIOZERO_PIN_FACTORY": "mock"},
    )
    assert proc.stdout is not None and proc.stdin is not None
    proc.stdout.readline()
    rss = status_kib(proc.pid, "VmRSS") / 1024
    proc.stdin.close()
    proc.wait(10)
    return rss


def import_costs() -> list[tuple[str, float, bool]]:
    """(library, RSS MiB it adds to a bare interpreter, imported by `station run`?)."""
    probe = subprocess.run(
        [sys.executable, "-c", DAEMON_IMPORTS + "\nimport sys; print(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "GPIOZERO_PIN_FACTORY": "mock"},
    )
    loaded = set(probe.stdout.split())
    bare = baseline_rss("pass")
    return [
        (lib, baseline_rss(f"import {lib}") - bare, lib in loaded)
        for lib in (*LIBRARIES, *NOT_FOR_THE_DAEMON)
    ]


def mapped_mib(pid: int, top: int = 5) -> list[tuple[str, float]]:
    """The process's RSS by mapping (/proc/<pid>/smaps): the heap and anonymous memory (Python
    objects, thread stacks), then the largest files (libpython, extension modules)."""
    per: dict[str, int] = {}
    name = ""
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        parts = line.split()
        if parts and "-" in parts[0] and len(parts) >= 5:
            name = Path(parts[5]).name if len(parts) > 5 and parts[5].startswith("/") else "anon"
            name = "anon" if name in ("[heap]", "[stack]") or name.startswith("[") else name
        elif parts and parts[0] == "Rss:":
            per[name] = per.get(name, 0) + int(parts[1])
    ranked = sorted(per.items(), key=lambda kv: -kv[1])
    return [(k, v / 1024) for k, v in ranked[:top]]


def write_configs(
    work: Path, broker: Broker, scale_url: str, scanner_url: str
) -> tuple[Path, Path]:
    text = EXAMPLE_CONFIG.read_text(encoding="utf-8")
    for old, new in (
        ('"/var/lib/pesee"', f'"{work / "data"}"'),
        ('"/run/pesee"', f'"{work / "run"}"'),
        ('"/dev/pesee-scale"', f'"{scale_url}"'),
        ('"/dev/pesee-scanner"', f'"{scanner_url}"'),
        ("port = 1883", f"port = {broker.port}"),
    ):
        assert old in text, old
        text = text.replace(old, new)
    station_cfg = work / "station.toml"
    station_cfg.write_text(text, encoding="utf-8")
    ledger_cfg = work / "ledger.toml"
    ledger_cfg.write_text(
        f'[ledger]\ndatabase = "{work / "ledger.db"}"\n'
        f'[mqtt]\nhost = "{broker.host}"\nport = {broker.port}\n',
        encoding="utf-8",
    )
    return station_cfg, ledger_cfg


def scans(rate: float, seconds: float, scanner: ScannerSimulator, sent: list[str]) -> None:
    """``rate`` scans a second: a new beneficiary (a visit record) then categories alternating."""
    n = int(rate * seconds)
    t0 = time.monotonic()
    for i in range(n):
        code = beneficiary(100 + i // 5) if i % 5 == 0 else CATEGORIES[i % 2]
        scanner.scan(code)
        sent.append(code)
        delay = t0 + (i + 1) / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)


def table(rows: Sequence[Sequence[str]]) -> str:
    head = ("", "RSS MiB end/max", "private/files", "CPU %", "wakeups/s", "notes")
    widths = [max(len(r[i]) for r in (head, *rows)) for i in range(len(head))]
    aligns = ["<", ">", ">", ">", ">", "<"]
    fmt = " | ".join(f"{{:{a}{w}}}" for a, w in zip(aligns, widths, strict=True))
    lines = [fmt.format(*head), "-+-".join("-" * w for w in widths)]
    lines += [fmt.format(*r) for r in rows]
    return "\n".join(lines)


def window_row(label: str, win: Window, notes: str) -> tuple[str, ...]:
    return (
        label,
        f"{win.rss_mib:.1f} / {win.rss_max_mib:.1f}",
        f"{win.anon_kib / 1024:.1f} / {win.file_kib / 1024:.1f}",
        f"{win.cpu_pct:.2f}",
        f"{win.wakeups_per_s:.0f}",
        notes,
    )


@dataclass
class Run:
    """One daemon run: its windows and what it told systemd."""

    journal_records: int
    t_ready: float
    rss_ready: float
    idle: Window
    busy: Window
    after: Window
    nthreads: int
    mapped: list[tuple[str, float]]
    sent: list[str]
    counts: dict[str, int]
    status: str
    t_prefill: float = 0.0
    t_synced: float = 0.0
    rss_drained: float = 0.0


def prefill(path: Path, station: str, n: int) -> None:
    """``n`` records through the real ``Store.append`` (set-up only, 5k per transaction), as the
    loop writes them: visits of 1-8 weighings between their ``visit_open`` and ``visit_close``."""
    rng = random.Random(18)
    boot = str(uuid.uuid4())
    visit: dict[str, str] = {}
    with Store(path, station) as store:
        done = 0
        while done < n:
            with store.transaction():  # one durable commit for the chunk
                for _ in range(min(5_000, n - done)):
                    done += 1
                    common = {"mono_ns": time.monotonic_ns(), "boot_id": boot, "clock_synced": True}
                    if rng.random() < 0.2 or store.last_seq == 0:
                        if store.last_seq:
                            store.append("visit_close", **common, **visit, reason="next")
                            done += 1
                        visit = {
                            "visit": str(uuid.uuid4()),
                            "beneficiary": beneficiary(rng.randrange(10**6)),
                            "referrer": "001",
                        }
                        store.append("visit_open", **common, **visit)
                        done += 1
                    net = rng.randrange(10, 5_000) * 5_000
                    store.append(
                        "weighing",
                        **common,
                        **visit,
                        category=rng.choice(CATEGORIES),
                        source="scale",
                        stable=True,
                        gross_mg=net,
                        tare_mg=0,
                        net_mg=net,
                        unit="kg",
                        scale_id="mt-sics",
                        raw=f"S S {net / 1_000_000:>10.3f} kg",
                    )
        store.checkpoint()


def synced(status_path: Path, last_seq: int, timeout: float) -> bool:
    """Wait until the daemon's status file says the journal is acked through ``last_seq``."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            status = json.loads(status_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            status = {}
        if status.get("last_seq", 0) >= last_seq and status.get("backlog", 1) == 0:
            return True
        time.sleep(0.5)
    return False


def run_daemon(args: argparse.Namespace, work: Path, journal_records: int) -> Run:
    """Start the ledger and the daemon in ``work`` (a journal of ``journal_records`` records,
    all acked by the ledger before the windows start), measure, stop everything."""
    work.mkdir(parents=True, exist_ok=True)
    broker = Broker(work / "broker", allow_anonymous=True).start()
    scale = ScaleSimulator(baud=args.baud or None)
    scanner = ScannerSimulator()
    scale_url = scale.start_pty(work / "scale")
    scanner_url = scanner.start_pty(work / "scanner")
    station_cfg, ledger_cfg = write_configs(work, broker, scale_url, scanner_url)
    notify = NotifySocket(work / "notify.sock")
    procs: list[subprocess.Popen[bytes]] = []
    logs = [(work / "ledger.log").open("wb"), (work / "station.log").open("wb")]
    t_prefill = t_synced = rss_drained = 0.0
    try:
        if journal_records:
            t0 = time.monotonic()
            prefill(work / "data" / "station.db", station_id(station_cfg), journal_records)
            t_prefill = time.monotonic() - t0
        if not args.no_ledger:
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "ledger", "--config", str(ledger_cfg), "run"],
                    stdout=logs[0],
                    stderr=subprocess.STDOUT,
                )
            )
        env = {
            **os.environ,
            "GPIOZERO_PIN_FACTORY": "mock",
            "PESEE_LANG": "en",
            "PYTHONUNBUFFERED": "1",
            "NOTIFY_SOCKET": str(notify.path),
            "WATCHDOG_USEC": str(WATCHDOG_USEC),
        }

        def start() -> tuple[subprocess.Popen[bytes], float]:
            notify.ready.clear()
            proc = subprocess.Popen(
                [sys.executable, "-m", "station", "--config", str(station_cfg), "run"],
                env=env,
                stdout=logs[1],
                stderr=subprocess.STDOUT,
            )
            procs.append(proc)
            t_spawn = time.monotonic()
            if not notify.ready.wait(60):
                raise SystemExit(f"no READY=1 from the station in 60 s; see {work / 'station.log'}")
            return proc, time.monotonic() - t_spawn

        station, t_ready = start()
        if journal_records and not args.no_ledger:
            # the journal is new to the ledger: the daemon sends it all, then restarts as a
            # station does every morning, its journal acked (what the windows measure)
            t0 = time.monotonic()
            if not synced(work / "run" / "status.json", journal_records, 600):
                raise SystemExit(f"the journal was not acked in 600 s; see {work}")
            t_synced = time.monotonic() - t0
            rss_drained = status_kib(station.pid, "VmRSS") / 1024
            station.terminate()
            station.wait(30)
            station, t_ready = start()
        rss_ready = status_kib(station.pid, "VmRSS") / 1024
        scale.place("1.250", settle_s=0)
        if not scanner.wait_reader(10):
            raise SystemExit("the station never opened the scanner")
        time.sleep(args.warmup)

        idle = measure(station.pid, "idle", args.idle)
        nthreads = threads(station.pid)
        mapped = mapped_mib(station.pid)
        sent: list[str] = []
        busy = measure(
            station.pid,
            "busy",
            args.busy,
            every=0.5,
            during=lambda: scans(args.rate, args.busy, scanner, sent),
        )
        after = measure(station.pid, "idle after", min(args.idle, 10.0))
        if station.poll() is not None:
            raise SystemExit(f"the station died (exit {station.returncode}); see station.log")
        counts = dict(notify.counts)
        status = notify.last_status
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
        for f in logs:
            f.close()
        notify.close()
        scanner.stop()
        scale.stop()
        broker.stop()
    return Run(
        journal_records,
        t_ready,
        rss_ready,
        idle,
        busy,
        after,
        nthreads,
        mapped,
        sent,
        counts,
        status,
        t_prefill,
        t_synced,
        rss_drained,
    )


def station_id(config: Path) -> str:
    with config.open("rb") as f:
        return str(tomllib.load(f)["station"]["id"])


def run_rows(run: Run, rate: float) -> list[tuple[str, ...]]:
    visits = sum(1 for c in run.sent if c.startswith("B"))
    journal = f" ({run.journal_records} records)" if run.journal_records else ""
    return [
        (
            f"station at READY{journal}",
            f"{run.rss_ready:.1f}",
            "",
            "",
            "",
            f"READY after {run.t_ready:.1f} s",
        ),
        window_row(
            f"idle {run.idle.seconds:.0f} s{journal}",
            run.idle,
            f"{run.idle.cpu_s:.2f} s CPU, {run.nthreads} threads",
        ),
        window_row(
            f"busy {run.busy.seconds:.0f} s, {rate:g} scans/s{journal}",
            run.busy,
            f"{len(run.sent)} scans, {visits} visits opened",
        ),
        window_row(f"idle after, {run.after.seconds:.0f} s{journal}", run.after, ""),
    ]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--idle", type=float, default=30.0, help="idle window, s (default 30)")
    ap.add_argument("--busy", type=float, default=10.0, help="busy window, s (default 10)")
    ap.add_argument("--rate", type=float, default=10.0, help="scans a second when busy (10)")
    ap.add_argument(
        "--baud", type=int, default=BAUD, help="scale simulator pacing, 0 = unpaced (9600)"
    )
    ap.add_argument("--warmup", type=float, default=5.0, help="after READY, s (default 5)")
    ap.add_argument(
        "--journal-records",
        type=int,
        default=0,
        metavar="N",
        help="also run the daemon on a journal of N records, acked (default 0: only the empty one)",
    )
    ap.add_argument("--no-ledger", action="store_true", help="no ledger process (no acks)")
    ap.add_argument("--workdir", type=Path, help="default: a temp dir, removed at the end")
    ap.add_argument("--keep", action="store_true", help="keep the workdir (logs, stores)")
    args = ap.parse_args(argv)

    work = args.workdir or Path(tempfile.mkdtemp(prefix="pesee-footprint-"))
    work.mkdir(parents=True, exist_ok=True)
    default = run_daemon(args, work, 0)
    full = (
        run_daemon(args, work / "journal", args.journal_records) if args.journal_records else None
    )

    bare = baseline_rss("pass")
    imports = baseline_rss(DAEMON_IMPORTS)
    costs = import_costs()
    rows = [
        ("baseline: bare python", f"{bare:.1f}", "", "", "", "an interpreter that ran nothing"),
        ("baseline: imports only", f"{imports:.1f}", "", "", "", "the daemon's modules"),
        *run_rows(default, args.rate),
        *(run_rows(full, args.rate) if full else ()),
    ]
    idle, busy, after = default.idle, default.busy, default.after
    print(table(rows))
    print()
    print("idle RSS by mapping, MiB: " + ", ".join(f"{k} {v:.1f}" for k, v in default.mapped))
    if full:
        print(
            f"journal of {full.journal_records} records: written in {full.t_prefill:.0f} s, sent "
            f"and acked in {full.t_synced:.0f} s (RSS then {full.rss_drained:.1f} MiB; restarted "
            f"for the windows); idle RSS {full.idle.rss_max_mib:.1f} MiB "
            f"({full.idle.rss_max_mib - idle.rss_max_mib:+.1f} over the empty journal); by "
            "mapping: " + ", ".join(f"{k} {v:.1f}" for k, v in full.mapped)
        )
    print("import RSS over a bare interpreter, one library at a time (MiB; * = `station run`")
    print(
        "imports it): "
        + ", ".join(f"{lib}{'*' if on else ''} +{mib:.1f}" for lib, mib, on in costs)
    )
    print()
    print(
        f"notify messages: {default.counts} (WATCHDOG_USEC={WATCHDOG_USEC}); "
        f"last STATUS: {default.status!r}"
    )
    worst = max(idle.rss_max_mib, full.idle.rss_max_mib if full else 0.0)
    ok_rss = worst <= TARGET_RSS_MIB
    ok_cpu = idle.cpu_pct <= TARGET_IDLE_CPU_PCT
    print(
        f"targets: idle RSS <= {TARGET_RSS_MIB:g} MiB: {'met' if ok_rss else 'MISSED'}; "
        f"idle CPU <= {TARGET_IDLE_CPU_PCT:g} %: {'met' if ok_cpu else 'MISSED'}"
    )
    if args.keep or args.workdir:
        print(f"workdir kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    result = {
        "bench": "footprint",
        "idle_rss_mib": round(idle.rss_max_mib, 1),
        "idle_cpu_pct": round(idle.cpu_pct, 2),
        "busy_cpu_pct": round(busy.cpu_pct, 2),
        "busy_rss_mib": round(busy.rss_max_mib, 1),
        "after_cpu_pct": round(after.cpu_pct, 2),
        "ready_rss_mib": round(default.rss_ready, 1),
        "baseline_python_rss_mib": round(bare, 1),
        "baseline_imports_rss_mib": round(imports, 1),
        "idle_s": round(idle.seconds, 1),
        "busy_s": round(busy.seconds, 1),
        "scans": len(default.sent),
        "scans_per_s": args.rate,
        "threads": default.nthreads,
        "idle_wakeups_per_s": round(idle.wakeups_per_s, 1),
        "idle_private_mib": round(idle.anon_kib / 1024, 1),
        "scale_baud": args.baud,
        "watchdog_pings": default.counts.get("WATCHDOG", 0),
        "import_mib": {lib: round(mib, 1) for lib, mib, _on in costs},
        "daemon_imports": [lib for lib, _mib, on in costs if on],
    }
    if full:
        result |= {
            "journal_records": full.journal_records,
            "journal_idle_rss_mib": round(full.idle.rss_max_mib, 1),
            "journal_busy_rss_mib": round(full.busy.rss_max_mib, 1),
            "journal_after_rss_mib": round(full.after.rss_max_mib, 1),
            "journal_idle_cpu_pct": round(full.idle.cpu_pct, 2),
            "journal_drained_rss_mib": round(full.rss_drained, 1),
        }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
