"""Crash-test child: drives presses on a SimulatedCounter, prints ``GREEN <seq>`` once green lit."""

from __future__ import annotations

import queue
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from station.codes import with_check_digit
from station.outcomes import Outcome, Result
from station.sim import SimulatedCounter

SETUP_TIMEOUT_S = 3.0  # per attempt, for a scan to be answered
SETUP_ATTEMPTS = 4
PRESS_TIMEOUT_S = 10.0  # stable_wait is 3 s: a press is always answered well before this
MIN_MASS_G = 50  # above the 20 g minimum weight
MASS_SPAN_G = 9_000  # below the 15 kg capacity


def _log(message: str) -> None:
    print(f"crash_child: {message}", file=sys.stderr, flush=True)


def _rose(pin: Any) -> bool:
    """True when ``pin`` went high since its last ``clear_states()`` (states[0]: the state then)."""
    return any(state.state for state in list(pin.states)[1:])


def _scan_until(counter: SimulatedCounter, code: str, expected: Outcome) -> None:
    """Scan ``code`` until the station answers ``expected`` (the first scan can race the open)."""
    for _attempt in range(SETUP_ATTEMPTS):
        counter.scan(code)
        deadline = time.monotonic() + SETUP_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                result = counter.next_result(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if result.outcome is expected:
                return
            _log(f"scan {code}: unexpected {result.outcome.value}")
    raise TimeoutError(f"scan {code}: no {expected.value} after {SETUP_ATTEMPTS} attempts")


def _press_once(counter: SimulatedCounter, green: Any) -> Result:
    """Press, then wait (bounded) for the Result and, if it is a record, for green's rising edge."""
    counter.drain()
    green.clear_states()
    counter.press()
    deadline = time.monotonic() + PRESS_TIMEOUT_S
    result: Result | None = None
    while time.monotonic() < deadline:
        if result is None:
            try:
                result = counter.next_result(timeout=0.002)
            except queue.Empty:
                continue
        if not result.ok:
            return result  # a refusal: red, nothing recorded, nothing promised
        if _rose(green):
            return result
        time.sleep(0.001)
    what = "no result" if result is None else f"{result.outcome.value} but green never lit"
    raise TimeoutError(f"press: {what} within {PRESS_TIMEOUT_S} s")


def main(argv: list[str]) -> int:
    if len(argv) not in (3, 4):
        print("usage: crash_child.py WORKDIR N [SEED]", file=sys.stderr)
        return 64
    workdir, presses = Path(argv[1]), int(argv[2])
    seed = int(argv[3]) if len(argv) == 4 else 0
    beneficiary = "B" + with_check_digit("luhn", f"001{(123_456 + seed) % 1_000_000:06d}")
    counter = SimulatedCounter(workdir, {"station": {"language": "en"}})
    # SIGTERM, as systemd stops the service: finish the press under way, then stop cleanly
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_a: stopping.set())
    try:
        counter.start()
        print("READY", flush=True)
        _scan_until(counter, beneficiary, Outcome.VISIT_OPENED)
        _scan_until(counter, "CAT-VET", Outcome.CATEGORY_SET)
        green = counter.pin("green")
        for i in range(presses):
            if stopping.is_set():
                print("STOPPED", flush=True)
                break
            # a distinct mass each time: the same stable weight twice is refused as SAME_ITEM
            grams = MIN_MASS_G + (seed * 977 + i * 13) % MASS_SPAN_G
            counter.scale.place(grams * 1000, settle_s=0.01 * (i % 3))
            result = _press_once(counter, green)
            if result.outcome is Outcome.RECORDED and result.seq is not None:
                print(f"GREEN {result.seq}", flush=True)
            else:
                _log(f"press {i}: {result.outcome.value} ({result.text})")
        print("DONE", flush=True)
    finally:
        counter.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
