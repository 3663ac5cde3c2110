"""The decode process: it judges as decode_batch does, what it accepts is stored as decoded
batches are (the same rows, the same conflicts), and a dead, stuck or signalled child never
loses a batch."""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.decoder import DecoderGone, DecoderProcess
from ledger.service import LedgerService, Message
from ledger.store import open_store
from sync.record import Record as WireRecord
from sync.wire import Batch, BatchRows, WireError, decode_batch, encode
from tests.support.helpers import until
from tests.support.ledger_dataset import network

KEY = b"a station key of 16+ bytes"
MAX = 256_000


@pytest.fixture
def child() -> Iterator[DecoderProcess]:
    process = DecoderProcess(MAX, timeout=1.0, respawn_after=0.0)
    process.start()
    yield process
    process.stop()


def _payloads() -> list[tuple[str, bytes, bytes | None]]:
    """(topic station, payload, key): accepted ones, and every kind of refusal."""
    journal = network(seed=5, persons=20, visits_per_station=10).journals[0]
    records = tuple(map(WireRecord.from_row, journal.records[:12]))
    batch = Batch(journal.station, journal.epoch, records)
    good = encode(batch)
    body = json.loads(good)
    body["records"][3]["net_mg"] = (body["records"][3].get("net_mg") or 0) + 1
    forged = json.dumps(body).encode()
    row = dict(records[0])
    row["hash"] = "0" * 64
    station = journal.station
    return [
        (station, good, None),
        (station, encode(batch, KEY), KEY),
        (station, encode(batch, b"another key, 16+ bytes"), KEY),
        (station, good, KEY),
        (station, forged, None),
        ("st-other", good, None),
        (station, b"{not json", None),
        (station, good[:-3], None),
        (station, json.dumps({**json.loads(good), "v": 9}).encode(), None),
        # a lone surrogate as the signature (JSON's escape): once a crash of the child
        (station, json.dumps({**json.loads(encode(batch, KEY)), "sig": "\ud800"}).encode(), KEY),
        (station, b"x" * (MAX + 1), None),
    ]


def _said(verdict: BatchRows | str) -> str:
    """The child's verdict as decode_batch's: "" accepted, else the reason."""
    return "" if isinstance(verdict, BatchRows) else verdict


def _reason(station: str, payload: bytes, key: bytes | None) -> str:
    try:
        decode_batch(payload, topic_station=station, key=key, max_bytes=MAX)
    except WireError as exc:
        return exc.reason
    return ""


def test_the_child_judges_every_batch_as_decode_batch_does(child: DecoderProcess) -> None:
    cases = _payloads()
    pid = child.pid
    verdicts = [child.judge(payload, station, key) for station, payload, key in cases]
    assert child.pid == pid and child.running  # no batch ended it
    said = list(map(_said, verdicts))
    assert said == [_reason(*case) for case in cases]
    assert said[:2] == ["", ""] and all(said[2:])
    for (station, payload, key), verdict in zip(cases[:2], verdicts[:2], strict=True):
        batch = decode_batch(payload, topic_station=station, key=key)
        assert isinstance(verdict, BatchRows)
        assert (verdict.station, verdict.epoch, verdict.sent_at) == (
            batch.station,
            batch.epoch,
            batch.sent_at,
        )
        assert list(verdict.rows) == batch.rows


def test_what_the_child_accepts_is_stored_as_a_decoded_batch(
    tmp_path: Path, ledger_url: str, child: DecoderProcess
) -> None:
    dataset = network(seed=6, persons=40, visits_per_station=30)  # voids, tags, clock repairs
    payloads, forged = [], []
    for journal in dataset.journals:
        for i in range(0, len(journal.records), 50):
            chunk = tuple(map(WireRecord.from_row, journal.records[i : i + 50]))
            payloads.append((journal.station, encode(Batch(journal.station, journal.epoch, chunk))))
            forged.append((journal.station, _other_content(journal.station, journal.epoch, chunk)))
    fast, decoded = open_store(ledger_url), open_store(str(tmp_path / "decoded.db"))
    for station, payload in payloads + forged:
        accepted = child.judge(payload, station, None)
        assert isinstance(accepted, BatchRows)
        assert fast.ingest(accepted) == decoded.ingest(decode_batch(payload))
    columns = "station, epoch, seq, uuid, kind, hash, net_mg, data, raw, occurred_at, voided_by"
    rows = [
        sorted(tuple(map(str, r)) for r in s.sql.exec(f"SELECT {columns} FROM records"))
        for s in (fast, decoded)
    ]
    assert rows[0] == rows[1] and len(rows[0]) == len(dataset.records)
    # a conflict keeps the refused record in the same words whichever way it was decoded
    kept = [
        sorted(s.sql.exec("SELECT station, epoch, seq, kind, new_hash, record FROM conflicts"))
        for s in (fast, decoded)
    ]
    assert kept[0] == kept[1] and len(kept[0]) >= len(dataset.records) // 2


def _other_content(station: str, epoch: str, chunk: tuple[WireRecord, ...]) -> bytes:
    """The same seqs sent again with other content: each record sealed again and chained to
    the one before, so the batch is valid and every record a conflict."""
    records, prev = [], chunk[0]["prev_hash"]
    for record in chunk:
        content = {**record.to_row(), "operator": "op-x", "prev_hash": prev}
        del content["hash"]
        resealed = WireRecord.seal(**content)
        records.append(resealed)
        prev = resealed["hash"]
    return encode(Batch(station, epoch, tuple(records)))


def test_a_payload_only_the_reference_parser_reads_is_accepted_with_its_rows(
    child: DecoderProcess,
) -> None:
    station, good, _key = _payloads()[0]
    # UTF-16, which the standard decoder reads and orjson does not
    utf16 = json.dumps(json.loads(good)).encode("utf-16")
    accepted = child.judge(utf16, station, None)
    assert isinstance(accepted, BatchRows)
    assert list(accepted.rows) == decode_batch(utf16, topic_station=station).rows


def _gone(pid: int) -> bool:
    return not os.path.exists(f"/proc/{pid}")


def test_a_dead_or_stuck_child_is_replaced(child: DecoderProcess) -> None:
    station, payload, _key = _payloads()[0]
    first = child.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)  # died between two batches
    assert until(lambda: not child.running)
    assert _said(child.judge(payload, station, None)) == ""  # a new child judged it
    second = child.pid
    assert second not in (None, first)
    assert second is not None
    os.kill(second, signal.SIGSTOP)  # stuck: no answer within the timeout
    big = _big_payload()  # more than a pipe holds: the write itself must not block for ever
    outcome: list[object] = []

    def ask() -> None:
        try:
            outcome.append(child.judge(big, station, None))
        except DecoderGone as exc:
            outcome.append(exc)

    asking = threading.Thread(target=ask)
    asking.start()
    asking.join(60)
    assert not asking.is_alive() and isinstance(outcome[0], DecoderGone)
    assert until(lambda: _gone(second))  # killed and reaped
    assert _said(child.judge(big, station, None)) == "" and child.pid not in (None, second)


def _big_payload() -> bytes:
    journal = network(seed=9, persons=30, visits_per_station=40).journals[0]
    records = tuple(map(WireRecord.from_row, journal.records[:200]))
    payload = encode(Batch(journal.station, journal.epoch, records))
    assert 65_536 < len(payload) <= MAX, len(payload)
    return payload


def test_no_batch_makes_the_ledger_start_processes_in_a_loop() -> None:
    station, payload, _key = _payloads()[0]
    # a reason that quotes 40,000 characters the station sent (its cut once broke a
    # character in two, which read as a dead child, replaced for every such message)
    hostile = json.dumps({**json.loads(payload), "v": "é" * 40_000}).encode()
    process = DecoderProcess(MAX, timeout=5.0, respawn_after=3600.0)
    process.start()
    try:
        first = process.pid
        reasons = [process.judge(hostile, station, None) for _ in range(5)]
        assert all(_said(r).startswith("unsupported version 'ééé") for r in reasons)
        assert process.pid == first and process.running
        assert first is not None
        os.kill(first, signal.SIGKILL)
        assert until(lambda: not process.running)
        # dead, and started less than respawn_after ago: no new process, the caller decodes
        for _ in range(3):
            with pytest.raises(DecoderGone, match="too recently"):
                process.judge(payload, station, None)
        assert process.pid is None
    finally:
        process.stop()


def test_a_stop_signal_does_not_end_the_child_before_the_ledger(child: DecoderProcess) -> None:
    station, payload, _key = _payloads()[0]
    assert _said(child.judge(payload, station, None)) == ""  # started: its signals set
    pid = child.pid
    assert pid is not None
    os.kill(pid, signal.SIGTERM)  # what systemd sends the whole service at stop
    os.kill(pid, signal.SIGINT)
    assert _said(child.judge(payload, station, None)) == "" and child.pid == pid
    child.stop()
    assert not child.running and until(lambda: not os.path.exists(f"/proc/{pid}"))


def test_the_service_stores_every_batch_when_its_child_dies(
    tmp_path: Path, ledger: LedgerService
) -> None:
    journal = network(seed=8, persons=20, visits_per_station=10).journals[0]
    records = tuple(map(WireRecord.from_row, journal.records[:40]))
    topic = ledger.topics.records(journal.station)
    payloads = [
        encode(Batch(journal.station, journal.epoch, records[i : i + 10])) for i in (0, 10, 20, 30)
    ]
    assert ledger.checker.running
    ledger.checker.respawn_after = 0.0
    ledger.handle_group([Message(topic, payloads[0], False)])
    pid = ledger.checker.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)  # while the ledger is idle: the next batch finds it dead
    assert until(lambda: not ledger.checker.running)
    ledger.handle_group([Message(topic, payloads[1], False)])
    assert ledger.checker.running and ledger.checker.pid != pid  # started again for it
    pid = ledger.checker.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)  # in the middle: that batch is decoded on the thread
    ledger.handle_group([Message(topic, p, False) for p in payloads[2:]])
    assert ledger.store.head(journal.station, journal.epoch) == (40, 40)
    assert ledger.quarantined == 0
    # a forged batch is refused by the new child, as it would have been by the first
    body = json.loads(payloads[0])
    body["records"][0]["net_mg"] = (body["records"][0].get("net_mg") or 0) + 1
    ledger.handle_group([Message(topic, json.dumps(body).encode(), False)])
    assert ledger.quarantined == 1
    ledger.stop()
    assert not ledger.checker.running
