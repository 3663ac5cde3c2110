"""Scale protocols by name: adding a scale is one small codec module plus one line here."""

from __future__ import annotations

from . import (
    aandd,
    adam,
    ascii,
    dini,
    hidpos,
    kern,
    mtsics,
    nci,
    ohaus,
    sma,
    toledo8217,
    toledo_continuous,
)
from .link import ScaleLink
from .protocol import Ack, Command, Reply, ScaleProtocol

__all__ = ["PROTOCOLS", "Ack", "Command", "Reply", "ScaleLink", "ScaleProtocol", "get_protocol"]

PROTOCOLS: dict[str, ScaleProtocol] = {
    p.name: p
    for p in (
        mtsics.PROTOCOL,
        toledo_continuous.PROTOCOL,
        toledo8217.PROTOCOL,
        sma.PROTOCOL,
        nci.PROTOCOL,
        aandd.PROTOCOL,
        ohaus.PROTOCOL,
        adam.PROTOCOL,
        dini.PROTOCOL,
        dini.PROTOCOL_EXT,
        kern.PROTOCOL,
        kern.PROTOCOL_TM,
        kern.PROTOCOL_KCP,
        ascii.PROTOCOL,
        hidpos.PROTOCOL,
    )
}


def get_protocol(name: str) -> ScaleProtocol:
    """The protocol registered under ``name``; ``KeyError`` lists the known names."""
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise KeyError(f"unknown scale protocol {name!r}; known: {', '.join(PROTOCOLS)}") from None
