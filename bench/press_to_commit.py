"""Benchmark: button press → committed record on the simulated counter, MT-SICS at 9600 baud."""

from __future__ import annotations

import argparse
import json
import math
import queue
import random
import shutil
import sys
import tempfile
import threading
import time
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import serial

from drivers.sim.scale import ScaleSimulator
from station.codes import with_check_digit
from station.events import Event, WeightRead
from station.outcomes import Outcome
from station.sim import EXAMPLE_CONFIG, SimulatedCounter
from station.store import Store

BAUD = 9600
BITS_PER_BYTE = 10  # 8N1: start + 8 data + stop
REQUEST = b"SI\r\n"
BENEFICIARY = "B" + with_check_digit("luhn", "001123456")
CATEGORY = "CAT-VET"
STATION = "ressourcerie-nord-1"
# An fsync after an idle pause costs more than back-to-back ones on many disks (here about
# 0.9 ms against 0.4 ms), so the baseline that compares with presses is spaced like presses.
COMMIT_GAP_S = 0.05
# the idle poll interval the station ships with (station.example.toml), not the simulator's 0.1
SHIPPED_POLL_S = float(tomllib.loads(EXAMPLE_CONFIG.read_text("utf-8"))["scale"]["poll_interval"])


def reply_bytes(mg: int) -> bytes:
    """The simulator's MT-SICS reply to ``SI`` for a stable ``mg`` shown in kg with 3 decimals."""
    kg = f"{Decimal(mg) / 1_000_000:.3f}"
    return f"S S {kg:>10} kg\r\n".encode("ascii")


def wire_ms(n_bytes: int, baud: int = BAUD) -> float:
    return n_bytes * BITS_PER_BYTE / baud * 1000.0


def pct(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100.0 * len(ordered)))
    return ordered[rank - 1]


def mass_mg(i: int) -> int:
    """A distinct mass for press ``i`` (the same stable weight twice is refused as SAME_ITEM)."""
    return (250 + (i * 37) % 8_000) * 1000


@dataclass
class Press:
    """Timestamps of one press (all ``time.monotonic()`` seconds)."""

    t_event: float
    t_done: float
    request_sent: float  # the request whose reply was recorded
    reading_posted: float  # the worker posted that reading to the station's queue
    commit_start: float
    commit_end: float
    readings_discarded: int  # readings posted after the press but requested before it

    @property
    def latency(self) -> float:
        return self.t_done - self.t_event

    @property
    def in_flight(self) -> bool:
        """The recorded reading was asked before the press (the load was already settled)."""
        return self.request_sent < self.t_event

    def wire_after_press(self, wire_s: float) -> float:
        """The part of the recorded exchange's wire time that lies after the press."""
        if not self.in_flight:
            return wire_s
        return max(0.0, wire_s - (self.t_event - self.request_sent))


@dataclass
class Probe:
    """Timestamps taken by wrapping the station's own entry points (nothing is replaced)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    readings: list[tuple[float, float, bool]] = field(
        default_factory=list
    )  # (sent, posted, stable)
    commits: list[tuple[float, float]] = field(default_factory=list)

    def reset(self) -> None:
        with self.lock:
            self.readings.clear()
            self.commits.clear()


def _instrument(counter: SimulatedCounter, probe: Probe) -> None:
    station = counter.station
    post: Callable[[Event], None] = station.post
    append: Callable[..., dict[str, Any]] = counter.daemon.store.append

    def timed_post(event: Event) -> None:
        if isinstance(event, WeightRead):
            with probe.lock:
                probe.readings.append((event.t, time.monotonic(), event.reading.stable))
        post(event)

    def timed_append(kind: str, **fields: Any) -> dict[str, Any]:
        start = time.monotonic()
        row = append(kind, **fields)
        with probe.lock:
            probe.commits.append((start, time.monotonic()))
        return row

    # Device callbacks call ``self.station.post`` and the loop calls ``self.store.append`` at
    # call time, so instance attributes are enough; the real methods still do all the work.
    station.post = timed_post  # type: ignore[method-assign]
    counter.daemon.store.append = timed_append  # type: ignore[method-assign]


def _scan(counter: SimulatedCounter, code: str, expected: Outcome) -> None:
    for _attempt in range(4):
        counter.scan(code)
        try:
            while True:
                if counter.next_result(timeout=3.0).outcome is expected:
                    return
        except queue.Empty:
            continue
    raise RuntimeError(f"scan {code}: no {expected.value}")


class Rig:
    """One real daemon (scale simulator paced at 9600 baud on a pty) with its probe, its
    ``[scale]`` section overridden by ``scale``; a visit and a category already scanned."""

    def __init__(self, workdir: Path, name: str, scale: dict[str, Any]) -> None:
        self.name = name
        self.probe = Probe()
        self.presses: list[Press] = []
        self.counter = SimulatedCounter(
            workdir / name, {"station": {"language": "en"}, "scale": scale}, baud=BAUD
        )

    def start(self) -> None:
        self.counter.start()
        _instrument(self.counter, self.probe)
        _scan(self.counter, BENEFICIARY, Outcome.VISIT_OPENED)
        _scan(self.counter, CATEGORY, Outcome.CATEGORY_SET)

    def press(self, i: int, wait: float) -> None:
        counter, probe = self.counter, self.probe
        counter.scale.place(mass_mg(i), settle_s=0.0)
        # let the idle polling see the stable load; a random wait puts the press at a random
        # phase of the polling cycle, as a person's hand would
        time.sleep(wait)
        counter.drain()
        probe.reset()
        counter.press()
        result = counter.next_result(timeout=10.0)
        if result.outcome is not Outcome.RECORDED:
            raise RuntimeError(f"{self.name} press {i}: {result.outcome.value} ({result.text})")
        with probe.lock:
            readings = list(probe.readings)
            commits = list(probe.commits)
        start, end = commits[-1]
        # the reading that was recorded: the last stable one posted before the commit began
        used = [r for r in readings if r[2] and r[1] <= start][-1]
        # asked before the press, arrived after it: the press waited behind that exchange
        discarded = sum(1 for r in readings if r[0] < result.t_event <= r[1] and r[0] != used[0])
        self.presses.append(
            Press(result.t_event, result.t_done, used[0], used[1], start, end, discarded)
        )

    def stop(self) -> None:
        self.counter.stop()


def bench_counter(
    workdir: Path, presses: int, rng: random.Random, gap: float, scales: dict[str, dict[str, Any]]
) -> dict[str, list[Press]]:
    """Press K times on each rig, the rigs taking turns press by press (the order swapped
    every press), so that a load on the machine hits every configuration alike."""
    rigs = [Rig(workdir, name, scale) for name, scale in scales.items()]
    try:
        for rig in rigs:
            rig.start()
        for i in range(presses):
            for rig in rigs if i % 2 == 0 else reversed(rigs):
                rig.press(i, rng.uniform(0.75 * gap, 1.25 * gap))
    finally:
        for rig in rigs:
            rig.stop()
    return {rig.name: rig.presses for rig in rigs}


def bench_commit(workdir: Path, n: int, gap: float, name: str) -> list[float]:
    """The bare durable commit: ``Store.append`` of a weighing-like record in a fresh store,
    one every ``gap`` seconds (0: back to back)."""
    times: list[float] = []
    with Store(workdir / name / "station.db", STATION) as store:
        for i in range(n):
            if gap:
                time.sleep(gap)
            fields: dict[str, Any] = {
                "mono_ns": time.monotonic_ns(),
                "boot_id": "bench",
                "clock_synced": False,
                "visit": "bench-visit",
                "beneficiary": BENEFICIARY,
                "referrer": "001",
                "category": CATEGORY,
                "source": "scale",
                "stable": True,
                "net_mg": mass_mg(i),
                "unit": "kg",
                "scale_id": "mt-sics:1126493049",
                "raw": reply_bytes(mass_mg(i)).decode("ascii"),
            }
            start = time.monotonic()
            store.append("weighing", **fields)
            times.append(time.monotonic() - start)
    return times


def bench_serial(workdir: Path, n: int) -> list[float]:
    """The bare serial exchange: SI and its reply through the simulator's pty at 9600 baud."""
    times: list[float] = []
    sim = ScaleSimulator("mt-sics", baud=BAUD)
    try:
        link = sim.start_pty(workdir / "baseline-scale")
        sim.place(mass_mg(0), settle_s=0.0)
        with serial.Serial(link, BAUD, timeout=1.0) as port:
            for i in range(n):
                port.reset_input_buffer()
                start = time.monotonic()
                port.write(REQUEST)
                reply = port.read_until(b"\r\n")
                times.append(time.monotonic() - start)
                if reply != reply_bytes(mass_mg(0)):
                    raise RuntimeError(f"exchange {i}: unexpected reply {reply!r}")
    finally:
        sim.stop()
    return times


def _ms(seconds: Sequence[float]) -> list[float]:
    return [s * 1000.0 for s in seconds]


def _row(name: str, values_ms: Sequence[float]) -> str:
    cells = [pct(values_ms, p) for p in (50, 90, 99, 100)]
    return f"  {name:<40}" + "".join(f"{c:9.2f}" for c in cells)


def report(
    presses: list[Press],
    baseline: list[Press],
    settings: str,
    commit_s: list[float],
    commit_b2b_s: list[float],
    serial_s: list[float],
    gap: float,
) -> dict[str, Any]:
    n = len(presses)
    reply_len = len(reply_bytes(mass_mg(0)))
    assert all(len(reply_bytes(mass_mg(i))) == reply_len for i in range(n))
    wire = wire_ms(reply_len)
    wire_cr = wire_ms(reply_len - 1)  # CR LF: the station's LineFramer splits at the CR
    request = wire_ms(len(REQUEST))
    latency = _ms([p.latency for p in presses])
    # software overhead: the latency minus the wire time the line still needed after the press
    overhead = _ms([p.latency - p.wire_after_press(wire / 1000.0) for p in presses])
    waits = _ms([max(0.0, p.request_sent - p.t_event) for p in presses])
    own = [x - w for x, w in zip(overhead, waits, strict=True)]
    stages = {
        "press → request sent (0 if in flight)": waits,
        "request sent → reading posted": _ms([p.reading_posted - p.request_sent for p in presses]),
        "reading posted → commit start": _ms([p.commit_start - p.reading_posted for p in presses]),
        "commit (Store.append)": _ms([p.commit_end - p.commit_start for p in presses]),
        "commit end → signalled (t_done)": _ms([p.t_done - p.commit_end for p in presses]),
    }
    in_flight = sum(1 for p in presses if p.in_flight)
    discarded = sum(1 for p in presses if p.readings_discarded)
    print(f"press → committed record, MT-SICS simulator on a pty paced at {BAUD} baud 8N1")
    print(f"  presses: {n}, mean gap between presses {gap:.2f} s; {settings}")
    print(
        f"  wire: reply {reply_len} B = {wire:.2f} ms (paced by the simulator; the line framer "
        f"ends the frame at CR, after {reply_len - 1} B = {wire_cr:.2f} ms); "
        f"request {len(REQUEST)} B = {request:.2f} ms on a real line (not paced here)"
    )
    print(f"  {'ms':<40}{'p50':>9}{'p90':>9}{'p99':>9}{'max':>9}")
    print(_row("latency t_done - t_event", latency))
    print(_row("overhead = latency - wire after press", overhead))
    print(_row("overhead - wait for a request slot", own))
    for name, values in stages.items():
        print(_row("  " + name, values))
    print(
        f"  presses recorded from the exchange in flight (load already settled): {in_flight}/{n};"
        f" presses that waited behind an idle exchange (its reading discarded): {discarded}/{n}"
    )
    behind = sum(1 for p in baseline if p.readings_discarded)
    base_latency = _ms([p.latency for p in baseline])
    print("baselines, same run:")
    print(_row("latency, settled_hold = 0 (polls all along)", base_latency))
    print(f"    presses that waited behind an idle exchange: {behind}/{len(baseline)}")
    print(_row(f"bare commit x{len(commit_s)}, one every {COMMIT_GAP_S:g} s", _ms(commit_s)))
    print(_row(f"bare commit x{len(commit_b2b_s)}, back to back", _ms(commit_b2b_s)))
    print(_row(f"bare serial SI exchange x{len(serial_s)}", _ms(serial_s)))
    return {
        "bench": "press_to_commit",
        "presses": n,
        "gap_s": gap,
        "wire_ms": round(wire, 2),
        "wire_to_cr_ms": round(wire_cr, 2),
        "request_wire_ms": round(request, 2),
        "p50_ms": round(pct(latency, 50), 2),
        "p90_ms": round(pct(latency, 90), 2),
        "p99_ms": round(pct(latency, 99), 2),
        "max_ms": round(max(latency), 2),
        "overhead_p50_ms": round(pct(overhead, 50), 2),
        "overhead_p99_ms": round(pct(overhead, 99), 2),
        "own_overhead_p50_ms": round(pct(own, 50), 2),
        "own_overhead_p99_ms": round(pct(own, 99), 2),
        "in_flight_presses": in_flight,
        "discarded_presses": discarded,
        "baseline_no_hold_p50_ms": round(pct(base_latency, 50), 2),
        "baseline_no_hold_p99_ms": round(pct(base_latency, 99), 2),
        "baseline_no_hold_max_ms": round(max(base_latency), 2),
        "baseline_no_hold_discarded_presses": behind,
        "commit_p50_ms": round(pct(_ms(commit_s), 50), 2),
        "commit_p99_ms": round(pct(_ms(commit_s), 99), 2),
        "commit_b2b_p50_ms": round(pct(_ms(commit_b2b_s), 50), 2),
        "commit_b2b_p99_ms": round(pct(_ms(commit_b2b_s), 99), 2),
        "serial_p50_ms": round(pct(_ms(serial_s), 50), 2),
        "serial_p99_ms": round(pct(_ms(serial_s), 99), 2),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--presses", type=int, default=200, help="presses (default %(default)s)")
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temp dir, removed")
    parser.add_argument("--seed", type=int, default=1, help="press timing seed (default 1)")
    parser.add_argument(
        "--gap", type=float, default=0.2, help="mean seconds between presses (default %(default)s)"
    )
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=SHIPPED_POLL_S,
        help="[scale] poll_interval, s (default: the shipped %(default)s)",
    )
    parser.add_argument(
        "--settled-hold",
        type=float,
        default=None,
        help="[scale] settled_hold, s (default: the shipped one); the baseline runs with 0",
    )
    args = parser.parse_args(argv)
    if args.presses < 1:
        parser.error("--presses must be >= 1")
    temp = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="pesee-bench-")) if temp else args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        shipped = {"poll_interval": args.poll_interval}
        if args.settled_hold is not None:
            shipped["settled_hold"] = args.settled_hold
        baseline = {"poll_interval": args.poll_interval, "settled_hold": 0.0}
        runs = bench_counter(
            workdir,
            args.presses,
            random.Random(args.seed),
            args.gap,
            {"station": shipped, "baseline": baseline},
        )
        commit_s = bench_commit(workdir, args.presses, COMMIT_GAP_S, "baseline-spaced")
        commit_b2b_s = bench_commit(workdir, args.presses, 0.0, "baseline-b2b")
        serial_s = bench_serial(workdir, args.presses)
        hold = "shipped" if args.settled_hold is None else f"{args.settled_hold:g} s"
        settings = f"poll_interval {args.poll_interval:g} s, settled_hold {hold}"
        line = report(
            runs["station"], runs["baseline"], settings, commit_s, commit_b2b_s, serial_s, args.gap
        )
        line["poll_interval_s"] = args.poll_interval
    finally:
        if temp:
            shutil.rmtree(workdir, ignore_errors=True)
    left = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    if left:
        print(f"  threads still alive after clean-up: {left}", file=sys.stderr)
    print(json.dumps(line))
    return 0


if __name__ == "__main__":
    sys.exit(main())
