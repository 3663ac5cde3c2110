"""Batches built from records' wire bytes as the journal keeps them: the same bytes as the
encoder of rows, cut to size and signed the same way, and the uploader that sends them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync.record import MAX_MG, MAX_TEXT, Record, genesis_hash
from sync.uploader import Uploader
from sync.wire import WireError, decode_batch, encode_parts, encode_records
from tests.support.helpers import Collector, until

EPOCH = "e9c7ba808aaa42e199f72e3e250ffe7e"
STATION = "st-1"
FORMS = ("bytes", "record", "compact", "row")

# text as staff and scales write it, and what JSON must escape: quotes, backslashes, controls,
# non-ASCII, U+2028 (any text but NUL, which no ledger database keeps)
texts = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=30)
fields = st.fixed_dictionaries(
    {},
    optional={
        "net_mg": st.integers(-MAX_MG, MAX_MG),
        "tare_mg": st.integers(0, MAX_MG),
        "stable": st.integers(0, 1),
        "pieces": st.integers(0, 10**6),
        "category": texts,
        "visit": texts,
        "raw": texts,
        "data": texts,
        "reason": texts,
    },
)


def chain(contents: list[dict[str, Any]], first: int = 1) -> list[Record]:
    records: list[Record] = []
    prev = genesis_hash(EPOCH)
    for seq, extra in enumerate(contents, first):
        record = Record.seal(
            seq=seq,
            uuid=f"40aaaa56-8545-451f-b2c7-{seq:012x}",
            epoch=EPOCH,
            station=STATION,
            kind="weighing",
            recorded_at="2026-03-14T09:11:48.213Z",
            prev_hash=prev,
            **extra,
        )
        records.append(record)
        prev = record.hash
    return records


def form(record: Record, how: str) -> bytes | Mapping[str, Any]:
    """A record as an outbox may give it: the journal's wire bytes, a Record, the compact row
    the journal reader gives, or a full row with its nulls."""
    if how == "bytes":
        return orjson.dumps(record.to_wire())
    if how == "record":
        return record
    if how == "compact":
        return record.to_wire()
    return record.to_row()


@given(
    st.lists(st.tuples(fields, st.sampled_from(FORMS)), min_size=1, max_size=12),
    st.sampled_from([b"", b"station key"]),
    st.sampled_from([0, 400, 900, 1600, 3000]),
    st.sampled_from(["", "2026-03-14T09:12:00.000+00:00"]),
)
def test_a_mixed_batch_has_the_bytes_of_the_row_encoder(
    drawn: list[tuple[dict[str, Any], str]], key: bytes, max_bytes: int, sent_at: str
) -> None:
    records = chain([f for f, _how in drawn])
    parts = [(r.seq, form(r, how)) for r, (_f, how) in zip(records, drawn, strict=True)]
    rows = [r.to_wire() for r in records]  # as JournalReader.read gives them
    payload, n = encode_parts(STATION, EPOCH, parts, sent_at=sent_at, key=key, max_bytes=max_bytes)
    assert (payload, n) == encode_records(
        STATION, EPOCH, rows, sent_at=sent_at, key=key, max_bytes=max_bytes
    )
    assert n == 1 or not max_bytes or len(payload) <= max_bytes  # always one, even too large
    batch = decode_batch(payload, key=key or None, max_bytes=max(len(payload), 1))
    assert batch.records == tuple(records[:n])
    if key:
        with pytest.raises(WireError, match="bad signature"):
            decode_batch(payload, key=b"another key")


def test_the_bytes_are_put_in_as_they_are() -> None:
    """The encoder does not re-encode what it is given as bytes: the journal's bytes go out as
    the journal keeps them (the ledger verifies every hash)."""
    records = chain([{"net_mg": 1000, "data": '{"note":"Vêtements d\'été"}'}, {"net_mg": 2}])
    kept = orjson.dumps(records[0].to_wire())
    payload, n = encode_parts(STATION, EPOCH, [(1, kept), (2, records[1])])
    assert n == 2 and kept in payload
    with pytest.raises(ValueError, match="at least one record"):
        encode_parts(STATION, EPOCH, [])


def test_a_signed_batch_of_bytes_has_the_row_encoders_signature() -> None:
    """Signing reads the bytes back (the signature covers the body as the ledger reads it):
    the same signature as the row encoder's, on a batch of large non-ASCII records."""
    big = {"raw": "é" * (MAX_TEXT // 4), "category": "CAT-VET"}
    records = chain([big] * 8)
    parts = [(r.seq, orjson.dumps(r.to_wire())) for r in records]
    signed = encode_parts(STATION, EPOCH, parts, key=b"k")
    assert signed == encode_records(STATION, EPOCH, records, key=b"k")
    assert decode_batch(signed[0], key=b"k", max_bytes=len(signed[0])).last_seq == 8


# -- the uploader -----------------------------------------------------------------------------
class MemoryOutbox:
    """Records held in memory, read the old way (``read``: compact rows)."""

    def __init__(self, records: list[Record]) -> None:
        self.station, self.epoch, self.records = STATION, EPOCH, records

    def last_seq(self) -> int:
        return self.records[-1].seq

    def read(self, after: int, limit: int) -> list[Mapping[str, Any]]:
        return [r.to_wire() for r in self.records[after : after + limit]]


class MemoryWireOutbox(MemoryOutbox):
    """The same records as the journal keeps them since schema 2: bytes, but for ``old``
    seqs, written before the journal kept bytes, which come as rows."""

    def __init__(self, records: list[Record], old: set[int]) -> None:
        super().__init__(records)
        self.old = old

    def read(self, after: int, limit: int) -> list[Mapping[str, Any]]:
        raise AssertionError("an outbox with read_wire is read by read_wire")

    def read_wire(self, after: int, limit: int) -> list[tuple[int, bytes | Mapping[str, Any]]]:
        return [
            (r.seq, r.to_wire() if r.seq in self.old else orjson.dumps(r.to_wire()))
            for r in self.records[after : after + limit]
        ]


def _sent(outbox: MemoryOutbox, key: bytes = b"") -> list[bytes]:
    sent = Collector()
    uploader = Uploader(
        outbox,
        sent,
        "t",
        acked_through=0,
        on_acked=lambda _n: None,
        max_records=4,
        window=100,
        max_bytes=1500,
        key=key,
    )
    uploader.start()
    try:
        uploader.connected(True)
        assert until(lambda: uploader.state().sent_through == outbox.last_seq())
    finally:
        uploader.stop()
    return sent.payloads


def _without_time(payload: bytes) -> bytes:
    return re.sub(rb'"sent_at":"[^"]*"', b'"sent_at":""', payload)


def test_the_uploader_sends_the_journals_bytes_as_the_old_path_would() -> None:
    records = chain([{"net_mg": 1000 * i, "raw": "S S " + "x" * (i * 40)} for i in range(1, 15)])
    old = set(range(1, 6))  # written before the upgrade
    new_way = _sent(MemoryWireOutbox(records, old))
    old_way = _sent(MemoryOutbox(records))
    assert list(map(_without_time, new_way)) == list(map(_without_time, old_way))
    assert len(new_way) > 3  # cut by records and by bytes
    signed = _sent(MemoryWireOutbox(records, old), key=b"k")
    batches = [decode_batch(p, key=b"k") for p in signed]
    assert [r for b in batches for r in b.records] == records
