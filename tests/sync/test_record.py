"""The journal record type: validation once, its reasons, the physical bounds, the row, wire and
Mapping forms, compatibility with the batches already sent, and the uploader that types rows."""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from station.store import RecordRefused, Store
from sync.record import (
    BOUNDS,
    KINDS,
    MAX_MG,
    MAX_PIECES,
    MAX_SEQ,
    RECORD_FIELDS,
    Record,
    RecordError,
    canonical,
    check_row,
    genesis_hash,
    record_hash,
)
from sync.uploader import Uploader
from sync.wire import MAX_RECORDS, Batch, WireError, decode_batch, encode, encode_records
from tests.support.helpers import Collector, until

DOCS = Path(__file__).resolve().parents[2] / "docs"
EPOCH = "e9c7ba808aaa42e199f72e3e250ffe7e"
INT64_MAX = 2**63 - 1


def weighing(seq: int = 1, prev_hash: str | None = None, **fields: Any) -> Record:
    content: dict[str, Any] = {
        "seq": seq,
        "uuid": f"40aaaa56-8545-451f-b2c7-{seq % 16**12:012x}",
        "epoch": EPOCH,
        "station": "st-1",
        "kind": "weighing",
        "recorded_at": "2026-03-14T09:11:48.213Z",
        "mono_ns": 81_234_567_890_123,
        "clock_synced": True,
        "category": "CAT-VET",
        "source": "scale",
        "stable": True,
        "net_mg": 1_250_000,
        "unit": "kg",
        "prev_hash": prev_hash or genesis_hash(EPOCH),
        **fields,
    }
    return Record.seal(**content)


def journal_rows(tmp_path: Path) -> tuple[str, list[dict[str, Any]]]:
    """Rows of a real station journal: a visit with a container weighing, pieces and a void."""
    with Store(tmp_path / "station.db", "st-1") as store:
        common: dict[str, Any] = {"visit": "6c2dbfe24dd84f34b287a8b98a5ffc74", "operator": "OP-1"}
        store.append("visit_open", beneficiary="B0011234564", referrer="001", **common)
        store.append(
            "weighing",
            stable=True,
            net_mg=1_250_000,
            tare_mg=450_000,
            unit="kg",
            raw="S S      1.700 kg\\x0d\\x0a",
            data={"container": "BAC-1", "note": "Vêtements d'été"},
            **common,
        )
        store.append(
            "weighing", stable=True, net_mg=3_420_000, pieces=12, unit_weight_mg=285_000, **common
        )
        store.append("void", voids=3, reason="button_hold", **common)
        return store.epoch, [dict(r) for r in store.records()]


def doc_batch() -> dict[str, Any]:
    text = (DOCS / "wire-format.md").read_text(encoding="utf-8")
    blocks = [json.loads(b) for b in re.findall(r"^```json\n(.*?)^```$", text, flags=re.S | re.M)]
    (batch,) = [b for b in blocks if b["type"] == "batch"]
    return batch


# -- the forms of a record ---------------------------------------------------------------------
def test_a_journal_row_is_a_record_and_comes_back_unchanged(tmp_path: Path) -> None:
    _, rows = journal_rows(tmp_path)
    for row in rows:
        record = Record.from_row(row)
        assert record.to_row() == row and list(record.to_row()) == list(RECORD_FIELDS)
        assert record.hash == row["hash"] == record_hash(record)
        # the compact form the outbox gives (nulls left out) is the same record
        compact = {k: v for k, v in row.items() if v is not None}
        assert Record.from_row(compact) == record
        assert record.to_wire() == compact
        assert Record.from_wire(record.to_wire()) == record


def test_seal_computes_the_hash_as_the_station_store_does(tmp_path: Path) -> None:
    epoch, rows = journal_rows(tmp_path)
    container = rows[1]
    content = {k: v for k, v in container.items() if k != "hash"}
    content.update(stable=True, data={"note": "Vêtements d'été", "container": "BAC-1"})
    sealed = Record.seal(**content)
    assert sealed.stable == 1 and type(sealed.stable) is int
    assert sealed.data == container["data"]  # sorted keys, UTF-8
    assert sealed.hash == container["hash"]
    assert rows[0]["prev_hash"] == genesis_hash(epoch)
    with pytest.raises(RecordError, match="hash is computed"):
        Record.seal(**container)


def test_a_record_reads_as_a_read_only_mapping() -> None:
    record = weighing()
    assert record["net_mg"] == record.net_mg == 1_250_000
    assert record.get("gross_mg") is None and record.get("colour", "-") == "-"
    assert "net_mg" in record and "gross_mg" in record and "colour" not in record
    assert list(record) == list(RECORD_FIELDS) and len(record) == 31
    assert dict(record) == record.to_row() == record
    assert dict(record, net_mg=1)["net_mg"] == 1  # a changed copy is a plain dict
    assert record != dict(record, net_mg=1)
    with pytest.raises(KeyError):
        record["colour"]
    with pytest.raises(TypeError):
        record["net_mg"] = 2  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.net_mg = 2  # type: ignore[misc]
    assert not hasattr(record, "__dict__")  # slots
    assert {record, weighing()} == {record}  # hashable, equal records hash alike


# -- one validation, one error type, the wire's reasons ------------------------------------------
REFUSALS: list[tuple[str, dict[str, Any], str]] = [
    ("seq bool", {"seq": True}, "record seq is not an integer"),
    ("seq float", {"seq": 1.0}, "record seq is not an integer"),
    ("seq zero", {"seq": 0}, "record seq out of range"),
    ("seq beyond 2^62", {"seq": MAX_SEQ + 1}, "record seq out of range"),
    ("net string", {"net_mg": "1250"}, "record net_mg is not an integer"),
    ("operator int", {"operator": 12}, "record operator is not a string"),
    ("raw too long", {"raw": "x" * 4097}, "record raw too long"),
    ("lone surrogate", {"reason": "\ud800"}, "record reason is not valid Unicode"),
    ("no uuid", {"uuid": None}, "record lacks uuid"),
    ("bad uuid", {"uuid": "not-a-uuid"}, "record uuid malformed"),
    ("bad station", {"station": "St 1"}, "record station malformed"),
    ("bad epoch", {"epoch": EPOCH.upper()}, "record epoch malformed"),
    ("unknown kind", {"kind": "sale"}, "record kind 'sale' unknown"),
    ("short prev_hash", {"prev_hash": "ab"}, "record hash malformed"),
    ("flag 2", {"stable": 2}, "record stable must be 0 or 1"),
    ("negative mono_ns", {"mono_ns": -1}, "record mono_ns out of range"),
    ("mono_ns beyond int64", {"mono_ns": 2**70}, "record mono_ns out of range"),
    ("void of seq 0", {"voids": 0}, "record voids out of range"),
    ("unknown field", {"colour": "red"}, "record has unknown fields ['colour']"),
    # PostgreSQL's text cannot hold U+0000: one rule for both stores (issue 15 item 6)
    ("NUL in a text", {"category": "CAT\x00VET"}, "record category contains a NUL character"),
    ("NUL in raw", {"raw": "S S \x00 1.250 kg"}, "record raw contains a NUL character"),
    ("NUL and too long", {"raw": "\x00" * 4097}, "record raw too long"),
]


@pytest.mark.parametrize(
    ("change", "reason"), [c[1:] for c in REFUSALS], ids=[c[0] for c in REFUSALS]
)
def test_an_invalid_record_is_refused_with_the_wire_reason(
    change: dict[str, Any], reason: str
) -> None:
    row = {**weighing().to_wire(), **change}
    row["hash"] = "0" * 64  # content checks come before the hash
    with pytest.raises(RecordError) as info:
        Record.from_row(row)
    assert info.value.reason == str(info.value) == reason
    # the same record in a batch: the decoder gives the same reason, as a WireError
    body = json.loads(encode(Batch("st-1", EPOCH, (weighing().to_row(),))))
    body["records"][0] = row
    with pytest.raises(WireError) as wire:
        decode_batch(json.dumps(body).encode())
    assert wire.value.reason == reason
    assert isinstance(wire.value, RecordError)


@pytest.mark.parametrize(
    ("change", "reason"), [c[1:] for c in REFUSALS], ids=[c[0] for c in REFUSALS]
)
def test_check_row_is_every_rule_but_the_hash(change: dict[str, Any], reason: str) -> None:
    """What the uploader checks before sending a journal row: the same reasons as a Record,
    and no hash computed (the store sealed the row; the ledger verifies every hash)."""
    row = {**weighing().to_wire(), **change}
    with pytest.raises(RecordError) as info:
        check_row(row)
    assert info.value.reason == reason
    check_row(dict(weighing().to_wire(), hash="0" * 64))  # a wrong hash is the ledger's to find
    check_row(weighing().to_row())  # null columns are absent ones


def test_a_nul_is_refused_by_the_station_before_anything_is_written(tmp_path: Path) -> None:
    with Store(tmp_path / "station.db", "st-1") as store:
        with pytest.raises(RecordRefused, match="record operator contains a NUL character"):
            store.append("weighing", net_mg=1, operator="OP\x001")
        assert store.last_seq == 0


def test_a_record_whose_hash_is_not_its_content_is_refused() -> None:
    row = dict(weighing().to_row(), net_mg=1)
    with pytest.raises(RecordError, match=r"^record 1 hash does not match its content$"):
        Record.from_row(row)
    with pytest.raises(RecordError, match="record lacks seq"):
        Record.from_wire({})
    with pytest.raises(RecordError, match="record is not an object"):
        Record.from_wire(["seq", 1])


# -- physical bounds (issue 15 §4) ---------------------------------------------------------------
def test_pieces_of_2_62_and_a_weighing_of_10_12_mg_are_refused_with_the_reason() -> None:
    with pytest.raises(RecordError, match=r"^record pieces out of range$"):
        weighing(pieces=2**62)
    with pytest.raises(RecordError, match=r"^record net_mg out of range$"):
        weighing(net_mg=10**12)
    # at the ledger's door: a forged batch with valid hashes is refused by the decoder, which
    # the ledger turns into a quarantine with this reason
    for field, value in (("pieces", 2**62), ("net_mg", 10**12)):
        forged = dict(weighing().to_row(), **{field: value})
        forged["hash"] = record_hash(forged)
        with pytest.raises(WireError) as info:
            decode_batch(encode(Batch("st-1", EPOCH, (forged,))), topic_station="st-1")
        assert info.value.reason == f"record {field} out of range"


def test_the_bounds_are_those_of_real_scales_with_room() -> None:
    edge = weighing(gross_mg=MAX_MG, tare_mg=-MAX_MG, net_mg=-MAX_MG, pieces=MAX_PIECES)
    assert (edge.gross_mg, edge.pieces) == (10_000_000_000, 10_000_000)  # 10 t, ten million
    assert weighing(pieces=-MAX_PIECES, unit_weight_mg=MAX_MG).pieces == -MAX_PIECES
    for field, value in (
        ("gross_mg", MAX_MG + 1),
        ("tare_mg", -MAX_MG - 1),
        ("unit_weight_mg", MAX_MG + 1),
        ("pieces", MAX_PIECES + 1),
        ("pieces", -MAX_PIECES - 1),
    ):
        with pytest.raises(RecordError, match=f"^record {field} out of range$"):
            weighing(**{field: value})
    # every integer field has a bound, and nothing but the integer fields
    assert set(BOUNDS) == {name for name, kind in RECORD_FIELDS.items() if kind is int}


def test_sums_of_bounded_fields_cannot_overflow_a_signed_64_bit_sum() -> None:
    """The arithmetic behind the bounds: SQLite raises on an integer SUM beyond 2^63 - 1
    (PostgreSQL's sum(bigint) is numeric), and the ledger sums net_mg and pieces."""
    largest = max(-low if -low > high else high for low, high in BOUNDS.values())
    assert largest == MAX_SEQ == 2**62  # seq-like fields: never summed
    summed = max(MAX_MG, MAX_PIECES)
    assert summed == MAX_MG == 10**10
    # one batch of MAX_RECORDS records at the bound: 5 000 × 10^10 = 5 × 10^13
    assert MAX_RECORDS * summed == 5 * 10**13 < INT64_MAX
    # a SUM over N records at the bound stays below 2^63 - 1 while N ≤ 922 337 203:
    most = INT64_MAX // summed
    assert most == 922_337_203
    assert most * MAX_MG <= INT64_MAX < (most + 1) * MAX_MG
    # ... that is 184 467 full batches of 5 000 records, all of them 10 t weighings;
    assert most // MAX_RECORDS == 184_467
    # ... a year of 2 500 counters each making a 10 t weighing every 30 s, 8 h a day
    assert most > 2_500 * (8 * 3600 // 30) * 365
    # (real weighings are kilograms: a year of 1 000 counters making 2 000 weighings of 10 kg
    # a day is 7.3 × 10^15 mg, more than 1 000 times below the limit)
    assert INT64_MAX > 1_000 * 2_000 * 365 * 10 * 10**6 * 1_000
    # pieces: 10^7 each, so 922 337 203 685 records before a SUM could overflow
    assert INT64_MAX // MAX_PIECES == 922_337_203_685
    # the worst case of the issue: two records of 2^62 pieces overflowed; now refused
    assert INT64_MAX < 2 * 2**62 and MAX_PIECES < 2**62


def test_the_schema_and_the_docs_give_the_same_bounds() -> None:
    schema = json.loads((DOCS / "wire-format.schema.json").read_text(encoding="utf-8"))
    properties = schema["$defs"]["record"]["properties"]
    for name, (low, high) in BOUNDS.items():
        assert (properties[name]["minimum"], properties[name]["maximum"]) == (low, high), name
    assert properties["kind"]["enum"] == list(KINDS)
    validator = jsonschema.Draft202012Validator(schema)
    body = json.loads(encode(Batch("st-1", EPOCH, (weighing(pieces=MAX_PIECES).to_row(),))))
    validator.validate(body)
    body["records"][0]["pieces"] = MAX_PIECES + 1
    assert not validator.is_valid(body)
    doc = (DOCS / "wire-format.md").read_text(encoding="utf-8")
    assert "10^10" in doc and "10^7" in doc


# -- compatibility: what was sent before decodes and hashes the same -------------------------------
def test_the_documented_batch_decodes_and_re_encodes_byte_for_byte() -> None:
    body = doc_batch()
    for raw in body["records"]:
        record = Record.from_wire(raw)
        assert record.to_wire() == raw and list(record.to_wire()) == list(raw)
        assert canonical(record) == canonical(raw) and record.hash == raw["hash"]
    batch = decode_batch(json.dumps(body).encode(), key=b"demo-station-key")
    sent = {k: v for k, v in body.items() if k != "sig"}
    again = Batch(batch.station, batch.epoch, batch.records, batch.sent_at)
    assert json.loads(encode(again, b"demo-station-key")) == body
    assert json.loads(encode(again)) == sent


def test_orjson_writes_the_canonical_bytes_of_every_code_point() -> None:
    """The record hash is frozen with wire v1: the fast encoder must give the standard
    encoder's bytes (ensure_ascii=False, compact) for every character a record may hold."""
    standard = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
    points = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    for k in range(0, len(points), 4096):
        text = "".join(map(chr, points[k : k + 4096]))
        content = {"a": text, "b": None, "c": -(2**62), "d": 2**62, "e": ""}
        assert orjson.dumps(content) == standard.encode(content).encode()


@given(
    st.dictionaries(
        st.sampled_from(sorted(RECORD_FIELDS)),
        st.text() | st.integers(-(2**63), 2**63 - 1) | st.none(),
    )
)
def test_canonical_is_the_standard_encoding_of_any_mapping(content: dict[str, Any]) -> None:
    get = content.get
    expected = json.dumps(
        {k: get(k) for k in sorted(RECORD_FIELDS) if k != "hash"},
        separators=(",", ":"),
        ensure_ascii=False,
    )
    try:
        assert canonical(content) == expected.encode()
    except UnicodeEncodeError:  # a lone surrogate: no canonical bytes, on either encoder
        with pytest.raises(UnicodeEncodeError):
            expected.encode()


def test_encode_records_fills_a_batch_to_max_bytes_and_encodes_as_encode_does(
    tmp_path: Path,
) -> None:
    epoch, rows = journal_rows(tmp_path)
    compact = [{k: v for k, v in r.items() if v is not None} for r in rows]
    for key in (b"", b"k" * 16):
        whole, n = encode_records("st-1", epoch, compact, sent_at="t", key=key)
        assert n == len(rows)
        as_rows: tuple[Any, ...] = tuple(rows)  # plain rows: encode's standard path
        assert whole == encode(Batch("st-1", epoch, as_rows, "t"), key)
        sizes = [
            len(encode_records("st-1", epoch, compact[:k], sent_at="t", key=key)[0])
            for k in range(1, len(rows) + 1)
        ]
        for limit in range(sizes[0] - 1, sizes[-1] + 2):
            payload, n = encode_records(
                "st-1", epoch, compact, sent_at="t", key=key, max_bytes=limit
            )
            # as many records as fit (one at least), and what fits is the exact batch of them
            fitting = sum(1 for size in sizes if size <= limit)
            assert (
                n == max(1, fitting)
                and payload == encode_records("st-1", epoch, compact[:n], sent_at="t", key=key)[0]
            )
            assert decode_batch(payload, key=key or None).last_seq == n


def test_a_batch_of_records_encodes_as_the_rows_did(tmp_path: Path) -> None:
    epoch, rows = journal_rows(tmp_path)
    records = [Record.from_row(r) for r in rows]
    as_rows = Batch("st-1", epoch, tuple(rows), "t")
    for batch in (
        Batch("st-1", epoch, tuple(records), "t"),  # Records, as the uploader will send
        Batch("st-1", epoch, tuple(r.to_row() for r in records), "t"),
    ):
        assert encode(batch) == encode(as_rows)
        assert encode(batch, b"k" * 16) == encode(as_rows, b"k" * 16)


# -- any valid record ------------------------------------------------------------------------------
def bounded(name: str) -> st.SearchStrategy[Any]:
    if RECORD_FIELDS[name] is int:
        low, high = BOUNDS[name]
        return st.integers(low, high)
    # any text but NUL (PostgreSQL's text cannot hold it: refused on both stores)
    return st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=20)


optional = sorted(
    set(RECORD_FIELDS)
    - {"seq", "uuid", "epoch", "station", "kind", "recorded_at", "prev_hash", "hash"}
)


@given(
    st.integers(1, MAX_SEQ), st.sampled_from(KINDS), st.sets(st.sampled_from(optional)), st.data()
)
def test_any_valid_record_round_trips_every_form(
    seq: int, kind: str, names: set[str], data: st.DataObject
) -> None:
    fields = {name: data.draw(bounded(name), label=name) for name in sorted(names)}
    record = weighing(seq, kind=kind, **{**dict.fromkeys(optional), **fields})
    assert Record.from_wire(json.loads(json.dumps(record.to_wire()))) == record
    assert Record.from_row(record.to_row()) == record
    assert record.hash == record_hash(record.to_wire())
    decoded = decode_batch(encode(Batch("st-1", EPOCH, (record.to_row(),))))
    assert decoded.records == (record,)


# -- the uploader types the journal's rows ---------------------------------------------------------
class RowsOutbox:
    """An Outbox over rows held in memory (the journal's rows as its reader gives them)."""

    def __init__(self, station: str, epoch: str, rows: Sequence[Mapping[str, Any]]) -> None:
        self.station, self.epoch, self.rows = station, epoch, list(rows)
        self.reads = 0

    def last_seq(self) -> int:
        return int(self.rows[-1]["seq"])

    def read(self, after: int, limit: int) -> list[Mapping[str, Any]]:
        self.reads += 1
        return [r for r in self.rows if r["seq"] > after][:limit]


def test_the_uploader_sends_records_up_to_a_row_that_is_not_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A journal row out of bounds (written by an older version, or edited) would get its whole
    batch quarantined: the records before it are sent, it is not, and the log says why once."""
    epoch, rows = journal_rows(tmp_path)
    bad = dict(rows[2], pieces=2**62)
    bad["hash"] = record_hash(bad)  # a consistent row, the chain goes on from it
    rows[2] = bad
    rows[3] = dict(rows[3], prev_hash=bad["hash"])
    rows[3]["hash"] = record_hash(rows[3])
    outbox = RowsOutbox("st-1", epoch, rows)
    sent = Collector()
    acked: list[int] = []
    uploader = Uploader(outbox, sent, "t", acked_through=0, on_acked=acked.append)
    with caplog.at_level(logging.ERROR, logger="sync.uploader"):
        uploader.start()
        try:
            uploader.connected(True)
            assert until(lambda: bool(sent.payloads) and outbox.reads >= 5)
            state = uploader.state()
        finally:
            uploader.stop()
    batches = [decode_batch(p) for p in sent.payloads]
    assert {(b.first_seq, b.last_seq) for b in batches} == {(1, 2)}
    assert all(isinstance(r, Mapping) for b in batches for r in b.records)
    assert state.refused == "seq 3: record pieces out of range"
    assert state.sent_through == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors == ["the journal cannot be sent from seq 3: record pieces out of range"]
