"""The ledger service's two stages (issue 18): a decode thread checks each batch while the
ingest thread stores the ones before it. Through a real broker: every batch stored once and
acked, a refused one quarantined with its bytes and reason by the worker, and the ledger going
on for the batches after it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from ledger.service import LedgerService, Message
from station.store import Store
from sync.wire import Batch, Record, decode_ack, encode, record_hash
from tests.support.broker import Broker
from tests.support.helpers import until

STATION = "st-stages"


@pytest.fixture
def station_client(broker: Broker) -> Iterator[mqtt.Client]:
    """A plain MQTT v5 client publishing as the station; each publish waits for its PUBACK."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=STATION, protocol=mqtt.MQTTv5)
    client.connect(broker.host, broker.port)
    client.loop_start()
    yield client
    client.disconnect()
    client.loop_stop()


def _journal(path: Path, n: int) -> tuple[str, list[Record]]:
    with Store(path, STATION) as store:
        for i in range(n):
            store.append("weighing", net_mg=1000 + i, recorded_at="2026-11-21T10:00:00.000Z")
        return store.epoch, [Record.from_row(r) for r in store.records()]


def test_batches_go_through_both_stages_and_a_refused_one_is_quarantined(
    tmp_path: Path, ledger: LedgerService, station_client: mqtt.Client
) -> None:
    epoch, rows = _journal(tmp_path / "station.db", 60)
    topic = ledger.topics.records(STATION)
    payloads = [encode(Batch(STATION, epoch, tuple(rows[i : i + 5]))) for i in range(0, 60, 5)]
    # the sixth batch forged on the way: a record's content changed, its hash kept
    body = json.loads(payloads[5])
    body["records"][0]["net_mg"] += 1
    forged = json.dumps(body).encode()
    for payload in (*payloads[:5], forged, *payloads[6:]):
        station_client.publish(topic, payload, qos=1).wait_for_publish(10)
    store = ledger.store
    # everything before the forged batch acked; after it, held beyond the gap
    assert until(lambda: store.head(STATION, epoch) == (25, 60))
    assert [(q.topic, q.reason, q.size) for q in store.quarantined()] == [
        (topic, "record 26 hash does not match its content", len(forged))
    ]
    # the station sends the batch again, as it was: the ledger goes on through the gap
    station_client.publish(topic, payloads[5], qos=1).wait_for_publish(10)
    assert until(lambda: store.head(STATION, epoch) == (60, 60))
    stored = store.fetch("SELECT seq, hash FROM records WHERE station = ? ORDER BY seq", (STATION,))
    assert [(r["seq"], r["hash"]) for r in stored] == [(r["seq"], r["hash"]) for r in rows]
    assert ledger.alive and ledger.quarantined == 1 and ledger.conflicts == 0


def test_stop_ends_both_stages(ledger: LedgerService) -> None:
    assert ledger.alive
    ledger.stop()
    assert not ledger.alive


def test_a_group_is_acked_once_per_head_with_every_batch_said(
    tmp_path: Path, ledger: LedgerService, broker: Broker
) -> None:
    epoch, rows = _journal(tmp_path / "station.db", 30)
    topic = ledger.topics.records(STATION)
    payloads = [encode(Batch(STATION, epoch, tuple(rows[i : i + 10]))) for i in range(0, 30, 10)]
    # a second copy of the first batch, one record's content other (its hash its own)
    row = dict(rows[0])
    row["net_mg"] += 1
    row["hash"] = record_hash(row)
    other = encode(Batch(STATION, epoch, (Record.from_row(row),)))
    heard: list[tuple[str, bytes]] = []
    listener = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="ack-listener")
    subscribed: list[int] = []
    listener.on_message = lambda _c, _u, m: heard.append((m.topic, bytes(m.payload)))
    listener.on_subscribe = lambda _c, _u, mid, *_: subscribed.append(mid)
    listener.connect(broker.host, broker.port)
    listener.loop_start()
    listener.subscribe([(ledger.topics.ack(STATION), 1), ("test/sentinel", 1)])
    try:
        assert until(lambda: bool(subscribed))  # the SUBACK: no ack can be missed now
        before = ledger.batches
        ledger.handle_group([Message(topic, p, False) for p in (*payloads, other)])
        # the ledger's next message on the same connection comes after its acks
        ledger.link.publish("test/sentinel", b"end")
        assert until(lambda: ("test/sentinel", b"end") in heard)
    finally:
        listener.loop_stop()
        listener.disconnect()
    acks = [decode_ack(p) for t, p in heard if t == ledger.topics.ack(STATION)]
    assert len(acks) == 1 and acks[0].acked_through == 30
    assert acks[0].rejects == ({"reason": "seq 1: same key, other content"},)
    assert ledger.batches - before == 4 and ledger.conflicts == 1


def test_the_ingest_says_when_it_last_stored_a_batch(tmp_path: Path, ledger: LedgerService) -> None:
    """What `ledger run`'s digest keeper waits on (ledger/digest_keeper.py): when batches were
    last stored, "now" (inf) while a store is under way however long it takes (here another
    writer holds the database), and never for a status alone or a refused batch."""
    import math
    import sqlite3
    import threading
    import time

    epoch, rows = _journal(tmp_path / "station.db", 4)
    assert ledger.last_batch_at == 0.0
    status = Message(ledger.topics.status(STATION), b'{"station": "x"}', False)
    refused = Message(ledger.topics.records(STATION), b"{not json", False)
    ledger.handle_group([status, refused])
    assert ledger.last_batch_at == 0.0
    payload = encode(Batch(STATION, epoch, tuple(rows)))
    other = sqlite3.connect(tmp_path / "ledger.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # the ingest waits for this writer
    message = Message(ledger.topics.records(STATION), payload, False)
    storing = threading.Thread(target=ledger.handle_group, args=([message],))
    storing.start()
    try:
        assert until(lambda: ledger.last_batch_at == math.inf)
        time.sleep(0.1)
        assert ledger.last_batch_at == math.inf  # still storing: no lull
    finally:
        other.execute("COMMIT")
        storing.join(30)
        other.close()
    assert not storing.is_alive()
    assert 0 < ledger.last_batch_at <= time.monotonic()
    assert ledger.store.head(STATION, epoch) == (4, 4)
