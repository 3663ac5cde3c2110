"""Station → broker → ledger, for real: a Mosquitto on loopback, the ledger service, the daemon."""

from __future__ import annotations

from pathlib import Path

from ledger.service import LedgerService
from ledger.store import SQLiteLedgerStore
from station.outcomes import Outcome
from station.sim import SimulatedCounter
from tests.support.broker import Broker
from tests.support.helpers import beneficiary, until


def _sync(broker: Broker) -> dict[str, object]:
    return {"sync": {"host": broker.host, "port": broker.port, "resend_after": 2}}


def _session(c: SimulatedCounter, masses: list[str]) -> None:
    c.scan(beneficiary(31))
    assert c.next_result().outcome is Outcome.VISIT_OPENED
    c.scan("CAT-VET")
    c.next_result()
    for mass in masses:
        c.scale.place(mass, settle_s=0.02)
        c.press()
        assert c.next_result().outcome is Outcome.RECORDED


def test_records_reach_the_ledger_once_and_the_station_learns_it(
    tmp_path: Path, broker: Broker, ledger: LedgerService
) -> None:
    with SimulatedCounter(tmp_path / "st", {"station": {"language": "en"}, **_sync(broker)}) as c:
        _session(c, ["1.000", "2.500", "0.750"])
        last = c.store.last_seq
        assert until(lambda: c.store.synced_through == last)
        store = ledger.store
        assert isinstance(store, SQLiteLedgerStore)
        rows = list(store.records("ressourcerie-nord-1"))
        assert [r["seq"] for r in rows] == list(range(1, last + 1))
        local = {r["seq"]: r["hash"] for r in c.store.records()}
        assert {r["seq"]: r["hash"] for r in rows} == local  # the same chain, byte for byte
        assert store.head("ressourcerie-nord-1", c.store.epoch) == (last, last)
        # the fleet knows the station from its retained status
        assert until(lambda: any(f["online"] == 1 for f in store.fleet()))


def test_offline_presses_are_sent_when_the_broker_comes_back(
    tmp_path: Path, broker: Broker, ledger: LedgerService
) -> None:
    with SimulatedCounter(tmp_path / "st", {"station": {"language": "en"}, **_sync(broker)}) as c:
        _session(c, ["1.000"])
        assert until(lambda: c.store.synced_through == c.store.last_seq)
        broker.stop()
        c.scale.place("0", settle_s=0.02)
        for mass in ("1.100", "1.200", "1.300"):
            c.scale.place(mass, settle_s=0.02)
            c.press()
            assert c.next_result().outcome is Outcome.RECORDED  # recording never waits for sync
        assert c.store.synced_through < c.store.last_seq
        broker.restart()
        assert until(lambda: c.store.synced_through == c.store.last_seq, timeout=30)
        assert ledger.store.head("ressourcerie-nord-1", c.store.epoch)[0] == c.store.last_seq


def test_registry_push_changes_the_categories_and_survives_a_restart(
    tmp_path: Path, broker: Broker, ledger: LedgerService
) -> None:
    from sync.wire import Registry

    registry = Registry(
        7,
        categories=({"code": "CAT-JOUET", "name": "Jouets"}, {"code": "CAT-VET", "name": "Vêt."}),
    )
    ledger.store.set_registry(registry)
    ledger.publish_registry(registry)
    overrides = {"station": {"language": "en"}, **_sync(broker)}
    with SimulatedCounter(tmp_path / "st", overrides) as c:
        assert until(lambda: c.station.registry is not None and c.station.registry.applied)
        c.scan("CAT-JOUET")
        assert c.next_result().text == "Category: Jouets"
    broker.stop()  # no network: the station starts with the lists it kept
    with SimulatedCounter(tmp_path / "st", overrides) as c:
        c.scan("CAT-JOUET")
        assert c.next_result().outcome is Outcome.CATEGORY_SET
        c.scan("CAT-HYG")  # gone from the office's list
        assert c.next_result().outcome is Outcome.UNKNOWN_CODE
