"""The scale protocol registry: every codec by name, each imported only when its name is asked."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import pytest

import drivers.scale
from drivers.scale import CODECS, PROTOCOLS, ScaleProtocol, get_protocol

# the order the registry always listed them in (messages and `station scale list` show it)
NAMES = [
    "mt-sics",
    "toledo-continuous",
    "toledo-8217",
    "sma",
    "nci",
    "a-and-d",
    "ohaus",
    "adam",
    "dini-argeo",
    "dini-argeo-ext",
    "kern",
    "kern-tm",
    "kern-kcp",
    "ascii",
    "hid-pos",
]
NOT_CODECS = {"_fields", "capture", "link", "probe", "protocol", "worker"}


def _loaded_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return {m for m in json.loads(out.splitlines()[-1]) if m.startswith("drivers.scale.")}


def test_every_name_is_listed_in_order_and_is_its_protocols_own() -> None:
    assert list(PROTOCOLS) == NAMES
    assert len(PROTOCOLS) == len(NAMES)
    for name, protocol in PROTOCOLS.items():
        assert isinstance(protocol, ScaleProtocol)
        assert protocol.name == name
        assert get_protocol(name) is protocol is PROTOCOLS[name]
        assert name in PROTOCOLS


def test_every_codec_module_is_registered() -> None:
    """A new codec module in drivers/scale/ that is not in the table would be unreachable."""
    modules = {m.name for m in pkgutil.iter_modules(drivers.scale.__path__)} - NOT_CODECS
    assert modules == {module for module, _attribute in CODECS.values()}


def test_unknown_names_are_refused_as_before() -> None:
    assert "nope" not in PROTOCOLS
    assert PROTOCOLS.get("nope") is None
    with pytest.raises(KeyError):
        PROTOCOLS["nope"]
    with pytest.raises(KeyError, match="unknown scale protocol 'nope'; known: mt-sics, "):
        get_protocol("nope")


def test_codec_modules_stay_reachable_as_attributes() -> None:
    from drivers.scale import mtsics

    assert drivers.scale.mtsics is mtsics
    assert drivers.scale.kern.PROTOCOL_TM is PROTOCOLS["kern-tm"]
    with pytest.raises(AttributeError):
        _ = drivers.scale.nothing_here


def test_a_lookup_imports_only_its_codec() -> None:
    """Listing names loads no codec; asking for one loads its module (and what it imports)."""
    codecs = {f"drivers.scale.{module}" for module, _attribute in CODECS.values()}
    listed = _loaded_after(
        "from drivers.scale import PROTOCOLS\nassert 'nci' in PROTOCOLS and len(list(PROTOCOLS))"
    )
    assert not listed & codecs
    one = _loaded_after("from drivers.scale import PROTOCOLS\nPROTOCOLS['nci']")
    assert one & codecs == {"drivers.scale.nci"}
    every = _loaded_after("from drivers.scale import PROTOCOLS\ndict(PROTOCOLS.items())")
    assert codecs <= every
