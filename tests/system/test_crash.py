"""Crash consistency: SIGKILL or SIGTERM the station mid-burst; every green press is kept."""

from __future__ import annotations

import importlib.util
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from station.sim import EXAMPLE_CONFIG
from station.store import Store

CHILD = Path(__file__).with_name("crash_child.py")
REPO = Path(__file__).resolve().parents[2]
SEED = 20261121
MIN_TOTAL_GREEN = 200
LINE_TIMEOUT_S = 30.0  # bound on waiting for the child's next line (start-up included)
CLEAN_RUN_TIMEOUT_S = 180.0
WAIT_TIMEOUT_S = 10.0


@dataclass
class Run:
    """What one child printed, and how it ended."""

    greens: list[int] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    returncode: int | None = None
    stderr: str = ""

    @property
    def done(self) -> bool:
        return "DONE" in self.lines


class Child:
    """``crash_child.py`` in its own process, its stdout read line by line by a thread."""

    def __init__(self, workdir: Path, presses: int, seed: int, stderr_path: Path) -> None:
        self.stderr_path = stderr_path
        self._stderr = stderr_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, str(CHILD), str(workdir), str(presses), str(seed)],
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            cwd=REPO,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.run = Run()
        self._reader = threading.Thread(target=self._read, name="crash-child-stdout", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.lines.put(raw.decode("ascii", "replace").strip())
        self.lines.put(None)  # EOF

    def _take(self, line: str) -> None:
        self.run.lines.append(line)
        if line.startswith("GREEN "):
            self.run.greens.append(int(line.split()[1]))

    def read_until(self, greens: int, timeout: float) -> None:
        """Read lines until ``greens`` GREEN lines, EOF or ``timeout`` (not an error)."""
        deadline = time.monotonic() + timeout
        while len(self.run.greens) < greens:
            try:
                line = self.lines.get(
                    timeout=max(0.0, min(LINE_TIMEOUT_S, deadline - time.monotonic()))
                )
            except queue.Empty:
                return
            if line is None:
                self.lines.put(None)
                return
            self._take(line)

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)

    def finish(self) -> Run:
        """Wait for the process (killing it if needed) and collect every line it printed."""
        try:
            self.proc.wait(timeout=WAIT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.kill()
            self.proc.wait(timeout=WAIT_TIMEOUT_S)
        self._reader.join(WAIT_TIMEOUT_S)
        while True:  # lines printed before death still count: each was a promise to staff
            try:
                line = self.lines.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                self._take(line)
        self._stderr.close()
        self.run.returncode = self.proc.returncode
        self.run.stderr = self.stderr_path.read_text(errors="replace")[-4000:]
        return self.run


def _cli_config(workdir: Path) -> Path:
    text = EXAMPLE_CONFIG.read_text(encoding="utf-8")
    text = text.replace('"/var/lib/pesee"', f'"{workdir / "data"}"')
    text = text.replace('"/run/pesee"', f'"{workdir / "run"}"')
    path = workdir / "station.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _station_cmd() -> list[str]:
    if importlib.util.find_spec("station.__main__") is not None:
        return [sys.executable, "-m", "station"]
    return [sys.executable, "-c", "from station.cli import main; main()"]


def _check_store(workdir: Path, promised: set[int], where: str) -> int:
    """The journal is intact and holds every promised record; returns its last seq."""
    path = workdir / "data" / "station.db"
    if not path.exists():
        assert not promised, f"{where}: green was shown but there is no store"
        return 0
    with Store(path, "ressourcerie-nord-1", create=False) as store:
        report = store.verify()
        assert report.ok, f"{where}: {report.problems}"
        seqs = [row["seq"] for row in store.records()]
        assert seqs == list(range(1, store.last_seq + 1)), f"{where}: seq has a gap"
        for seq in sorted(promised):
            row = store.get(seq)
            assert row is not None, f"{where}: GREEN {seq} was shown but is not in the journal"
            assert row["kind"] == "weighing", f"{where}: seq {seq} is a {row['kind']}"
        last = store.last_seq
    config = _cli_config(workdir)
    cli = subprocess.run(
        [*_station_cmd(), "--config", str(config), "db", "verify"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert cli.returncode == 0, f"{where}: station db verify: {cli.stdout}{cli.stderr}"
    return last


def test_sigkill_never_loses_a_green_record(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    workdir = tmp_path / "counter"  # one workdir for every run: each start is a restart
    # (presses, how the run ends): kill after k GREEN lines, kill while starting, or run clean
    plan: list[tuple[str, int]] = [
        ("kill", rng.randint(10, 60)),
        ("kill-start", 0),
        ("kill", rng.randint(10, 60)),
        ("kill", rng.randint(10, 60)),
        ("term", rng.randint(10, 40)),
        ("clean", 0),
    ]
    promised: set[int] = set()
    total_green = 0
    clean_runs = 0
    for index, (how, k) in enumerate(plan):
        where = f"run {index} ({how}{f' after {k}' if k else ''})"
        presses = 80 if how != "clean" else max(60, MIN_TOTAL_GREEN - total_green)
        child = Child(workdir, presses, seed=index, stderr_path=tmp_path / f"child{index}.err")
        try:
            if how == "kill":
                child.read_until(k, timeout=120.0)
                time.sleep(rng.uniform(0.0, 0.03))  # land anywhere in the next press cycle
                child.kill()
            elif how == "term":
                child.read_until(k, timeout=120.0)
                time.sleep(rng.uniform(0.0, 0.03))
                child.proc.send_signal(signal.SIGTERM)
            elif how == "kill-start":
                time.sleep(rng.uniform(0.05, 0.5))  # imports, store open, device start-up (~0.5 s)
                child.kill()
            else:
                child.read_until(presses, timeout=CLEAN_RUN_TIMEOUT_S)
        finally:
            run = child.finish()
        if how == "kill":
            assert len(run.greens) >= k or run.done, f"{where}: only {run.greens}\n{run.stderr}"
        if how == "term":
            assert run.returncode == 0, f"{where}: rc {run.returncode}\n{run.stderr}"
        if how == "clean":
            assert run.returncode == 0 and run.done, f"{where}: rc {run.returncode}\n{run.stderr}"
            assert len(run.greens) == presses, f"{where}: {len(run.greens)} green\n{run.stderr}"
            clean_runs += 1
        else:
            assert run.returncode in (0, -signal.SIGKILL), f"{where}: rc {run.returncode}"
        if how == "term":
            assert run.returncode == 0
        assert len(set(run.greens)) == len(run.greens), f"{where}: a seq shown green twice"
        assert not promised & set(run.greens), f"{where}: a seq reused after restart"
        promised |= set(run.greens)
        total_green += len(run.greens)
        last = _check_store(workdir, promised, where)
        assert not run.greens or max(run.greens) <= last
    assert clean_runs >= 1
    assert total_green >= MIN_TOTAL_GREEN
