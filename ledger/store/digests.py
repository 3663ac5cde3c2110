"""Month digests: each month's report figures as sums and visit/person sets, kept exact.

A report over a year read the year's records several times (distinct counts do not add up
across months, so nothing could be summed ahead). A digest keeps, per month, for the whole
month and per station, category, referrer and profile tag (its *dimensions*), the sums
(weighings, items, kg, pieces, manual) and the *sets* of live visits and persons (their integer
ids, schema step 5, as bit sets); and, apart, the same per station × category × referrer cell
(and × tag) for reports by two groupings. Any period's figures are then sums and unions of a
few of them (ledger/store/tally.py), exact: a union counts a person seen in two months once.

Exactness through every change: whatever changes a month's records (ingest, a void, a clock
repair, a purge, a profile import) adds a row to ``digest_changes`` in its own transaction
(:meth:`Digests.changed`); a digest is fresh when it has a body and no change row is left for
its month. A digest is built from one statement that reads the month's records *and* its change
rows (one snapshot on both databases), then saved in a transaction that deletes exactly the
change rows it saw: if another builder took some first, nothing is saved (the figures still
serve the report that built them). A change committed after the snapshot keeps its row, so the
month stays stale until built again. Writers only insert rows: two PostgreSQL workers never
wait on each other for a digest. ``ledger run`` builds the stale months every 30 s, in a lull of
the ingest (:meth:`Digests.refresh`, ledger/digest_keeper.py), so reports seldom meet one.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from .dialect import Dialect
from .facts import PROFILE_JOIN, profile_facts
from .models import utc_now

__all__ = [
    "BODY_VERSION",
    "DIMENSIONS",
    "Cell",
    "Digests",
    "Entry",
    "MonthDigest",
    "bits_of",
    "month_bounds",
    "split_period",
]

log = logging.getLogger("ledger.store")

BODY_VERSION = 4
# a cell: (tag, station, category, referrer, weighings, items, net_mg, pieces, manual,
# visits, persons) -- tag None in the base cells; visits and persons sorted ids of live weighings
Cell = tuple[str | None, str, str | None, str | None, int, int, int, int, int, list[int], list[int]]
_LIVE = "r.voided_by IS NULL"
# a weighing as the digest reads it: live (not voided) and its sums, 1/0 on both databases
_VALUES = f"""CASE WHEN {_LIVE} THEN 1 ELSE 0 END AS live, r.net_mg, r.pieces,
    CASE WHEN r.source = 'manual' THEN 1 ELSE 0 END AS manual"""
_KEYS = "r.station, r.category, r.referrer, r.visit_n, r.person_n"
_WHERE = "r.kind = 'weighing' AND r.occurred_at >= ? AND r.occurred_at < ?"
# whether any profile fact exists, as a row of a build's statement (part 3)
_PROFILED = (
    "SELECT 3, CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS TEXT), "
    "CAST(NULL AS TEXT), (SELECT count(*) FROM (SELECT 1 FROM profiles LIMIT 1) a) "
    "+ (SELECT count(*) FROM (SELECT 1 FROM scanned_profiles LIMIT 1) b), "
    "CAST(NULL AS BIGINT), 0, 0, 0, 0"
)
# at most this many change rows of added records are folded into a kept digest; more, and the
# month is read whole (one pass over its records costs less than that many ranges)
_FOLD_MAX = 64
_MAGIC = b"PDG"  # a body's first bytes (before them: the JSON bodies of earlier versions)
_MEMO = 72  # decoded months kept per store (six years: a trend); ~0.3 MB each at 1M a year


def month_bounds(month: str) -> tuple[str, str]:
    """``YYYY-MM`` as record times: its first instant (included), the next month's (excluded)."""
    y, m = int(month[:4]), int(month[5:7])
    y2, m2 = (y + 1, 1) if m == 12 else (y, m + 1)
    return f"{y:04d}-{m:02d}-01T00:00:00.000Z", f"{y2:04d}-{m2:02d}-01T00:00:00.000Z"


def split_period(start: str, end: str) -> tuple[str, str, list[tuple[str, str]]]:
    """``start <= time < end`` as the first and last months it covers whole (``""`` if none)
    and the ranges of the months it covers in part, each inside one month."""
    first = last = ""
    parts: list[tuple[str, str]] = []
    cursor = start
    while cursor < end:
        month_start, month_end = month_bounds(cursor[:7])
        if cursor == month_start and month_end <= end:
            first = first or cursor[:7]
            last = cursor[:7]
        else:
            parts.append((cursor, min(month_end, end)))
        cursor = month_end
    return first, last, parts


# an entry of a dimension: weighings, items, net_mg, pieces, manual, visits and persons as bit
# sets (bit ``id - offset``), structures (codes) of its live weighings
Entry = list[Any]
DIMENSIONS = ("all", "station", "category", "referrer", "tag")
_BIT = tuple(1 << i for i in range(8))


def bits_of(ids: Iterable[int], offset: int) -> int:
    """Ids as one integer, bit ``id - offset`` set for each."""
    values = [x - offset for x in ids]
    if not values:
        return 0
    buffer = bytearray((max(values) >> 3) + 1)
    for x in values:
        buffer[x >> 3] |= _BIT[x & 7]
    return int.from_bytes(buffer, "little")


@dataclass(slots=True)
class MonthDigest:
    """One month's figures (or a part of a month's, for a period's partial edges).

    ``dims``: per dimension (``all``, ``station``, ``category``, ``referrer`` — their values as
    stored, None kept apart from '' — and ``tag``, the profile), an :data:`Entry` per value:
    what a report by one grouping reads. ``cells`` (per station × category × referrer, and per
    tag where profile facts exist; decoded on first use) answer two groupings at once.
    ``tallies`` keeps what ledger/store/tally.py computed from it, for as long as this digest
    is the month's."""

    month: str
    token: str | None
    offsets: tuple[int, int]  # the smallest visit and person ids: where the bit sets start
    dims: dict[str, dict[Any, Entry]]
    packed_cells: bytes | None = None
    # reads ``packed_cells`` when first needed (a digest read back: most reports never do)
    load_cells: Callable[[], bytes] | None = None
    decoded_cells: tuple[list[Cell], list[Cell] | None] | None = None
    tallies: dict[Any, Any] = field(default_factory=dict)

    @property
    def cells(self) -> tuple[list[Cell], list[Cell] | None]:
        """(base cells, tagged cells or None when no profile fact existed)."""
        if self.decoded_cells is None:
            if self.packed_cells is None and self.load_cells is not None:
                self.packed_cells = self.load_cells()
            data = orjson.loads(self.packed_cells or b'{"base": [], "tagged": null}')
            tagged = None if data["tagged"] is None else [tuple(c) for c in data["tagged"]]
            self.decoded_cells = ([tuple(c) for c in data["base"]], tagged)
        return self.decoded_cells

    def encode(self) -> bytes:
        """``body``: a JSON head (version, offsets, every dimension's sums and structures, the
        byte length of each bit set) and the bit sets' bytes after it, little-endian, in the
        head's order. The cells are kept apart (``cells``): only reports by two groupings read
        them."""
        payload: list[bytes] = []

        def raw(bits: int) -> int:
            payload.append(bits.to_bytes((bits.bit_length() + 7) // 8, "little"))
            return len(payload[-1])

        head = orjson.dumps(
            {
                "v": BODY_VERSION,
                "offsets": self.offsets,
                "dims": {
                    name: [[k, *e[:5], raw(e[5]), raw(e[6]), sorted(e[7])] for k, e in d.items()]
                    for name, d in self.dims.items()
                },
            }
        )
        return _MAGIC + len(head).to_bytes(4, "big") + head + b"".join(payload)

    @classmethod
    def decode(
        cls, month: str, token: str, body: bytes, load_cells: Callable[[], bytes]
    ) -> MonthDigest | None:
        """None when the body is of another version (it is then built again)."""
        if body[: len(_MAGIC)] != _MAGIC:
            return None
        size = int.from_bytes(body[len(_MAGIC) : len(_MAGIC) + 4], "big")
        at = len(_MAGIC) + 4
        head = orjson.loads(body[at : at + size])
        if not isinstance(head, dict) or head.get("v") != BODY_VERSION:
            return None
        at += size
        view = memoryview(body)

        def bits(length: int) -> int:
            nonlocal at
            at += length
            return int.from_bytes(view[at - length : at], "little")

        dims = {
            name: {e[0]: [*e[1:6], bits(e[6]), bits(e[7]), set(e[8])] for e in entries}
            for name, entries in head["dims"].items()
        }
        offsets = (int(head["offsets"][0]), int(head["offsets"][1]))
        return cls(month, token, offsets, dims, None, load_cells)


_AT = {"tag": 0, "station": 1, "category": 2, "referrer": 3}  # a dimension's place in a cell key


Accumulators = dict[tuple[Any, ...], list[Any]]  # cell key -> sums, visit set, person set


def _dimensions(base: Accumulators, tagged: Accumulators | None) -> dict[str, dict[Any, list[Any]]]:
    """Cell accumulators ((tag, station, category, referrer) -> sums + sets) gathered per
    dimension value: sums, visit set, person set, structures."""
    gathered: dict[str, dict[Any, list[Any]]] = {name: {} for name in DIMENSIONS}
    for source, names in ((base, DIMENSIONS[:4]), (base if tagged is None else tagged, ("tag",))):
        for key, acc in source.items():
            for name in names:
                value = None if name == "all" else key[_AT[name]]
                entry = gathered[name].get(value)
                if entry is None:
                    entry = gathered[name][value] = [0, 0, 0, 0, 0, set(), set(), set()]
                for i in range(5):
                    entry[i] += acc[i]
                entry[5] |= acc[5]
                entry[6] |= acc[6]
                if acc[1] and key[3] is not None:  # a structure counts where a weighing is live
                    entry[7].add(key[3])
    return gathered


def _cells(part: Accumulators) -> list[Cell]:
    return [
        (*key, *acc[:5], sorted(acc[5]), sorted(acc[6]))
        for key, acc in sorted(part.items(), key=lambda kv: _sortable(kv[0]))
    ]


def _digest_of(month: str, base: Accumulators, tagged: Accumulators | None) -> MonthDigest:
    """The digest of cell accumulators."""
    v_off = min((min(a[5]) for a in base.values() if a[5]), default=0)
    p_off = min((min(a[6]) for a in base.values() if a[6]), default=0)
    dims: dict[str, dict[Any, Entry]] = {
        name: {
            value: [*e[:5], bits_of(e[5], v_off), bits_of(e[6], p_off), e[7]]
            for value, e in entries.items()
        }
        for name, entries in _dimensions(base, tagged).items()
    }
    cells = orjson.dumps(
        {"base": _cells(base), "tagged": None if tagged is None else _cells(tagged)}
    )
    return MonthDigest(month, None, (v_off, p_off), dims, cells)


def _fold(old: MonthDigest, base: Accumulators, tagged: Accumulators | None) -> MonthDigest | None:
    """``old`` with new weighings added (their cell accumulators): what a build over the month
    would give, since records were only added. None when an id falls below the month's bit
    sets' origin (the caller builds the month whole)."""
    v_off, p_off = old.offsets
    whole = old.dims["all"].get(None)
    if whole is None or not whole[5] or not whole[6]:
        return None  # no id yet: the bit sets have no origin to add to
    added = _dimensions(base, tagged)
    for entries in added.values():
        for e in entries.values():
            if (e[5] and min(e[5]) < v_off) or (e[6] and min(e[6]) < p_off):
                return None
    dims = {name: {v: [*e[:7], set(e[7])] for v, e in d.items()} for name, d in old.dims.items()}
    for name, entries in added.items():
        into = dims.setdefault(name, {})
        for value, e in entries.items():
            entry = into.get(value)
            if entry is None:
                entry = into[value] = [0, 0, 0, 0, 0, 0, 0, set()]
            for i in range(5):
                entry[i] += e[i]
            entry[5] |= bits_of(e[5], v_off)
            entry[6] |= bits_of(e[6], p_off)
            entry[7] |= e[7]
    old_base, old_tagged = old.cells

    def merged(cells: list[Cell], acc: Accumulators) -> Accumulators:
        out: Accumulators = {tuple(c[:4]): [*c[4:9], set(c[9]), set(c[10])] for c in cells}
        for key, a in acc.items():
            into = out.get(key)
            if into is None:
                out[key] = a
                continue
            for i in range(5):
                into[i] += a[i]
            into[5] |= a[5]
            into[6] |= a[6]
        return out

    new_base = _cells(merged(old_base, base))
    new_tagged = None if old_tagged is None else _cells(merged(old_tagged, tagged or {}))
    cells = orjson.dumps({"base": new_base, "tagged": new_tagged})
    return MonthDigest(old.month, None, old.offsets, dims, cells)


def _gather(
    rows: Iterable[Sequence[Any]],
) -> tuple[tuple[Accumulators, Accumulators], list[int], bool]:
    """Rows of a build's statement: (base and tagged cell accumulators, change ids seen,
    whether a profile fact existed)."""
    cells: tuple[Accumulators, Accumulators] = ({}, {})
    seen: list[int] = []
    profiled = False
    for values in rows:
        part = int(values[0])
        if part >= 2:
            if part == 2:
                seen.append(int(values[5]))
            else:
                profiled = bool(values[5])
            continue
        _part, tag, station, category, referrer, visit, person, live, net, pieces, manual = values
        key = (tag, station, category, referrer)
        acc = cells[part].get(key)
        if acc is None:
            acc = cells[part][key] = [0, 0, 0, 0, 0, set(), set()]
        acc[0] += 1
        if live:  # a visit (person) counts where one of its weighings is live
            acc[1] += 1
            acc[2] += net or 0
            acc[3] += pieces or 0
            acc[4] += manual
            if visit is not None:
                acc[5].add(visit)
            if person is not None:
                acc[6].add(person)
    return cells, seen, profiled


class Digests:
    """The ``month_digests`` and ``digest_changes`` tables (schema step 14)."""

    def __init__(self, db: Dialect) -> None:
        self.db = db
        self._memo: dict[str, MonthDigest] = {}
        self._lock = threading.Lock()
        # whether profile facts existed at the last build (a guess for the next one: checked)
        self._profiled = False

    # -- writers: inside the caller's transaction ---------------------------------------------
    def changed(self, months: Iterable[str | None]) -> None:
        """The records of these months (``YYYY-MM``) changed."""
        for month in sorted({m for m in months if m}):
            self.db.exec(
                "INSERT INTO month_digests (month) VALUES (?) ON CONFLICT (month) DO NOTHING",
                (month,),
            )
            self.db.exec("INSERT INTO digest_changes (month) VALUES (?)", (month,))

    def appended(self, runs: Iterable[tuple[str, str, str, int, int]]) -> None:
        """Records were added: (month, station, epoch, first seq, last seq), every seq of the
        run new in this transaction. A kept digest takes them in without reading its month
        again (:meth:`_folded`), as long as nothing else changed it."""
        runs = sorted(set(runs))
        for month in sorted({r[0] for r in runs}):
            self.db.exec(
                "INSERT INTO month_digests (month) VALUES (?) ON CONFLICT (month) DO NOTHING",
                (month,),
            )
        if runs:
            self.db.many(
                "INSERT INTO digest_changes (month, station, epoch, first_seq, last_seq) "
                "VALUES (?, ?, ?, ?, ?)",
                runs,
            )

    def changed_from(self, month: str) -> None:
        """Every month from ``month`` on changed (a profile fact that starts there moved)."""
        self.changed([month])
        self.db.exec(
            "INSERT INTO digest_changes (month) SELECT month FROM month_digests WHERE month > ?",
            (month,),
        )

    def changed_all(self) -> None:
        """Every month changed (a purge, a profile import)."""
        self.db.exec("INSERT INTO digest_changes (month) SELECT month FROM month_digests")

    # -- readers ------------------------------------------------------------------------------
    def months(self, first: str, last: str) -> list[MonthDigest]:
        """The digest of every month from ``first`` to ``last`` (``YYYY-MM``, both included)
        that holds records, fresh: built now (and saved) where stale."""
        found = self.db.fetch(
            "SELECT d.month AS month, d.token AS token, "
            "(SELECT count(*) FROM digest_changes c WHERE c.month = d.month) AS pending "
            "FROM month_digests d WHERE d.month >= ? AND d.month <= ? ORDER BY d.month",
            [first, last],
        )
        fresh = {
            str(r["month"]): str(r["token"])
            for r in found
            if r["token"] is not None and not r["pending"]
        }
        with self._lock:
            kept = {m: d for m, d in self._memo.items() if fresh.get(m) == d.token}
        read = self._read_kept({m: t for m, t in fresh.items() if m not in kept})
        out = []
        for row in found:
            month = str(row["month"])
            out.append(kept.get(month) or read.get(month) or self._build(month))
        return out

    def _read_kept(self, wanted: dict[str, str]) -> dict[str, MonthDigest]:
        """The kept digests of ``wanted`` (month -> token), in one query; a month built again
        meanwhile (another token) is left out: the caller builds it."""
        if not wanted:
            return {}
        months = sorted(wanted)
        rows = self.db.fetch(
            f"SELECT month, token, body FROM month_digests "
            f"WHERE month IN ({', '.join('?' * len(months))})",
            months,
        )
        out = {}
        for row in rows:
            month, token = str(row["month"]), row["token"]
            if token != wanted[month] or row["body"] is None:
                continue
            digest = MonthDigest.decode(
                month, token, bytes(row["body"]), self._cells_of(month, token)
            )
            if digest is not None:
                self._remember(digest)
                out[month] = digest
        return out

    def _cells_of(self, month: str, token: str) -> Callable[[], bytes]:
        """Reads a kept digest's cells when a report first needs them."""

        def load() -> bytes:
            found = self.db.fetch(
                "SELECT cells FROM month_digests WHERE month = ? AND token = ?", [month, token]
            )
            if found and found[0]["cells"] is not None:
                return bytes(found[0]["cells"])
            # built again since: this month's cells as the records are now
            return self.part(*month_bounds(month)).packed_cells or b""

        return load

    def refresh(self, stop: Callable[[], bool] | None = None) -> int:
        """Build every stale month now, newest first (after an upgrade, a bulk load, or as
        ``ledger run`` keeps them while records arrive: no report then waits for one); stops
        between two months when ``stop()`` says so. Returns how many were built."""
        stale = self.db.fetch(
            "SELECT month FROM month_digests d WHERE d.token IS NULL "
            "OR EXISTS (SELECT 1 FROM digest_changes c WHERE c.month = d.month) "
            "ORDER BY month DESC"
        )
        built = 0
        for row in stale:
            if stop is not None and stop():
                break
            self._build(str(row["month"]))
            built += 1
        return built

    def part(self, start: str, end: str) -> MonthDigest:
        """The cells of the records with ``start <= time < end`` (inside one month), from the
        records themselves (a period's partial months; not kept)."""
        return self._read(start[:7], start, end, with_changes=False)[0]

    def _remember(self, digest: MonthDigest) -> None:
        with self._lock:
            self._memo[digest.month] = digest
            while len(self._memo) > _MEMO:
                del self._memo[next(iter(self._memo))]

    def _build(self, month: str) -> MonthDigest:
        folded = self._folded(month)
        if folded is not None:
            digest, seen = folded
        else:
            digest, seen = self._read(month, *month_bounds(month), with_changes=True)
        if seen:
            digest.token = secrets.token_hex(8)
            try:
                saved = self.db.atomic(lambda: self._save(digest, seen))
            except Exception as exc:  # a read-only file or a lost connection: serve, not keep
                log.debug("month digest %s not saved: %s", month, exc)
                saved = False
            if not saved:
                digest.token = None
        if digest.token is not None:
            self._remember(digest)
        return digest

    def _folded(self, month: str) -> tuple[MonthDigest, list[int]] | None:
        """The month's kept digest with the records added since, when additions are all that
        changed it; None otherwise (the caller reads the month whole).

        The change rows and the kept digest's token come from one statement; the body is read
        only if that token is still the month's (the rows seen are then exactly those made
        after it was built); the added records are read by their (station, epoch, seq) runs."""
        changes = self.db.fetch(
            "SELECT c.id AS id, c.station AS station, c.epoch AS epoch, c.first_seq AS first_seq, "
            "c.last_seq AS last_seq, d.token AS token FROM digest_changes c "
            "JOIN month_digests d ON d.month = c.month WHERE c.month = ?",
            [month],
        )
        if not changes or len(changes) > _FOLD_MAX:
            return None
        token = changes[0]["token"]
        if token is None or any(c["station"] is None for c in changes):
            return None  # never built, or changed otherwise than by additions
        kept = self.db.fetch(
            "SELECT body, cells FROM month_digests WHERE month = ? AND token = ?", [month, token]
        )
        if not kept or kept[0]["body"] is None or kept[0]["cells"] is None:
            return None
        packed = bytes(kept[0]["cells"])
        old = MonthDigest.decode(month, str(token), bytes(kept[0]["body"]), lambda: packed)
        if old is None:
            return None
        tagged = old.cells[1] is not None
        runs = sorted({(c["station"], c["epoch"], c["first_seq"], c["last_seq"]) for c in changes})
        added = " OR ".join(
            "(r.station = ? AND r.epoch = ? AND r.seq BETWEEN ? AND ?)" for _ in runs
        )
        where = f"{_WHERE} AND ({added})"
        params: list[Any] = [*month_bounds(month), *(x for run in runs for x in run)]
        parts = [
            f"SELECT 0 AS part, CAST(NULL AS TEXT) AS tag, {_KEYS}, {_VALUES} "
            f"FROM records r WHERE {where}"
        ]
        with_ = ""
        if tagged:
            with_ = profile_facts(self.db.name)
            parts.append(
                f"SELECT 1, p.tag, {_KEYS}, {_VALUES} FROM records r {PROFILE_JOIN} WHERE {where}"
            )
            params += params
        parts.append(_PROFILED)
        cells, _seen, profiled = _gather(self.db.exec(with_ + " UNION ALL ".join(parts), params))
        if profiled and not tagged:
            return None  # profiles came: the month needs its tagged cells
        digest = _fold(old, cells[0], cells[1] if tagged else None)
        if digest is None:
            return None
        return digest, [int(c["id"]) for c in changes]

    def _save(self, digest: MonthDigest, seen: list[int]) -> bool:
        """Take exactly the change rows this build saw; keep the body only if they were all
        still there (another builder took none of them: it would have built a later state)."""
        if self.db.name == "postgresql":  # one statement, the ids as an array
            sql = "DELETE FROM digest_changes WHERE id = ANY(?) RETURNING id"
            taken = len(self.db.exec(sql, (seen,)))
        else:
            taken = 0
            for k in range(0, len(seen), 500):
                chunk = seen[k : k + 500]
                marks = ", ".join("?" * len(chunk))
                sql = f"DELETE FROM digest_changes WHERE id IN ({marks}) RETURNING id"
                taken += len(self.db.exec(sql, chunk))
        if taken != len(seen):
            raise _Taken
        self.db.exec(
            "UPDATE month_digests SET token = ?, body = ?, cells = ?, built_at = ? WHERE month = ?",
            (digest.token, digest.encode(), digest.packed_cells, utc_now(), digest.month),
        )
        return True

    def _read(
        self, month: str, start: str, end: str, *, with_changes: bool
    ) -> tuple[MonthDigest, list[int]]:
        """The cells of ``start <= time < end``, and the month's change rows."""
        tagged = bool(self._profiled)
        while True:
            digest, seen, profiled = self._statement(month, start, end, tagged, with_changes)
            if profiled == tagged or tagged:
                self._profiled = profiled
                return digest, seen
            tagged = self._profiled = True  # profiles came since: read them too

    def _statement(
        self, month: str, start: str, end: str, tagged: bool, with_changes: bool
    ) -> tuple[MonthDigest, list[int], bool]:
        """One statement, so one snapshot on both databases: the cells' rows, the change
        rows, and whether any profile fact exists (a build without the tagged cells is kept
        only if none did in that snapshot)."""
        params: list[Any] = [start, end]
        # the weighings themselves: summing them here costs less than a GROUP BY's sort
        parts = [
            f"SELECT 0 AS part, CAST(NULL AS TEXT) AS tag, {_KEYS}, {_VALUES} "
            f"FROM records r WHERE {_WHERE}"
        ]
        with_ = ""
        if tagged:
            with_ = profile_facts(self.db.name)
            parts.append(
                f"SELECT 1, p.tag, {_KEYS}, {_VALUES} FROM records r {PROFILE_JOIN} WHERE {_WHERE}"
            )
            params += [start, end]
        parts.append(_PROFILED)
        if with_changes:
            parts.append(
                "SELECT 2, CAST(NULL AS TEXT), CAST(NULL AS TEXT), CAST(NULL AS TEXT), "
                "CAST(NULL AS TEXT), id, CAST(NULL AS BIGINT), 0, 0, 0, 0 "
                "FROM digest_changes WHERE month = ?"
            )
            params.append(month)
        # tuples (not fetch's dicts): tens of thousands of rows a month
        cells, seen, profiled = _gather(self.db.exec(with_ + " UNION ALL ".join(parts), params))
        digest = _digest_of(month, cells[0], cells[1] if tagged else None)
        return digest, seen, profiled


class _Taken(Exception):
    """Another builder took some of this build's change rows first."""


def _sortable(key: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(("", "") if k is None else ("~", k) for k in key)
