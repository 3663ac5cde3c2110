"""Shared fixtures and the tiers: markers set from where a test lives and what it uses."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from common.i18n import set_language
from station.sim import EXAMPLE_CONFIG, SimulatedCounter

# a real PostgreSQL (pg_server / pg_url / ledger_url), a real Mosquitto and a ledger service on it
# (broker / ledger), headless Chromium (browser): each defined once, in tests/support
pytest_plugins = ["tests.support.pg", "tests.support.helpers", "tests.support.browser"]

# Hypothesis' own clocks (a 200 ms deadline per example, the "too slow" check of data
# generation) fail property tests on a loaded machine for reasons that are not the code's:
# tests never assert on wall-clock time, so neither do the properties
settings.register_profile("pesee", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("pesee")

TIERS = Path(__file__).parent
# fixtures that bring a real server with them, and the marker each sets
_SERVER_FIXTURES = {
    "broker": "broker",
    "ledger": "broker",
    "browser": "browser",
    "pg_server": "pg",
    "pg_url": "pg",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``system`` for tests/system/; ``broker``, ``browser``, ``pg`` for the servers a test uses
    (a ``ledger_url`` test on PostgreSQL is ``pg``); explicit markers are kept."""
    for item in items:
        path = Path(str(item.fspath))
        if (TIERS / "system") in path.parents:
            item.add_marker(pytest.mark.system)
        names = set(getattr(item, "fixturenames", ()))
        for fixture, marker in _SERVER_FIXTURES.items():
            if fixture in names:
                item.add_marker(getattr(pytest.mark, marker))
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("ledger_url") == "postgresql":
            item.add_marker(pytest.mark.pg)


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
