"""Records and batches the ledger's store cannot take (issue 15 item 6), through a real broker
and the ledger service, on SQLite and PostgreSQL: one rule for text on both stores (a NUL is
refused at validation, with its reason), a batch the database refuses for any other reason is
quarantined with the exact bytes received, and neither stops the ledger for anyone else."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from ledger.config import LedgerConfig
from ledger.service import LedgerService
from ledger.store import SqlLedgerStore, open_store
from station.store import Store
from sync.record import record_hash
from sync.topics import Topics
from sync.wire import Batch, encode
from tests.support.broker import Broker
from tests.support.helpers import until

TOPICS = Topics()


@pytest.fixture
def publisher(broker: Broker) -> Iterator[mqtt.Client]:
    """A plain MQTT v5 client (an older station, or a forged one); publishes wait for PUBACK."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="old-station", protocol=mqtt.MQTTv5)
    client.connect(broker.host, broker.port)
    client.loop_start()
    yield client
    client.disconnect()
    client.loop_stop()


@pytest.fixture
def service(broker: Broker, ledger_url: str) -> Iterator[tuple[LedgerService, SqlLedgerStore]]:
    config = LedgerConfig.model_validate(
        {
            "ledger": {"database": ledger_url, "language": "en"},
            "mqtt": {"host": broker.host, "port": broker.port, "username": None},
        }
    )
    store = open_store(ledger_url)
    ledger = LedgerService(config, store, client_id="ledger-refusals")
    ledger.start()
    try:
        assert ledger.link.connected.wait(10)
        yield ledger, store
    finally:
        ledger.stop()
        store.close()


def _send(client: mqtt.Client, station: str, payloads: list[bytes]) -> None:
    infos = [client.publish(TOPICS.records(station), p, qos=1) for p in payloads]
    for info in infos:
        info.wait_for_publish(10)
        assert info.is_published()


def _journal(path: Path, station: str, n: int, **fields: Any) -> tuple[str, list[dict[str, Any]]]:
    with Store(path, station) as journal:
        for k in range(n):
            journal.append("weighing", net_mg=1000 + k, unit="kg", stable=True, **fields)
        return journal.epoch, [dict(r) for r in journal.records()]


def _encoded(station: str, epoch: str, rows: list[dict[str, Any]]) -> bytes:
    """A batch of journal rows as an older station sent them: written as given, unchecked."""
    forged: tuple[Any, ...] = tuple(rows)
    return encode(Batch(station, epoch, forged))


def _rechain(rows: list[dict[str, Any]], at: int, **change: Any) -> None:
    """Change record ``at`` as an older station could have written it (its hash matching its
    content) and chain the records after it to it."""
    rows[at].update(change)
    for k in range(at, len(rows)):
        if k > at:
            rows[k]["prev_hash"] = rows[k - 1]["hash"]
        rows[k]["hash"] = record_hash(rows[k])


def _kept(store: SqlLedgerStore, station: str) -> list[tuple[str, bytes, int, str]]:
    return [
        (str(r["reason"]), bytes(r["payload"]), int(r["size"]), str(r["sha256"]))
        for r in store.fetch(
            "SELECT reason, payload, size, sha256 FROM quarantine WHERE topic = ? ORDER BY id",
            [TOPICS.records(station)],
        )
    ]


def test_a_nul_in_a_record_is_quarantined_with_its_reason_on_both_stores(
    tmp_path: Path,
    service: tuple[LedgerService, SqlLedgerStore],
    publisher: mqtt.Client,
) -> None:
    """An older station's journal holds a NUL in a category (SQLite stored it, PostgreSQL
    failed with an internal error and the station resent it forever): now the same reason on
    both, the exact bytes kept, the records before it stored and acked, others not held up."""
    ledger, store = service
    epoch, rows = _journal(tmp_path / "old.db", "st-old", 4, category="CAT-VET")
    _rechain(rows, 2, category="CAT\x00VET")
    good = _encoded("st-old", epoch, rows[:2])
    bad = _encoded("st-old", epoch, rows[2:])
    assert b"\\u0000" in bad
    other_epoch, other_rows = _journal(tmp_path / "other.db", "st-other", 2)
    other = _encoded("st-other", other_epoch, other_rows)

    _send(publisher, "st-old", [good, bad, bad])  # the old station resends: kept each time
    _send(publisher, "st-other", [other])
    assert until(lambda: store.head("st-other", other_epoch) == (2, 2))
    digest = hashlib.sha256(bad).hexdigest()
    reason = "record category contains a NUL character"
    assert until(lambda: len(_kept(store, "st-old")) == 2)
    assert _kept(store, "st-old") == [(reason, bad, len(bad), digest)] * 2
    assert store.head("st-old", epoch) == (2, 2)  # what came before the bad record is acked
    assert [r["seq"] for r in store.records("st-old")] == [1, 2]
    assert ledger.alive and not store.conflicts()


def test_a_batch_the_database_refuses_is_quarantined_with_the_bytes_received(
    tmp_path: Path,
    service: tuple[LedgerService, SqlLedgerStore],
    publisher: mqtt.Client,
    ledger_url: str,
) -> None:
    """Valid by every wire rule, refused by the database (here a trigger, standing in for any
    limit of a store): quarantined with the payload as it came, byte for byte (indented JSON:
    a re-encoded copy would differ), and the other station's batch in the same burst stored."""
    ledger, store = service
    if store.dialect == "sqlite":
        store.sql.exec(
            "CREATE TRIGGER refuse_test BEFORE INSERT ON records "
            "WHEN NEW.category = 'CAT-REFUSED' BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )
    else:
        store.sql.exec(
            "CREATE FUNCTION refuse_test() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF NEW.category = 'CAT-REFUSED' THEN RAISE EXCEPTION 'refused'; END IF; "
            "RETURN NEW; END $$"
        )
        store.sql.exec(
            "CREATE TRIGGER refuse_test BEFORE INSERT ON records "
            "FOR EACH ROW EXECUTE FUNCTION refuse_test()"
        )
    epoch, rows = _journal(tmp_path / "x.db", "st-x", 2, category="CAT-REFUSED")
    payload = json.dumps(json.loads(_encoded("st-x", epoch, rows)), indent=2).encode()
    good_epoch, good_rows = _journal(tmp_path / "good.db", "st-good", 3)
    good = _encoded("st-good", good_epoch, good_rows)

    _send(publisher, "st-x", [payload])
    _send(publisher, "st-good", [good])
    assert until(lambda: store.head("st-good", good_epoch) == (3, 3))
    assert until(lambda: len(_kept(store, "st-x")) == 1)
    ((reason, kept, size, digest),) = _kept(store, "st-x")
    assert kept == payload and size == len(payload)
    assert digest == hashlib.sha256(payload).hexdigest()
    assert reason  # the service's word for it ("internal error")
    assert store.head("st-x", epoch) == (0, 0) and not list(store.records("st-x"))
    assert ledger.alive


def test_a_status_with_a_nul_is_refused_alike_on_both_stores(
    service: tuple[LedgerService, SqlLedgerStore], publisher: mqtt.Client
) -> None:
    """A station's status with a NUL in its scale detail: stored on SQLite, an internal error
    on PostgreSQL before; now refused at the door with its reason on both."""
    ledger, store = service
    status = {
        "v": 1,
        "type": "status",
        "station": "st-nul",
        "online": True,
        "session": 1,
        "scale_detail": "ok\x00",
        "ts": "2026-11-21T10:00:00Z",
    }
    payload = json.dumps(status).encode()
    info = publisher.publish(TOPICS.status("st-nul"), payload, qos=1)
    info.wait_for_publish(10)

    def kept() -> list[tuple[str, bytes]]:
        return [
            (str(r["reason"]), bytes(r["payload"]))
            for r in store.fetch(
                "SELECT reason, payload FROM quarantine WHERE topic = ?",
                [TOPICS.status("st-nul")],
            )
        ]

    assert until(lambda: bool(kept()))
    assert kept() == [("status: bad scale_detail", payload)]
    assert "st-nul" not in {r.station for r in store.fleet()} and ledger.alive
