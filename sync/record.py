"""The journal record: one frozen, validated type shared by the station, uploader and ledger."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from operator import attrgetter, itemgetter
from typing import Any, ClassVar

import orjson

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
    "batch_records",
    "batch_rows",
    "canonical",
    "check_row",
    "field_values",
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
# keys inserted in sorted order give the same text as sort_keys=True, without sorting each time
_SORTED_CONTENT = tuple(sorted(f for f in RECORD_FIELDS if f != "hash"))
# every field of a Record at once, as a tuple (in table order, and in the canonical order)
_ALL = attrgetter(*RECORD_FIELDS)
_CONTENT = attrgetter(*_SORTED_CONTENT)
_CANONICAL = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)

# The checks see a record's values in "check order": the content sorted (the canonical order),
# then the hash. {**_NULLS, **fields} puts any mapping in that order with absent fields as None,
# so one merge gives the values to check, the canonical content (once "hash" is deleted) and,
# by its length, whether a field is unknown.
_ORDER = (*_SORTED_CONTENT, "hash")
_NULLS: dict[str, Any] = dict.fromkeys(_ORDER)
_AT = {name: i for i, name in enumerate(_ORDER)}
_IN_ORDER = attrgetter(*_ORDER)
# check order -> table order (RECORD_FIELDS): a record's row as the ledger inserts it
_TABLE_ORDER = itemgetter(*(_AT[name] for name in RECORD_FIELDS))
_NONE = type(None)
# (position, name, type, bounds or None, required), in table order: the order of the reasons
_CHECKS: tuple[tuple[int, str, type, tuple[int, int] | None, bool], ...] = tuple(
    (_AT[name], name, kind, BOUNDS.get(name), name in REQUIRED)
    for name, kind in RECORD_FIELDS.items()
)
# the checks of _fast_check generated for each type signature seen valid (_checker)
_CHECKERS: dict[tuple[type, ...], Any] = {}
_MAX_SIGNATURES = 4096  # a hostile sender cannot grow these past this
_VALID_IDS: set[tuple[str, str]] = set()  # (station, epoch) pairs seen to match their patterns
_BOUNDED = tuple((_AT[name], low, high) for name, (low, high) in BOUNDS.items())
_TEXT_AT = tuple(_AT[name] for name, kind in RECORD_FIELDS.items() if kind is str)
_STATION, _EPOCH, _KIND, _UUID_AT, _PREV, _HASH, _SEQ_AT = (
    _AT[n] for n in ("station", "epoch", "kind", "uuid", "prev_hash", "hash", "seq")
)


class RecordError(ValueError):
    """A record that breaks a rule of the journal; ``reason`` is short and stable (it is what the
    ledger's quarantine keeps, and ``sync.wire.WireError`` is this type for whole messages)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def field_values(record: Mapping[str, Any]) -> tuple[Any, ...]:
    """Every field of a record in table order (``RECORD_FIELDS``), absent ones None: one
    attrgetter call for a Record, ``.get`` for a plain mapping (as tests forge them)."""
    if type(record) is Record:
        return _ALL(record)
    return tuple(map(record.get, RECORD_FIELDS))


def canonical(record: Mapping[str, Any]) -> bytes:
    """The bytes the record hash covers: sorted-key compact JSON of every field but ``hash``,
    absent fields as null, non-ASCII as UTF-8 (docs/wire-format.md §5)."""
    if isinstance(record, Record):
        values = _CONTENT(record)
    else:
        get = record.get
        values = tuple(get(k) for k in _SORTED_CONTENT)
    content = dict(zip(_SORTED_CONTENT, values, strict=True))
    # orjson writes str, int and null exactly as the standard encoder (the hash is frozen with
    # wire v1: tests/sync/test_record.py compares the two); other types, a lone surrogate or an
    # int beyond 64 bits take the standard path
    if set(map(type, values)) <= _PLAIN:
        try:
            return orjson.dumps(content)
        except TypeError:
            pass
    return _CANONICAL.encode(content).encode()


_PLAIN = frozenset((str, int, _NONE))


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
        values = _IN_ORDER(self)
        content = _canonical_of(values) if _fast_check(values) else None
        _hashed(values, content)

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
        return _make(row)

    @classmethod
    def from_wire(cls, obj: object) -> Record:
        """A record as a JSON object of a batch: absent members are null."""
        if not isinstance(obj, dict):
            raise RecordError("record is not an object")
        return _make(obj)

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


class _Draft(Mapping[str, Any]):
    """A Record's exact slot layout without its frozen ``__setattr__``: a new record's slots
    are stored as plain attribute stores (the interpreter's fastest), then the object becomes
    a Record (``__class__`` assignment between identical layouts). Never seen outside _built."""

    __slots__ = Record.__slots__  # type: ignore[attr-defined]

    def __getitem__(self, key: str) -> Any:  # pragma: no cover - never used as a Draft
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:  # pragma: no cover
        return iter(())

    def __len__(self) -> int:  # pragma: no cover
        return 0


def _slot_filler() -> Any:
    """``built(values)``: a new Record from the values in check order, in one function of 31
    straight stores (generated, as dataclasses generates __init__): a loop over the slot
    descriptors, or a descriptor call per slot, costs several times as much."""
    body = "".join(f"    d.{name} = values[{i}]\n" for i, name in enumerate(_ORDER))
    scope: dict[str, Any] = {"Draft": _Draft, "Record": Record, "new": object.__new__}
    # our own text, from the field names
    exec(
        f"def built(values):\n    d = new(Draft)\n{body}    d.__class__ = Record\n    return d\n",
        scope,
    )
    return scope["built"]


_built = _slot_filler()


def check_row(row: Mapping[str, Any]) -> None:
    """Every rule of :class:`Record` but the hash, on a journal row (absent columns are null):
    what the station's uploader checks before it sends rows the store sealed at append (it
    does not hash them again; the ledger verifies every hash). Raises :class:`RecordError`."""
    merged = {**_NULLS, **row}
    if len(merged) != len(_NULLS):
        _known(row)
    values = tuple(merged.values())
    texts = _fast_texts(values)
    if texts is None or not (texts.isascii() or _is_unicode(texts)):
        _explain(values)


def batch_records(raw: list[Any], station: str, epoch: str, first: int) -> list[Record] | None:
    """The Records of a batch's JSON objects (:func:`_checked_batch`), or None."""
    return _checked_batch(raw, station, epoch, first, _built)


def batch_rows(
    raw: list[Any], station: str, epoch: str, first: int
) -> list[tuple[Any, ...]] | None:
    """:func:`batch_records`' checks, each record given as its row (every field in
    ``RECORD_FIELDS`` order) without building a Record: the ledger's decode process."""
    return _checked_batch(raw, station, epoch, first, _TABLE_ORDER)


def _checked_batch(
    raw: list[Any], station: str, epoch: str, first: int, make: Callable[[tuple[Any, ...]], Any]
) -> list[Any] | None:
    """``make(values)`` (values in check order) of each of a batch's JSON objects when all of
    them keep every rule, are ``first…`` in order, of ``station`` and ``epoch`` (patterns the
    caller checked) and chained one to the next; None when something may not hold (the
    reference decoder then judges and says why, so this pass never decides a reason).

    The ledger's hot path: the same rules as :meth:`Record.from_wire`, with what the batch
    vouches for taken from it — a record's station and epoch equal the batch's, its
    ``prev_hash`` equals the previous record's hash (verified, so 64 lowercase hex) — and a
    hash that equals the SHA-256 hex of the content needs no pattern."""
    if not raw or type(raw[0]) is not dict:
        return None
    prev = raw[0].get("prev_hash")
    if type(prev) is not str or _HEX64.match(prev) is None:
        return None
    records = []
    checkers, nulls, width, sha256 = _CHECKERS, _NULLS, len(_NULLS), hashlib.sha256
    for seq, obj in enumerate(raw, first):
        if type(obj) is not dict:
            return None
        merged = {**nulls, **obj}
        if len(merged) != width:  # an unknown field
            return None
        values = tuple(merged.values())
        types = tuple(map(type, values))
        check = checkers.get(types) or _checker(types)
        if (
            check is None
            or values[_SEQ_AT] != seq
            or values[_STATION] != station
            or values[_EPOCH] != epoch
            or values[_PREV] != prev
            or check(values) is None
        ):
            return None
        del merged["hash"]
        try:
            digest = sha256(orjson.dumps(merged)).hexdigest()
        except TypeError:  # a lone surrogate
            return None
        if digest != values[_HASH]:
            return None
        prev = digest
        records.append(make(values))
    return records


def _make(fields: Mapping[str, Any]) -> Record:
    """A Record from a mapping (absent fields null): the checks and the hash, then the slots."""
    merged = {**_NULLS, **fields}
    if len(merged) != len(_NULLS):
        _known(fields)
    values = tuple(merged.values())
    content = None
    if _fast_check(values):
        del merged["hash"]
        content = _dumps(merged)
    _hashed(values, content)
    return _built(values)  # type: ignore[no-any-return]


def _fast_check(values: tuple[Any, ...]) -> bool:
    """True when the values (in check order) keep every rule but the hash and Unicode (the
    canonical encoding checks those); False when one may be broken: _explain then decides."""
    return _fast_texts(values) is not None


def _fast_texts(values: tuple[Any, ...]) -> str | None:
    """:func:`_fast_check`, giving the record's texts joined (for the Unicode check) when it
    holds, else None."""
    types = tuple(map(type, values))
    check = _CHECKERS.get(types) or _checker(types)
    if check is None:
        return None
    texts: str | None = check(values)
    if texts is None or not (
        ((values[_STATION], values[_EPOCH]) in _VALID_IDS or _ids(values))
        and _HEX64.match(values[_PREV]) is not None
        and _HEX64.match(values[_HASH]) is not None
    ):
        return None
    return texts


def _ids(values: tuple[Any, ...]) -> bool:
    """Whether the station and epoch match their patterns (remembered: one store's records
    all carry the same pair)."""
    pair = (values[_STATION], values[_EPOCH])
    if not (STATION_ID.match(pair[0]) and EPOCH_ID.match(pair[1])):
        return False
    if len(_VALID_IDS) < _MAX_SIGNATURES:
        _VALID_IDS.add(pair)
    return True


def _checker(types: tuple[type, ...]) -> Any:
    """The checks of the records of one type signature (the type of each value, NoneType where
    absent; records of one kind share a handful): None if a type is wrong, else a function of
    the values that gives their texts joined when the bounds, the total length, NUL, the kind
    and the uuid hold, else None. Generated once per signature, as straight code: only the
    fields present are compared, with no loop (a loop over the 11 bounded fields cost more
    than the rest of the checks)."""
    for i, _name, kind, _bounds, required in _CHECKS:
        got = types[i]
        if got is not kind and (required or got is not _NONE):
            return None
    if len(_CHECKERS) >= _MAX_SIGNATURES:  # a hostile sender's variety: the same, in a loop
        return _any_signature
    bounds = [f"{low} <= v[{i}] <= {high}" for i, low, high in _BOUNDED if types[i] is int]
    texts = "".join(f"v[{i}], " for i in _TEXT_AT if types[i] is str)
    # all the texts together within MAX_TEXT: each one is; a NUL anywhere: _explain finds it
    source = (
        "def check(v):\n"
        f"    t = ''.join(({texts}))\n"
        f"    if ({' and '.join(bounds) or 'True'}) and len(t) <= {MAX_TEXT} "
        f"and '\\0' not in t and v[{_KIND}] in KINDS and uuid(v[{_UUID_AT}]) is not None:\n"
        "        return t\n"
        "    return None\n"
    )
    scope: dict[str, Any] = {"KINDS": frozenset(KINDS), "uuid": _UUID.match}
    exec(source, scope)  # our own text: integer positions and bounds, nothing received
    _CHECKERS[types] = scope["check"]
    return scope["check"]


def _any_signature(values: tuple[Any, ...]) -> str | None:
    """What a generated check does, for values of any valid signature."""
    for i, low, high in _BOUNDED:
        value = values[i]
        if value is not None and not low <= value <= high:
            return None
    texts = "".join(filter(None, map(values.__getitem__, _TEXT_AT)))
    if len(texts) <= MAX_TEXT and "\0" not in texts and values[_KIND] in KINDS:
        return texts if _UUID.match(values[_UUID_AT]) is not None else None
    return None


def _canonical_of(values: tuple[Any, ...]) -> bytes | None:
    return _dumps(dict(zip(_SORTED_CONTENT, values[:-1], strict=True)))


def _dumps(content: dict[str, Any]) -> bytes | None:
    """The canonical bytes of checked content; None for a lone surrogate (_explain names it)."""
    try:
        return orjson.dumps(content)
    except TypeError:
        return None


def _hashed(values: tuple[Any, ...], content: bytes | None) -> None:
    """The hash check. When the fast checks could not vouch (``content`` None), _explain
    first raises the rule broken, or gives the canonical bytes to hash."""
    if content is None:
        content = _explain(values)
    if values[_HASH] != hashlib.sha256(content).hexdigest():
        raise RecordError(f"record {values[_AT['seq']]} hash does not match its content")


def _explain(values: tuple[Any, ...]) -> bytes:
    """The rules field by field, in table order: raises the first one broken (its reason is
    what the quarantine keeps); the canonical bytes (standard encoder) when every rule holds."""
    value: Any
    for i, name, kind, bounds, required in _CHECKS:
        value = values[i]
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
            if "\0" in value:  # PostgreSQL's text cannot hold it: refused on every store
                raise RecordError(f"record {name} contains a NUL character")
        elif type(value) is not int:
            raise RecordError(f"record {name} is not an integer")
        elif bounds is not None and not bounds[0] <= value <= bounds[1]:
            if name in FLAGS:
                raise RecordError(f"record {name} must be 0 or 1")
            raise RecordError(f"record {name} out of range")
    if not STATION_ID.match(values[_STATION]):
        raise RecordError("record station malformed")
    if not EPOCH_ID.match(values[_EPOCH]):
        raise RecordError("record epoch malformed")
    if values[_KIND] not in KINDS:
        raise RecordError(f"record kind {values[_KIND]!r} unknown")
    if not _UUID.match(values[_UUID_AT]):
        raise RecordError("record uuid malformed")
    if not (_HEX64.match(values[_PREV]) and _HEX64.match(values[_HASH])):
        raise RecordError("record hash malformed")
    for i, name, *_rest in _CHECKS:
        if _not_unicode(values[i]):  # a lone surrogate: no database stores it
            raise RecordError(f"record {name} is not valid Unicode")
    content = dict(zip(_SORTED_CONTENT, values[:-1], strict=True))
    return _CANONICAL.encode(content).encode()


def _known(fields: Mapping[str, Any]) -> None:
    unknown = fields.keys() - _FIELD_SET
    if unknown:
        raise RecordError(f"record has unknown fields {sorted(map(str, unknown))}")


def _is_unicode(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _not_unicode(value: object) -> bool:
    return isinstance(value, str) and not _is_unicode(value)
