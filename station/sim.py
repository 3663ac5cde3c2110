"""A simulated counter: the real daemon on scale and scanner simulators and gpiozero mock pins."""

from __future__ import annotations

import queue
import time
import tomllib
from pathlib import Path
from typing import Any

from gpiozero.pins.mock import MockFactory

from drivers.sim.scale import ScaleSimulator
from drivers.sim.scanner import ScannerSimulator

from .config import Config
from .daemon import Daemon
from .outcomes import Result
from .store import Store

__all__ = ["EXAMPLE_CONFIG", "SimulatedCounter", "example_config", "merge_config"]

EXAMPLE_CONFIG = Path(__file__).with_name("station.example.toml")


def merge_config(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_config(out[key], value)
        else:
            out[key] = value
    return out


def example_config(overrides: dict[str, Any] | None = None) -> Config:
    """The shipped example config with ``overrides`` merged in (nested dicts merge)."""
    raw = tomllib.loads(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    return Config.model_validate(merge_config(raw, overrides or {}))


class SimulatedCounter:
    """Everything a counter has, simulated with the real bytes, around the real :class:`Daemon`.

    >>> with SimulatedCounter(tmp_dir) as counter:          # doctest: +SKIP
    ...     counter.scan("B0011234564"); counter.scan("CAT-VET")
    ...     counter.scale.place("1.250"); counter.press()
    ...     counter.next_result().text
    'Enregistré : 1,250 kg Vêtements'
    """

    def __init__(
        self,
        workdir: Path | str,
        overrides: dict[str, Any] | None = None,
        *,
        protocol: str = "mt-sics",
        baud: int | None = None,
        stable_timeout_s: float = 1.0,
    ) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.scale = ScaleSimulator(protocol, baud=baud, stable_timeout_s=stable_timeout_s)
        self.scanner = ScannerSimulator()
        scale_link = self.scale.start_pty(self.workdir / "pesee-scale")
        scanner_link = self.scanner.start_pty(self.workdir / "pesee-scanner")
        base: dict[str, Any] = {
            "station": {
                "data_dir": str(self.workdir / "data"),
                "runtime_dir": str(self.workdir / "run"),
            },
            "scale": {"url": scale_link, "protocol": protocol, "poll_interval": 0.1},
            "scanner": {"url": scanner_link, "dedupe_window": 0.0},
            "panel": {"hold_time": 0.5},
        }
        self.config = example_config(merge_config(base, overrides or {}))
        self.factory = MockFactory()
        self.results: queue.Queue[Result] = queue.Queue()
        self.daemon = Daemon(self.config, pin_factory=self.factory)
        self.daemon.station.listeners.append(self.results.put)
        self.station = self.daemon.station
        # the journal as committed, on this thread's own read-only connection: the loop's
        # connection (daemon.store) belongs to the loop thread alone
        self.store = Store.reader(self.config.store_path)
        self._started = False

    # -- the people at the counter ---------------------------------------------------------
    def start(self, wait_ready: float = 10.0) -> None:
        self.daemon.start()
        self._started = True
        # the station's reader has opened AND configured the port: a code sent earlier could
        # be flushed with the port's stale input
        if not self.daemon.scanner_ready.wait(wait_ready):
            raise TimeoutError("the station did not open the scanner")
        deadline = time.monotonic() + wait_ready
        while not self.station.snapshot.scale_ok:
            if time.monotonic() > deadline:
                raise TimeoutError("the station did not see the scale")
            time.sleep(0.01)

    def pin(self, name: str) -> Any:
        return self.factory.pin(getattr(self.config.panel, name))

    def press(self) -> None:
        """A short press of the big button (pull-up wiring: pressed = low)."""
        button = self.pin("button")
        button.drive_low()
        button.drive_high()

    def hold(self, timeout: float = 5.0) -> None:
        """Hold the button until the station has seen a hold, then release it."""
        button = self.pin("button")
        button.drive_low()
        panel = self.daemon.panel
        deadline = time.monotonic() + timeout
        while not panel.held and time.monotonic() < deadline:
            time.sleep(0.01)
        # no wait needed: once the panel says held, its hold callback fires whatever the release
        button.drive_high()

    def scan(self, code: str) -> None:
        self.scanner.scan(code)

    def next_result(self, timeout: float = 10.0) -> Result:
        """The next outcome the station signalled (raises ``queue.Empty`` after ``timeout``)."""
        return self.results.get(timeout=timeout)

    def drain(self) -> list[Result]:
        out = []
        while True:
            try:
                out.append(self.results.get_nowait())
            except queue.Empty:
                return out

    def stop(self) -> None:
        try:
            if self._started:
                self.daemon.stop()
            else:
                self.daemon._shutdown()
        finally:
            self.store.close()
            self.scanner.stop()
            self.scale.stop()
            self.factory.reset()

    def __enter__(self) -> SimulatedCounter:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
