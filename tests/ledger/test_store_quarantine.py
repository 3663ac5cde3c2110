"""A batch the store cannot take is quarantined with the exact bytes received (issue 12, issue 15
item 6), on SQLite and PostgreSQL: the service keeps each message's bytes with its decoded batch."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from ledger.config import LedgerConfig
from ledger.service import LedgerService, Message
from ledger.store import open_store
from station.store import Store
from sync.wire import Batch, decode_batch, encode

# a real database condition, not a mock: the records of one station are refused by a trigger
_SQLITE_TRIGGER = (
    "CREATE TRIGGER refuse_st2 BEFORE INSERT ON records WHEN NEW.station = 'st-2' "
    "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
)
_PG_TRIGGER = (
    "CREATE FUNCTION refuse_st2() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "IF NEW.station = 'st-2' THEN RAISE EXCEPTION 'refused by the test'; END IF; "
    "RETURN NEW; END $$",
    "CREATE TRIGGER refuse_st2 BEFORE INSERT ON records FOR EACH ROW EXECUTE FUNCTION refuse_st2()",
)


def _refuse_station_2(url: str) -> None:
    if "://" not in url:
        db = sqlite3.connect(url)
        db.execute(_SQLITE_TRIGGER)
        db.commit()
        db.close()
        return
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        for sql in _PG_TRIGGER:
            conn.execute(sql)


def _payload(path: Path, station: str) -> tuple[str, bytes]:
    """A station's batch of three weighings, as bytes that differ from the ledger's own
    encoding of the decoded batch (indented JSON is valid wire JSON all the same)."""
    with Store(path, station) as store:
        for mass in (1000, 2000, 3000):
            store.append("weighing", net_mg=mass, recorded_at="2026-11-21T10:00:00.000Z")
        epoch, rows = store.epoch, tuple(store.records())
    payload = json.dumps(json.loads(encode(Batch(station, epoch, rows))), indent=2).encode()
    return epoch, payload


def test_a_batch_the_store_cannot_take_is_quarantined_with_the_bytes_received(
    tmp_path: Path, ledger_url: str
) -> None:
    store = open_store(ledger_url)
    _refuse_station_2(ledger_url)
    config = LedgerConfig()
    epoch1, good = _payload(tmp_path / "s1.db", "st-1")
    _epoch2, refused = _payload(tmp_path / "s2.db", "st-2")
    # what the ledger quarantined before: a re-encoded copy, other bytes than those sent
    assert encode(decode_batch(refused)) != refused
    service = LedgerService(config, store)
    # one group: its commit fails, then each batch alone: st-1 stored, st-2 quarantined
    service.handle_group(
        [
            Message(config.topics.records("st-1"), good, False),
            Message(config.topics.records("st-2"), refused, False),
        ]
    )
    assert store.head("st-1", epoch1) == (3, 3)
    assert [(q.topic, q.reason, q.size) for q in store.quarantined()] == [
        (config.topics.records("st-2"), "internal error", len(refused))
    ]
    kept = store.fetch("SELECT payload FROM quarantine")[0]["payload"]
    assert bytes(kept) == refused  # the bytes received, not encode(batch)
    assert service.quarantined == 1
    store.close()
