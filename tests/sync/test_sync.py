"""Station → broker → ledger, for real: a Mosquitto on loopback, the ledger service, the daemon."""

from __future__ import annotations

from pathlib import Path

from ledger.service import LedgerService
from ledger.store import SQLiteLedgerStore
from station.outcomes import Outcome
from station.sim import SimulatedCounter
from station.store import Store
from sync.record import record_hash
from sync.topics import Topics
from sync.wire import Batch, encode
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

    # merged by code over the station's own list: added, renamed, and one retired (issue 13)
    registry = Registry(
        7,
        categories=({"code": "CAT-JOUET", "name": "Jouets"}, {"code": "CAT-VET", "name": "Vêt."}),
        extra={"retired": {"categories": ["CAT-HYG"]}},
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
        c.scan("CAT-VET")
        assert c.next_result().text == "Category: Vêt."
        c.scan("CAT-ALIM")  # the station's own, not in the registry: kept
        assert c.next_result().outcome is Outcome.CATEGORY_SET
        c.scan("CAT-HYG")  # retired by the office
        assert c.next_result().outcome is Outcome.UNKNOWN_CODE


def test_records_beyond_the_physical_bounds_are_quarantined_with_the_reason(
    tmp_path: Path, ledger: LedgerService
) -> None:
    """Issue 15 §4: two records of 2^62 pieces overflowed the ledger's sums. A forged batch with
    valid hashes and chain but a count or a mass no scale gives is quarantined, reason and all;
    nothing of it is stored, and a good batch of the same station still goes in."""
    with Store(tmp_path / "station.db", "st-9") as store:
        for net in (1_000_000, 2_000_000):
            store.append("weighing", stable=True, net_mg=net, pieces=4, unit="kg")
        epoch, rows = store.epoch, [dict(r) for r in store.records()]
    topic = Topics().records("st-9")
    for field, value in (("pieces", 2**62), ("net_mg", 10**12)):
        forged, prev = [], rows[0]["prev_hash"]
        for row in rows:
            f = dict(row, **{field: value}, prev_hash=prev)
            f["hash"] = prev = record_hash(f)
            forged.append(f)
        ledger.handle(topic, encode(Batch("st-9", epoch, tuple(forged))))
    reasons = [q["reason"] for q in ledger.store.quarantined()]
    assert reasons == ["record pieces out of range", "record net_mg out of range"]
    assert list(ledger.store.records("st-9")) == []
    ledger.handle(topic, encode(Batch("st-9", epoch, tuple(rows))))
    assert ledger.store.head("st-9", epoch)[0] == 2
