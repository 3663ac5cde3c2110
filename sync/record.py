"""The journal record: one frozen, validated type shared by the station, uploader and ledger."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, ClassVar

__all__ = [
    "BOUNDS",
    "EPOCH_ID",
    "FLAGS",
    "KINDS",
    "MAX_MG",
    "MAX_PIECES",
    "MAX_SEQ",
    "MAX_TEXT",
    "RECORD_FIELDS",
    "REQUIRED",
    "STATION_ID",
    "Record",
    "RecordError",
    "canonical",
    "genesis_hash",
    "record_hash",
]

KINDS = ("weighing", "void", "visit_open", "visit_close", "calibration")

# Physical bounds (docs/wire-format.md §8): what a counter can produce, with a wide margin, and
# small enough that a SUM over every record a ledger could hold stays inside a signed 64-bit
# integer (tests/sync/test_record.py writes the arithmetic down).
MAX_MG = 10**10  # 10 t: above the largest platform and floor scales (3-6 t)
MAX_PIECES = 10**7  # counting scales show 6-7 digits; 10^7 pieces of 1 mg is already 10 kg
MAX_SEQ = 2**62  # seq, voids, mono_ns (2^62 ns is 146 years of uptime)
MAX_TEXT = 4096  # characters of any text field

# Every column of a journal record, in table order, with its JSON type; the hash covers all but
# "hash". Changing this list changes the hash of every record: it is frozen with wire v1.
RECORD_FIELDS: dict[str, type] = {
    "seq": int,
    "uuid": str,
    "epoch": str,
    "station": str,
    "kind": str,
    "recorded_at": str,
    "mono_ns": int,
    "boot_id": str,
    "clock_synced": int,
    "visit": str,
    "beneficiary": str,
    "referrer": str,
    "category": str,
    "operator": str,
    "source": str,
    "stable": int,
    "gross_mg": int,
    "tare_mg": int,
    "net_mg": int,
    "unit": str,
    "pieces": int,
    "unit_weight_mg": int,
    "pieces_computed": int,
    "scale_id": str,
    "calibration_id": str,
    "raw": str,
    "voids": int,
    "reason": str,
    "data": str,
    "prev_hash": str,
    "hash": str,
}
REQUIRED = frozenset(
    ("seq", "uuid", "epoch", "station", "kind", "recorded_at", "prev_hash", "hash")
)
FLAGS = ("stable", "clock_synced", "pieces_computed")

# inclusive bounds of every integer field
BOUNDS: dict[str, tuple[int, int]] = {
    "seq": (1, MAX_SEQ),
    "mono_ns": (0, MAX_SEQ),
    "clock_synced": (0, 1),
    "stable": (0, 1),
    "gross_mg": (-MAX_MG, MAX_MG),
    "tare_mg": (-MAX_MG, MAX_MG),
    "net_mg": (-MAX_MG, MAX_MG),
    "pieces": (-MAX_PIECES, MAX_PIECES),
    "unit_weight_mg": (-MAX_MG, MAX_MG),
    "pieces_computed": (0, 1),
    "voids": (1, MAX_SEQ),
}

# \Z, not $: "$" also matches before a final newline
STATION_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}\Z")
EPOCH_ID = re.compile(r"[0-9a-f]{32}\Z")
_HEX64 = re.compile(r"[0-9a-f]{64}\Z")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")

_FIELD_SET = frozenset(RECORD_FIELDS)
# the required fields as None, so that a missing one is refused by name, not by a TypeError
_ABSENT: dict[str, Any] = dict.fromkeys(REQUIRED)
# (name, type, bounds or None, required), checked in table order
_CHECKS: tuple[tuple[str, type, tuple[int, int] | None, bool], ...] = tuple(
    (name, kind, BOUNDS.get(name), name in REQUIRED) for name, kind in RECORD_FIELDS.items()
)
# keys inserted in sorted order give the same text as sort_keys=True, without sorting each time
_SORTED_CONTENT = tuple(sorted(f for f in RECORD_FIELDS if f != "hash"))
# every field of a Record at once, as a tuple (in table order, and in the canonical order)
_ALL = attrgetter(*RECORD_FIELDS)
_CONTENT = attrgetter(*_SORTED_CONTENT)
_CANONICAL = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


class RecordError(ValueError):
    """A record that breaks a rule of the journal; ``reason`` is short and stable (it is what the
    ledger's quarantine keeps, and ``sync.wire.WireError`` is this type for whole messages)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def canonical(record: Mapping[str, Any]) -> bytes:
    """The bytes the record hash covers: sorted-key compact JSON of every field but ``hash``,
    absent fields as null, non-ASCII as UTF-8 (docs/wire-format.md §5)."""
    if isinstance(record, Record):
        content = dict(zip(_SORTED_CONTENT, _CONTENT(record), strict=True))
    else:
        get = record.get
        content = {k: get(k) for k in _SORTED_CONTENT}
    return _CANONICAL.encode(content).encode()


def record_hash(record: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of :func:`canonical`; the journal's hash chain links these."""
    return hashlib.sha256(canonical(record)).hexdigest()


def genesis_hash(epoch: str) -> str:
    """The ``prev_hash`` of a store's first record."""
    return hashlib.sha256(f"pesee-genesis:{epoch}".encode()).hexdigest()


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Record(Mapping[str, Any]):
    """One journal record, valid by construction: every field has its type and bounds, the
    patterns hold and ``hash`` is the hash of the content. Anything else raises
    :class:`RecordError`. Build one with :meth:`seal` (a new record: the hash is computed),
    :meth:`from_row` (a journal row) or :meth:`from_wire` (a decoded JSON object).

    It is also a read-only Mapping of its 31 fields (``r["net_mg"]``, ``r.get``, ``dict(r)``),
    equal to a dict with the same items, so code written for row dicts keeps working.
    """

    seq: int
    uuid: str
    epoch: str
    station: str
    kind: str
    recorded_at: str
    mono_ns: int | None = None
    boot_id: str | None = None
    clock_synced: int | None = None
    visit: str | None = None
    beneficiary: str | None = None
    referrer: str | None = None
    category: str | None = None
    operator: str | None = None
    source: str | None = None
    stable: int | None = None
    gross_mg: int | None = None
    tare_mg: int | None = None
    net_mg: int | None = None
    unit: str | None = None
    pieces: int | None = None
    unit_weight_mg: int | None = None
    pieces_computed: int | None = None
    scale_id: str | None = None
    calibration_id: str | None = None
    raw: str | None = None
    voids: int | None = None
    reason: str | None = None
    data: str | None = None
    prev_hash: str
    hash: str

    FIELDS: ClassVar[tuple[str, ...]] = tuple(RECORD_FIELDS)

    def __post_init__(self) -> None:
        value: Any
        for (name, kind, bounds, required), value in zip(_CHECKS, _ALL(self), strict=True):
            if value is None:
                if required:
                    raise RecordError(f"record lacks {name}")
                continue
            # exact types: bool is not an int here, and JSON gives only these
            if kind is str:
                if type(value) is not str:
                    raise RecordError(f"record {name} is not a string")
                if len(value) > MAX_TEXT:
                    raise RecordError(f"record {name} too long")
            elif type(value) is not int:
                raise RecordError(f"record {name} is not an integer")
            elif bounds is not None and not bounds[0] <= value <= bounds[1]:
                if name in FLAGS:
                    raise RecordError(f"record {name} must be 0 or 1")
                raise RecordError(f"record {name} out of range")
        if not STATION_ID.match(self.station):
            raise RecordError("record station malformed")
        if not EPOCH_ID.match(self.epoch):
            raise RecordError("record epoch malformed")
        if self.kind not in KINDS:
            raise RecordError(f"record kind {self.kind!r} unknown")
        if not _UUID.match(self.uuid):
            raise RecordError("record uuid malformed")
        if not (_HEX64.match(self.prev_hash) and _HEX64.match(self.hash)):
            raise RecordError("record hash malformed")
        try:
            content = canonical(self)
        except UnicodeEncodeError:  # a lone surrogate: not text any database can store
            bad = next(n for n in self.FIELDS if _not_unicode(self[n]))
            raise RecordError(f"record {bad} is not valid Unicode") from None
        if self.hash != hashlib.sha256(content).hexdigest():
            raise RecordError(f"record {self.seq} hash does not match its content")

    # -- building ---------------------------------------------------------------------------
    @classmethod
    def seal(cls, **content: Any) -> Record:
        """A new record from its content (every field but ``hash``, which is computed).

        The two conveniences of the station's ``append``: a flag may be a bool (stored 0/1)
        and ``data`` may be a dict (stored as sorted-key JSON text)."""
        if "hash" in content:
            raise RecordError("record hash is computed, not given")
        for flag in FLAGS:
            if type(content.get(flag)) is bool:
                content[flag] = int(content[flag])
        if isinstance(content.get("data"), dict):
            content["data"] = json.dumps(content["data"], sort_keys=True, ensure_ascii=False)
        _known(content)
        try:
            digest = record_hash(content)
        except (UnicodeEncodeError, TypeError):
            digest = "0" * 64  # the check at construction names the field
        return cls(**{**_ABSENT, **content, "hash": digest})

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Record:
        """A journal row (every column, or only the non-null ones)."""
        _known(row)
        return cls(**{**_ABSENT, **row})

    @classmethod
    def from_wire(cls, obj: object) -> Record:
        """A record as a JSON object of a batch: absent members are null."""
        if not isinstance(obj, dict):
            raise RecordError("record is not an object")
        _known(obj)
        return cls(**{**_ABSENT, **obj})

    # -- reading ----------------------------------------------------------------------------
    def to_row(self) -> dict[str, Any]:
        """Every column in table order, null ones as None (the journal's INSERT, a CSV line)."""
        return dict(zip(self.FIELDS, _ALL(self), strict=True))

    def to_wire(self) -> dict[str, Any]:
        """The compact form a batch carries: null fields left out (absent means null; most
        columns are empty for most kinds, and bytes matter on a 3G link)."""
        return {
            name: value
            for name, value in zip(self.FIELDS, _ALL(self), strict=True)
            if value is not None
        }

    # -- the read-only Mapping of the migration path -----------------------------------------
    def __getitem__(self, key: str) -> Any:
        if key not in _FIELD_SET:
            raise KeyError(key)
        return self.__getattribute__(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self.FIELDS)

    def __len__(self) -> int:
        return len(self.FIELDS)

    def __contains__(self, key: object) -> bool:
        return key in _FIELD_SET

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Record):
            return self.to_row() == other.to_row()
        if isinstance(other, Mapping):
            return self.to_row() == dict(other.items())
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.station, self.epoch, self.seq, self.hash))


def _known(fields: Mapping[str, Any]) -> None:
    unknown = fields.keys() - _FIELD_SET
    if unknown:
        raise RecordError(f"record has unknown fields {sorted(map(str, unknown))}")


def _not_unicode(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        value.encode()
    except UnicodeEncodeError:
        return True
    return False
