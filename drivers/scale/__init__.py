"""Scale protocols by name: adding a scale is one small codec module plus one line here."""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from types import ModuleType

from .link import ScaleLink
from .protocol import Ack, Command, Reply, ScaleProtocol

__all__ = ["PROTOCOLS", "Ack", "Command", "Reply", "ScaleLink", "ScaleProtocol", "get_protocol"]

# name -> (codec module, attribute): a codec is imported when its name is looked up, so the
# daemon loads the one its config names, not all of them (~0.4 MiB of code, bench/footprint.py)
CODECS: dict[str, tuple[str, str]] = {
    "mt-sics": ("mtsics", "PROTOCOL"),
    "toledo-continuous": ("toledo_continuous", "PROTOCOL"),
    "toledo-8217": ("toledo8217", "PROTOCOL"),
    "sma": ("sma", "PROTOCOL"),
    "nci": ("nci", "PROTOCOL"),
    "a-and-d": ("aandd", "PROTOCOL"),
    "ohaus": ("ohaus", "PROTOCOL"),
    "adam": ("adam", "PROTOCOL"),
    "dini-argeo": ("dini", "PROTOCOL"),
    "dini-argeo-ext": ("dini", "PROTOCOL_EXT"),
    "kern": ("kern", "PROTOCOL"),
    "kern-tm": ("kern", "PROTOCOL_TM"),
    "kern-kcp": ("kern", "PROTOCOL_KCP"),
    "ascii": ("ascii", "PROTOCOL"),
    "hid-pos": ("hidpos", "PROTOCOL"),
}
_MODULES = frozenset(module for module, _attribute in CODECS.values())


class Registry(Mapping[str, ScaleProtocol]):
    """The protocols by name, read-only: names, ``in`` and ``len`` need no import; looking a
    name up imports its codec module (once: Python keeps it); ``items()`` and ``values()``
    import them all."""

    def __init__(self, codecs: Mapping[str, tuple[str, str]]) -> None:
        self._codecs = dict(codecs)

    def __getitem__(self, name: str) -> ScaleProtocol:
        module, attribute = self._codecs[name]
        codec = importlib.import_module(f"{__name__}.{module}")
        protocol: ScaleProtocol = getattr(codec, attribute)
        return protocol

    def __contains__(self, name: object) -> bool:
        return name in self._codecs

    def __iter__(self) -> Iterator[str]:
        return iter(self._codecs)

    def __len__(self) -> int:
        return len(self._codecs)

    def __repr__(self) -> str:
        return f"Registry({list(self._codecs)})"


PROTOCOLS: Mapping[str, ScaleProtocol] = Registry(CODECS)


def get_protocol(name: str) -> ScaleProtocol:
    """The protocol registered under ``name``; ``KeyError`` lists the known names."""
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise KeyError(f"unknown scale protocol {name!r}; known: {', '.join(PROTOCOLS)}") from None


def __getattr__(name: str) -> ModuleType:
    # `drivers.scale.mtsics` after a bare `import drivers.scale`, as when all were imported here
    if name in _MODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
