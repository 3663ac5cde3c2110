"""A simulated counter speaking English, and the two moves most tests make with it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from station.outcomes import Result
from station.sim import SimulatedCounter, merge_config


def english_counter(path: Path, overrides: dict[str, Any] | None = None) -> SimulatedCounter:
    """A counter speaking English, so assertions read the source strings."""
    return SimulatedCounter(path, merge_config({"station": {"language": "en"}}, overrides or {}))


def weigh(c: SimulatedCounter, mass: str, settle_s: float = 0.05) -> Result:
    """Put ``mass`` on the simulated scale, press, and return the station's result."""
    c.scale.place(mass, settle_s=settle_s)
    c.press()
    return c.next_result()


def weighings(c: SimulatedCounter) -> list[dict[str, object]]:
    return [r for r in c.store.records() if r["kind"] == "weighing"]
