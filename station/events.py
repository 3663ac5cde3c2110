"""Small frozen events that device threads post to the station's event loop."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from drivers.base import Reading, ScaleError
from drivers.scale import Reply

__all__ = [
    "Acked",
    "ButtonHeld",
    "ButtonPressed",
    "CodeScanned",
    "CodeUnreadable",
    "ConfigChanged",
    "Event",
    "ManualEntry",
    "RegistryReceived",
    "ScaleReplied",
    "ScaleState",
    "ScannerState",
    "Stop",
    "WeightRead",
]


@dataclass(frozen=True, slots=True)
class ButtonPressed:
    t: float  # time.monotonic() when the press was seen


@dataclass(frozen=True, slots=True)
class ButtonHeld:
    t: float


@dataclass(frozen=True, slots=True)
class CodeScanned:
    code: str
    t: float


@dataclass(frozen=True, slots=True)
class CodeUnreadable:
    """The scanner sent something that is not a code (garbled, binary, too long)."""

    detail: str
    t: float


@dataclass(frozen=True, slots=True)
class ScannerState:
    ok: bool
    detail: str


@dataclass(frozen=True, slots=True)
class WeightRead:
    reading: Reading
    t: float  # when the request was sent or the frame arrived


@dataclass(frozen=True, slots=True)
class ScaleState:
    ok: bool
    detail: str


@dataclass(frozen=True, slots=True)
class ScaleReplied:
    token: object
    outcome: Reply | ScaleError


@dataclass(frozen=True, slots=True)
class Acked:
    """The ledger has committed every record up to ``through``."""

    through: int


@dataclass(frozen=True, slots=True)
class RegistryReceived:
    scope: str  # "all" or "station"
    payload: bytes


@dataclass(frozen=True, slots=True)
class ConfigChanged:
    """SIGHUP brought a valid new config (a ``station.config.Config``)."""

    config: Any


@dataclass(frozen=True, slots=True)
class ManualEntry:
    """A technician's hand-entered weighings (a ``station.manual.ManualRequest``, already
    authenticated); the loop records them and calls ``reply`` with the outcome as a dict."""

    request: Any
    reply: Callable[[dict[str, Any]], None]


@dataclass(frozen=True, slots=True)
class Stop:
    reason: str = ""


Event = (
    ButtonPressed
    | ButtonHeld
    | CodeScanned
    | CodeUnreadable
    | ScannerState
    | WeightRead
    | ScaleState
    | ScaleReplied
    | Acked
    | RegistryReceived
    | ConfigChanged
    | ManualEntry
    | Stop
)
