"""Shared fixtures: a simulated counter on real simulators and mock pins, and config files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from common.i18n import set_language
from station.codes import with_check_digit
from station.sim import EXAMPLE_CONFIG, SimulatedCounter

# PostgreSQL server and the pg_url / ledger_url fixtures (a ledger test on both backends);
# a real Mosquitto and a ledger service on it: the broker / ledger fixtures
pytest_plugins = ["tests.pg", "tests._helpers"]


def beneficiary(n: int = 123456, referrer: str = "001") -> str:
    """A valid beneficiary code of the example config (Luhn check digit)."""
    return "B" + with_check_digit("luhn", f"{referrer}{n:06d}")


@pytest.fixture(autouse=True)
def _english_by_default() -> Iterator[None]:
    # tests assert on English source strings unless they switch language themselves
    set_language("en")
    yield
    set_language("en")


@pytest.fixture
def counter(tmp_path: Path) -> Iterator[SimulatedCounter]:
    with SimulatedCounter(tmp_path, {"station": {"language": "en"}}) as c:
        yield c


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    """The example config, with its directories moved under ``tmp_path``."""
    text = EXAMPLE_CONFIG.read_text(encoding="utf-8")
    text = text.replace('"/var/lib/pesee"', f'"{tmp_path / "data"}"')
    text = text.replace('"/run/pesee"', f'"{tmp_path / "run"}"')
    path = tmp_path / "station.toml"
    path.write_text(text, encoding="utf-8")
    return path
