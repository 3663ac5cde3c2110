"""Wire format v1: pure encode, decode and validation of the station–ledger messages."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any

import orjson

from .record import (
    EPOCH_ID,
    KINDS,
    MAX_MG,
    MAX_SEQ,
    RECORD_FIELDS,
    STATION_ID,
    Record,
    RecordError,
    batch_records,
    batch_rows,
    canonical,
    field_values,
    genesis_hash,
    record_hash,
)

__all__ = [
    "KINDS",
    "MAX_BATCH_BYTES",
    "MAX_MG",
    "MAX_RECORDS",
    "RECORD_FIELDS",
    "VERSION",
    "Ack",
    "Batch",
    "BatchRows",
    "LedgerStatus",
    "Record",
    "Registry",
    "StationStatus",
    "WireError",
    "canonical",
    "decode_ack",
    "decode_batch",
    "decode_batch_rows",
    "decode_ledger_status",
    "decode_registry",
    "decode_status",
    "encode",
    "encode_parts",
    "encode_records",
    "genesis_hash",
    "record_hash",
    "sign",
]

VERSION = 1
MAX_BATCH_BYTES = 256 * 1024  # below Mosquitto's usual max_packet_size in our example config
MAX_RECORDS = 5000

_REGISTRY_MEMBERS = {"v", "type", "version", "categories", "referrers", "beneficiary_patterns"}


class WireError(RecordError):
    """A message that does not follow the wire format; ``reason`` is short and stable.

    A :class:`RecordError` raised by a record of a batch reaches the caller as a WireError with
    the same reason: one family of errors, one list of reasons (docs/wire-format.md §7)."""


def sign(key: bytes, body: bytes) -> str:
    """HMAC-SHA256 (hex) of a batch body, for stations that sign their batches."""
    return hmac.new(key, body, hashlib.sha256).hexdigest()


# -- messages ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Batch:
    """Records ``first_seq..last_seq`` of one store (``station``, ``epoch``), in seq order."""

    station: str
    epoch: str
    # Records once decoded. The encoder writes a Record through to_wire() and a plain mapping
    # as given, unchecked (tests forge batches with it; the decoder is the judge).
    records: tuple[Record, ...]
    sent_at: str = ""

    @property
    def rows(self) -> list[tuple[Any, ...]]:
        """Each record's fields in table order (``RECORD_FIELDS``): what the ledger inserts."""
        return [field_values(r) for r in self.records]

    @property
    def first_seq(self) -> int:
        return int(self.records[0]["seq"])

    @property
    def last_seq(self) -> int:
        return int(self.records[-1]["seq"])


@dataclass(frozen=True, slots=True)
class BatchRows:
    """A batch :func:`decode_batch_rows` accepted: each record as its row (every field in
    ``RECORD_FIELDS`` order, absent ones None), what the ledger inserts."""

    station: str
    epoch: str
    rows: tuple[tuple[Any, ...], ...]
    sent_at: str = ""


@dataclass(frozen=True, slots=True)
class Ack:
    """The ledger's word: every record of ``epoch`` up to ``acked_through`` is committed."""

    station: str
    epoch: str
    acked_through: int
    rejects: tuple[dict[str, Any], ...] = ()
    ts: str = ""
    # highest seq the ledger holds for this epoch: above acked_through means a gap to fill
    received_through: int = 0


@dataclass(frozen=True, slots=True)
class StationStatus:
    station: str
    online: bool
    session: int
    version: str = ""
    epoch: str = ""
    last_seq: int = 0
    synced_through: int = 0
    backlog: int = 0
    last_sync: str | None = None
    last_record_at: str | None = None
    clock_synced: bool | None = None
    scale_ok: bool | None = None
    scale_detail: str = ""
    scale_rejected_frames: int = 0
    calibration_age_days: float | None = None
    ts: str = ""


@dataclass(frozen=True, slots=True)
class LedgerStatus:
    online: bool
    ts: str = ""


@dataclass(frozen=True, slots=True)
class Registry:
    """What the office publishes to stations: categories, referring structures, code patterns."""

    version: int
    categories: tuple[dict[str, str], ...] = ()
    referrers: tuple[dict[str, str], ...] = ()
    beneficiary_patterns: tuple[dict[str, Any], ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


def encode(
    message: Batch | Ack | StationStatus | LedgerStatus | Registry, key: bytes = b""
) -> bytes:
    """Serialise a message as the UTF-8 JSON that goes on the wire (batches signed if ``key``)."""
    if isinstance(message, Batch):
        if not message.records:
            raise ValueError("a batch needs at least one record")
        if all(type(r) is Record for r in message.records):
            # checked records: the fast encoder writes the same bytes (tests/sync/test_wire.py)
            payload, _n = encode_records(
                message.station, message.epoch, message.records, sent_at=message.sent_at, key=key
            )
            return payload
        body: dict[str, Any] = {
            "v": VERSION,
            "type": "batch",
            "station": message.station,
            "epoch": message.epoch,
            "first_seq": message.first_seq,
            "last_seq": message.last_seq,
            "sent_at": message.sent_at,
            "records": [_compact(r) for r in message.records],
        }
        if key:
            body["sig"] = sign(key, _signed_part(body))
    elif isinstance(message, Ack):
        body = {
            "v": VERSION,
            "type": "ack",
            "station": message.station,
            "epoch": message.epoch,
            "acked_through": message.acked_through,
            "received_through": max(message.received_through, message.acked_through),
            "rejects": list(message.rejects),
            "ts": message.ts,
        }
    elif isinstance(message, StationStatus):
        body = {"v": VERSION, "type": "status"}
        body.update({k: getattr(message, k) for k in StationStatus.__slots__})
    elif isinstance(message, LedgerStatus):
        body = {"v": VERSION, "type": "ledger_status", "online": message.online, "ts": message.ts}
    else:
        reserved = set(message.extra) & _REGISTRY_MEMBERS
        if reserved:
            raise ValueError(f"registry extras may not use {sorted(reserved)}")
        body = {
            **message.extra,
            "v": VERSION,
            "type": "registry",
            "version": message.version,
            "categories": list(message.categories),
            "referrers": list(message.referrers),
            "beneficiary_patterns": list(message.beneficiary_patterns),
        }
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def encode_records(
    station: str,
    epoch: str,
    records: Sequence[Mapping[str, Any]],
    *,
    sent_at: str = "",
    key: bytes = b"",
    max_bytes: int = 0,
) -> tuple[bytes, int]:
    """A batch of the first of ``records`` (consecutive, checked: Records or journal rows that
    passed :func:`sync.record.check_row`) that fit in ``max_bytes`` (0: all of them; always at
    least one), and how many it carries. The same bytes as :func:`encode` of a Batch of them;
    each record is encoded once, so cutting a batch to size costs no second encoding."""
    if not records:
        raise ValueError("a batch needs at least one record")
    wire = [r.to_wire() if type(r) is Record else _compact_row(r) for r in records]
    parts = [orjson.dumps(r) for r in wire]
    first = int(wire[0]["seq"])
    n = _fitting(station, epoch, first, parts, sent_at, key, max_bytes)
    head = _head(station, epoch, first, int(wire[n - 1]["seq"]), sent_at)
    return _batch(head, parts[:n], wire[:n], key), n


def encode_parts(
    station: str,
    epoch: str,
    parts: Sequence[tuple[int, bytes | Mapping[str, Any]]],
    *,
    sent_at: str = "",
    key: bytes = b"",
    max_bytes: int = 0,
) -> tuple[bytes, int]:
    """:func:`encode_records` of records given as (seq, the bytes a batch carries for it: a
    record's ``orjson.dumps(to_wire())``, as the station journal keeps it) or (seq, a record
    or checked row, encoded here as by encode_records): the same batch, to the byte, for the
    same records. The bytes are put in as they are (the ledger verifies every hash)."""
    if not parts:
        raise ValueError("a batch needs at least one record")
    encoded = [p if type(p) is bytes else _encoded(p) for _seq, p in parts]
    n = _fitting(station, epoch, parts[0][0], encoded, sent_at, key, max_bytes)
    head = _head(station, epoch, parts[0][0], parts[n - 1][0], sent_at)
    return _batch(head, encoded[:n], None, key), n


def _encoded(record: bytes | Mapping[str, Any]) -> bytes:
    if isinstance(record, Record):
        return orjson.dumps(record.to_wire())
    if isinstance(record, Mapping):
        return orjson.dumps(_compact_row(record))
    return record


def _fitting(
    station: str,
    epoch: str,
    first: int,
    parts: Sequence[bytes],
    sent_at: str,
    key: bytes,
    max_bytes: int,
) -> int:
    """How many of the encoded records fit in ``max_bytes`` (0: all; always at least one)."""
    n = len(parts)
    if not max_bytes:
        return n
    # the envelope with the widest last seq, ',"records":[' and a signature's 73 bytes
    fixed = len(_head(station, epoch, first, first + n - 1, sent_at)) + 12 + 73 * bool(key)
    sizes = accumulate(len(p) + 1 for p in parts)  # each with its comma (the last: "]")
    return max(1, sum(1 for total in sizes if fixed + total <= max_bytes))


def _batch(
    head: bytes, parts: Sequence[bytes], wire: Sequence[Mapping[str, Any]] | None, key: bytes
) -> bytes:
    """The batch of the encoded records under ``head``; ``wire``: the same records as dicts
    (None: read back from the bytes, only to sign them)."""
    records = b"[" + b",".join(parts) + b"]"
    body = head[:-1] + b',"records":' + records
    if key:
        if wire is None:
            wire = orjson.loads(records)
        signed = _signed_part(
            {**orjson.loads(head), "records": wire}  # the body as the ledger will read it
        )
        body += b',"sig":"' + sign(key, signed).encode() + b'"'
    return body + b"}"


def _head(station: str, epoch: str, first: int, last: int, sent_at: str) -> bytes:
    return orjson.dumps(
        {
            "v": VERSION,
            "type": "batch",
            "station": station,
            "epoch": epoch,
            "first_seq": first,
            "last_seq": last,
            "sent_at": sent_at,
        }
    )


def _compact_row(row: Mapping[str, Any]) -> Mapping[str, Any]:
    # the journal reader's rows are compact dicts already (absent means null)
    if type(row) is not dict or None in row.values():
        return {k: v for k, v in row.items() if v is not None}
    return row


def _compact(record: Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(record, Record):
        return record.to_wire()
    # a plain mapping is written as given, unchecked: the decoder is the judge
    return {k: v for k, v in record.items() if v is not None and k in RECORD_FIELDS}


def _signed_part(body: Mapping[str, Any]) -> bytes:
    return json.dumps(
        {k: v for k, v in body.items() if k != "sig"}, sort_keys=True, separators=(",", ":")
    ).encode()


# -- decoding ----------------------------------------------------------------------------------
def _load(payload: bytes, kind: str, max_bytes: int) -> dict[str, Any]:
    if len(payload) > max_bytes:
        raise WireError(f"too large ({len(payload)} bytes > {max_bytes})")
    try:
        body = json.loads(payload, parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise WireError("not JSON") from None
    if not isinstance(body, dict):
        raise WireError("not a JSON object")
    version = body.get("v")
    if type(version) is not int or version != VERSION:  # True == 1 == 1.0 in Python
        raise WireError(f"unsupported version {version!r}")
    if body.get("type") != kind:
        raise WireError(f"expected type {kind!r}, got {body.get('type')!r}")
    return body


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # NaN and Infinity are Python's, not JSON's


def _str(body: Mapping[str, Any], key: str, pattern: re.Pattern[str] | None = None) -> str:
    value = body.get(key)
    if not isinstance(value, str) or (pattern is not None and not pattern.match(value)):
        raise WireError(f"bad {key}")
    return value


def _int(body: Mapping[str, Any], key: str, low: int = 0, high: int = MAX_SEQ) -> int:
    value = body.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise WireError(f"bad {key}")
    return value


def _opt_str(body: Mapping[str, Any], key: str) -> str:
    value = body.get(key)
    return value if isinstance(value, str) else ""


def _record(raw: Any, station: str, epoch: str) -> Record:
    try:
        record = Record.from_wire(raw)
    except RecordError as exc:
        raise WireError(exc.reason) from None
    if record.station != station or record.epoch != epoch:
        raise WireError("record station/epoch differ from the batch's")
    return record


def decode_batch(
    payload: bytes,
    *,
    topic_station: str | None = None,
    key: bytes | None = None,
    max_bytes: int = MAX_BATCH_BYTES,
) -> Batch:
    """Validate a batch; raises :class:`WireError` with the reason it must be quarantined.

    Checks types and bounds of every field, that the records are consecutive and chained, that
    each record's hash matches its content, that the station is the topic's, and the HMAC when a
    ``key`` is given.

    A batch goes through one fast pass (orjson, the records checked and hashed as they are
    built); whatever that pass does not accept whole is judged again by the reference decoder
    (the standard json module, field by field), which gives the reason. So the fast pass only
    ever saves time: what is accepted and why something is refused are the reference's.
    """
    fast = _fast_pass(payload, topic_station, key, max_bytes, batch_records)
    if fast is not None:
        station, epoch, records, sent_at = fast
        return Batch(station, epoch, tuple(records), sent_at)
    return _reference_batch(payload, topic_station, key, max_bytes)


def decode_batch_rows(
    payload: bytes,
    *,
    topic_station: str | None = None,
    key: bytes | None = None,
    max_bytes: int = MAX_BATCH_BYTES,
) -> BatchRows:
    """:func:`decode_batch`'s judgement, the same checks and reasons, the records given as
    rows without building a Record each (what the ledger's decode process sends on)."""
    fast = _fast_pass(payload, topic_station, key, max_bytes, batch_rows)
    if fast is not None:
        station, epoch, rows, sent_at = fast
        return BatchRows(station, epoch, tuple(rows), sent_at)
    batch = _reference_batch(payload, topic_station, key, max_bytes)
    return BatchRows(batch.station, batch.epoch, tuple(batch.rows), batch.sent_at)


def _fast_pass(
    payload: bytes,
    topic_station: str | None,
    key: bytes | None,
    max_bytes: int,
    checked: Callable[[list[Any], str, str, int], list[Any] | None],
) -> tuple[str, str, list[Any], str] | None:
    """The size bound, then the fast pass: (station, epoch, ``checked`` records, sent_at)
    when every check holds, else None (the reference decoder then says why)."""
    if len(payload) > max_bytes:
        raise WireError(f"too large ({len(payload)} bytes > {max_bytes})")
    head = _fast_head(payload, topic_station, key)
    if head is None:
        return None
    station, epoch, first, raw, sent_at = head
    items = checked(raw, station, epoch, first)
    return None if items is None else (station, epoch, items, sent_at)


def _fast_head(
    payload: bytes, topic_station: str | None, key: bytes | None
) -> tuple[str, str, int, list[Any], str] | None:
    """(station, epoch, first seq, the records' JSON objects, sent_at) when the batch's own
    fields and signature hold, else None (the reference decoder then says why)."""
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    if type(body) is not dict or type(body.get("v")) is not int or body["v"] != VERSION:
        return None
    station, epoch = body.get("station"), body.get("epoch")
    first, last, raw = body.get("first_seq"), body.get("last_seq"), body.get("records")
    if not (
        body.get("type") == "batch"
        and type(station) is str
        and STATION_ID.match(station)
        and (topic_station is None or station == topic_station)
        and type(epoch) is str
        and EPOCH_ID.match(epoch)
        and type(first) is int
        and type(last) is int
        and 1 <= first <= last <= MAX_SEQ
        and type(raw) is list
        and 0 < len(raw) <= MAX_RECORDS
        and last - first + 1 == len(raw)
    ):
        return None
    if key:
        sig = body.get("sig")
        expected = sign(key, _signed_part(body)).encode()
        # a lone surrogate (JSON's "\ud800") has no UTF-8 form: not a signature either
        if not isinstance(sig, str) or not sig.isascii() or not _same(sig, expected):
            return None
    sent_at = body.get("sent_at")
    return station, epoch, first, raw, sent_at if type(sent_at) is str else ""


def _reference_batch(
    payload: bytes, topic_station: str | None, key: bytes | None, max_bytes: int
) -> Batch:
    """The decoder of record: the standard json module, every check in order with its reason."""
    body = _load(payload, "batch", max_bytes)
    station = _str(body, "station", STATION_ID)
    if topic_station is not None and station != topic_station:
        raise WireError(f"station {station!r} published under {topic_station!r}")
    epoch = _str(body, "epoch", EPOCH_ID)
    if key:
        sig = body.get("sig")
        expected = sign(key, _signed_part(body)).encode()
        # a lone surrogate (JSON's "\ud800") has no UTF-8 form: not a signature either
        if not isinstance(sig, str) or not sig.isascii() or not _same(sig, expected):
            raise WireError("bad signature")
    first = _int(body, "first_seq", 1)
    last = _int(body, "last_seq", 1)
    raw_records = body.get("records")
    if not isinstance(raw_records, list) or not raw_records:
        raise WireError("no records")
    if len(raw_records) > MAX_RECORDS or last - first + 1 != len(raw_records):
        raise WireError("record count does not match first_seq..last_seq")
    records = tuple(_record(r, station, epoch) for r in raw_records)
    for i, record in enumerate(records):
        if record["seq"] != first + i:
            raise WireError("records not consecutive")
        if i and record["prev_hash"] != records[i - 1]["hash"]:
            raise WireError(f"record {record['seq']} not chained to the previous one")
    return Batch(station, epoch, records, _opt_str(body, "sent_at"))


def _same(sig: str, expected: bytes) -> bool:
    """``sig`` (ASCII) equals the expected signature, compared in constant time."""
    return hmac.compare_digest(sig.encode(), expected)


def decode_ack(payload: bytes) -> Ack:
    body = _load(payload, "ack", 64 * 1024)
    rejects = body.get("rejects", [])
    if not isinstance(rejects, list) or not all(isinstance(r, dict) for r in rejects):
        raise WireError("bad rejects")
    return Ack(
        _str(body, "station", STATION_ID),
        _str(body, "epoch", EPOCH_ID),
        _int(body, "acked_through"),
        tuple(rejects),
        _opt_str(body, "ts"),
        _int(body, "received_through") if "received_through" in body else 0,
    )


_STATUS_TYPES: dict[str, tuple[type, ...]] = {
    "version": (str,),
    "epoch": (str,),
    "last_seq": (int,),
    "synced_through": (int,),
    "backlog": (int,),
    "last_sync": (str, type(None)),
    "last_record_at": (str, type(None)),
    "clock_synced": (bool, type(None)),
    "scale_ok": (bool, type(None)),
    "scale_detail": (str,),
    "scale_rejected_frames": (int,),
    "calibration_age_days": (int, float, type(None)),
    "ts": (str,),
}


def decode_status(payload: bytes) -> StationStatus:
    body = _load(payload, "status", 16 * 1024)
    if not isinstance(body.get("online"), bool):
        raise WireError("bad online")
    values: dict[str, Any] = {
        "station": _str(body, "station", STATION_ID),
        "online": body["online"],
        "session": _int(body, "session"),
    }
    for name, types in _STATUS_TYPES.items():
        if name not in body:
            continue
        value = body[name]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise WireError(f"bad {name}")
        if isinstance(value, int) and not isinstance(value, bool) and not 0 <= value <= MAX_SEQ:
            raise WireError(f"bad {name}")
        if isinstance(value, str) and not _storable(value):
            raise WireError(f"bad {name}")
        values[name] = value
    return StationStatus(**values)


def _storable(text: str) -> bool:
    """Text every ledger database can keep: no NUL (PostgreSQL's text cannot hold it) and
    valid Unicode (no lone surrogate): the same rule as a record's, so a status is refused
    the same way on SQLite and PostgreSQL instead of failing on one of them."""
    if "\0" in text:
        return False
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def decode_ledger_status(payload: bytes) -> LedgerStatus:
    body = _load(payload, "ledger_status", 4096)
    if not isinstance(body.get("online"), bool):
        raise WireError("bad online")
    return LedgerStatus(body["online"], _opt_str(body, "ts"))


def decode_registry(payload: bytes) -> Registry:
    body = _load(payload, "registry", 1024 * 1024)
    version = _int(body, "version")

    def _list(key: str, required: Sequence[str]) -> tuple[dict[str, Any], ...]:
        value = body.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise WireError(f"bad {key}")
        for item in value:
            for name in required:
                if not isinstance(item.get(name), str) or not item[name]:
                    raise WireError(f"bad {key}: each needs {name}")
        return tuple(value)

    known = _REGISTRY_MEMBERS
    return Registry(
        version,
        _list("categories", ("code", "name")),
        _list("referrers", ("code", "name")),
        _list("beneficiary_patterns", ()),
        {k: v for k, v in body.items() if k not in known},
    )
