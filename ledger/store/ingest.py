"""Ingest: every record exactly once, the contiguous chained head, clock repair and voids.

Ingest of one (station, epoch) is serialised by its ``heads`` row: created if missing
(``ON CONFLICT DO NOTHING``), then read ``FOR UPDATE`` on PostgreSQL (SQLite has a single
writer anyway), so two workers given batches of the same station take turns and each record is
stored once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sync.wire import RECORD_FIELDS, genesis_hash

from .conflicts import Inquiry
from .dialect import Dialect
from .digests import Digests
from .models import Incoming, IngestResult, utc_now
from .privacy import Privacy
from .profiles import Profiles, profile_tags

__all__ = ["INSERT_COLUMNS", "WAITING_FOR_REPAIR", "Ingest"]

_COLUMNS = list(RECORD_FIELDS)
# a record is handled as the tuple of its fields in table order (Incoming.rows): no per-field
# lookups
_SEQ, _STATION, _KIND, _RECORDED_AT, _BOOT, _VISIT, _BENEFICIARY, _VOIDS, _DATA = (
    _COLUMNS.index(c)
    for c in (
        "seq",
        "station",
        "kind",
        "recorded_at",
        "boot_id",
        "visit",
        "beneficiary",
        "voids",
        "data",
    )
)
_CLOCK_SYNCED = _COLUMNS.index("clock_synced")
_MONO = _COLUMNS.index("mono_ns")
_HASH = _COLUMNS.index("hash")
_PREV_HASH = _COLUMNS.index("prev_hash")
# a wire field needs a migration that adds its column (tests/ledger/test_store_schema.py)
INSERT_COLUMNS = (*_COLUMNS, "received_at", "occurred_at", "visit_n", "person_n")
_WALK_CHUNK = 500
# whether a boot has a record waiting for its clock repair: through the partial index
# idx_records_unsynced, which holds only those (tests/ledger/test_ledger_store.py checks it)
WAITING_FOR_REPAIR = (
    "SELECT 1 FROM records WHERE station = ? AND epoch = ? AND boot_id = ? "
    "AND clock_synced = 0 AND corrected_at IS NULL AND mono_ns IS NOT NULL LIMIT 1"
)


@dataclass(slots=True)
class _Part:
    """One batch of a head's share of a group: its rows, then what ingest made of them."""

    batch: Incoming
    rows: Sequence[tuple[Any, ...]]
    new: int = 0  # records stored from it
    conflicts: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Ids:
    """A transaction's integer ids (migrations step 5): (station, visit) -> n and the code as
    received -> (code as stored, n)."""

    visits: dict[tuple[str, str], int] = field(default_factory=dict)
    persons: dict[str, tuple[str, int]] = field(default_factory=dict)


class Ingest:
    """Stores validated batches, one transaction per group of batches."""

    def __init__(
        self,
        db: Dialect,
        privacy: Privacy,
        inquiry: Inquiry,
        profiles: Profiles,
        digests: Digests,
    ) -> None:
        self.db = db
        self.privacy = privacy
        self.inquiry = inquiry
        self.profiles = profiles
        self.digests = digests
        # the transaction's changed months (``YYYY-MM``), and the first month whose profile
        # facts may have moved (a tag scanned: every later month too), for the month digests
        self._months: set[str] = set()
        self._facts_from: str | None = None
        # records added: (month, station, epoch, first seq, last seq), every seq new here
        self._added: list[tuple[str, str, str, int, int]] = []

    def ingest_many(self, batches: Sequence[Incoming]) -> list[IngestResult]:
        """Several batches in one transaction: one commit for all (group commit). The heads
        are locked first, in one order, so two workers' groups never wait on each other in a
        cycle; then each head takes all its batches of the group at once (one lookup, one
        insert, one head update), so the statements per transaction do not grow with the
        batches."""
        self.privacy.require_writable()

        rows = [batch.rows for batch in batches]

        def body() -> list[IngestResult]:
            self._months, self._facts_from, self._added = set(), None, []
            now = utc_now()
            heads = {
                key: self._lock_head(*key, now)
                for key in sorted({(b.station, b.epoch) for b in batches})
            }
            ids = self._assign_ids(batches, rows)
            results: dict[int, IngestResult] = {}
            for key, head in heads.items():
                mine = [i for i, b in enumerate(batches) if (b.station, b.epoch) == key]
                parts = [_Part(batches[i], rows[i]) for i in mine]
                results.update(zip(mine, self._ingest(key, head, parts, ids, now), strict=True))
            self.digests.appended(self._added)
            self.digests.changed(self._months)
            if self._facts_from is not None:
                self.digests.changed_from(self._facts_from)
            return [results[i] for i in range(len(batches))]

        return self.db.atomic(body)

    def _lock_head(self, station: str, epoch: str, now: str) -> tuple[int, str | None, int]:
        self.db.exec(
            "INSERT INTO heads (station, epoch, acked_through, last_hash, received_through, "
            "first_seen, updated_at) VALUES (?, ?, 0, ?, 0, ?, ?) "
            "ON CONFLICT (station, epoch) DO NOTHING",
            (station, epoch, self.privacy.kept_hash(genesis_hash(epoch)), now, now),
        )
        row = self.db.exec(
            "SELECT acked_through, last_hash, received_through FROM heads "
            "WHERE station = ? AND epoch = ?" + self.db.for_update,
            (station, epoch),
        )[0]
        # last_hash NULL: the head's record was erased (erase_beneficiary), its hash with it
        return int(row[0]), None if row[1] is None else str(row[1]), int(row[2])

    def _assign_ids(
        self, batches: Sequence[Incoming], rows: list[Sequence[tuple[Any, ...]]]
    ) -> _Ids:
        """The visit and person ids of every record in ``batches``, numbered where new.

        Keys go in sorted order, once per transaction: two workers that create the same new
        ids lock them in the same order. An id made for a record that turns out a duplicate
        or a conflict is harmless: it counts nothing, and a purge removes unused ones."""
        ids = _Ids()
        visits = sorted(
            {
                (b.station, str(r[_VISIT]))
                for b, batch_rows in zip(batches, rows, strict=True)
                for r in batch_rows
                if r[_VISIT]
            }
        )
        for key, n in self.db.number("visit_ids", ("station", "visit"), visits).items():
            ids.visits[(str(key[0]), str(key[1]))] = n
        codes = {r[_BENEFICIARY] for batch_rows in rows for r in batch_rows} - {None, ""}
        stored = {code: str(self.privacy.pseudonym(code)) for code in codes}
        numbers = self.db.number(
            "person_ids", ("beneficiary",), sorted({(c,) for c in stored.values()})
        )
        ids.persons = {code: (kept, numbers[(kept,)]) for code, kept in stored.items()}
        return ids

    def _ingest(
        self,
        key: tuple[str, str],
        head: tuple[int, str | None, int],
        parts: list[_Part],
        ids: _Ids,
        now: str,
    ) -> list[IngestResult]:
        """One head's batches of the group, in the order received: each record stored once
        (a seq already stored, or sent twice in the group, is a duplicate of the first), then
        the head advanced over the consecutive, chained records."""
        station, epoch = key
        acked, last_hash, received = head
        spans = [(p.rows[0][_SEQ], p.rows[-1][_SEQ]) for p in parts]
        existing = self._existing(station, epoch, spans)
        # the stored form of each record's (hash, prev_hash) (keyed when pseudonymising); the
        # chain inside a batch was checked on the station's own hashes by decode_batch
        keyed = self.privacy.kept_hash
        new: dict[int, tuple[_Part, int, tuple[Any, Any]]] = {}  # seq -> where, hashes
        for part in parts:
            if self.privacy.pseudonymised:
                kept = [(keyed(r[_HASH]), keyed(r[_PREV_HASH])) for r in part.rows]
            else:
                kept = [(r[_HASH], r[_PREV_HASH]) for r in part.rows]
            for i, row in enumerate(part.rows):
                seq = row[_SEQ]
                if seq in existing:
                    seen = existing[seq]
                elif seq in new:
                    seen = new[seq][2][0]
                else:
                    if seq > acked:
                        new[seq] = (part, i, kept[i])
                        part.new += 1
                    # else: acked once and purged since (retention): never stored again
                    continue
                # NULL: an erased person's record, its hash gone; stored, so a duplicate
                if seen is not None and seen != kept[i][0]:
                    part.conflicts.append(f"seq {seq}: same key, other content")
                    self.inquiry.add_conflict(_record(row), "content", seen, now)
        order = sorted(new)
        added = [new[seq][0].rows[new[seq][1]] for seq in order]
        if added:
            self.db.insert(
                "records",
                INSERT_COLUMNS,
                self._rows(added, [new[seq][2] for seq in order], now, ids),
            )
            self._note_added(station, epoch, added, ids)
        # advance over consecutive, chained records: first the new ones in memory (the usual
        # in-order case), then from the table (duplicates, or what out-of-order batches left
        # beyond a gap)
        for seq in order:
            if seq != acked + 1:
                break
            part, i, (hash_, prev_hash) = new[seq]
            if last_hash is not None and prev_hash != last_hash:
                part.conflicts.append(f"seq {seq}: not chained to seq {acked}")
                self.inquiry.add_conflict(_record(part.rows[i]), "chain", last_hash, now)
                break
            acked, last_hash = seq, hash_
        if added:
            self._correct_times(station, epoch, added)
            self._mark_voided(station, epoch, added)
        received = max(received, *(p.rows[-1][_SEQ] for p in parts))
        if received > acked:
            said = [c for p in parts for c in p.conflicts]
            before = len(said)
            acked, last_hash = self._walk(station, epoch, acked, last_hash, said)
            parts[-1].conflicts += said[before:]  # a break in the chain the walk found
        self.db.exec(
            "UPDATE heads SET acked_through = ?, last_hash = ?, received_through = ?, "
            "updated_at = ? WHERE station = ? AND epoch = ?",
            (acked, last_hash, received, now, station, epoch),
        )
        return [
            IngestResult(
                station,
                epoch,
                acked,
                received,
                p.new,
                len(p.rows) - p.new,
                tuple(p.conflicts),
            )
            for p in parts
        ]

    def _existing(
        self, station: str, epoch: str, spans: list[tuple[int, int]]
    ) -> dict[int, str | None]:
        """The stored hash of every seq of these spans (merged where they touch)."""
        merged: list[list[int]] = []
        for first, last in sorted(spans):
            if merged and first <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], last)
            else:
                merged.append([first, last])
        found: dict[int, str | None] = {}
        for first, last in merged:
            found.update(
                self.db.exec(
                    "SELECT seq, hash FROM records WHERE station = ? AND epoch = ? "
                    "AND seq BETWEEN ? AND ?",
                    (station, epoch, first, last),
                )
            )
        return found

    def _note_added(
        self, station: str, epoch: str, added: list[tuple[Any, ...]], ids: _Ids
    ) -> None:
        """The months the added records (in seq order) join, in runs of consecutive seqs (a
        kept digest reads those records only; occurred_at is recorded_at until a clock
        repair), and the profile tags scanned at the counter (one small table for reports by
        profile)."""
        for row in added:
            seq, month = row[_SEQ], str(row[_RECORDED_AT])[:7]
            run = self._added[-1] if self._added else None
            if run and run[:3] == (month, station, epoch) and run[4] == seq - 1:
                self._added[-1] = (*run[:4], seq)
            else:
                self._added.append((month, station, epoch, seq, seq))
        scanned: set[tuple[str, str]] = set()
        for row in added:
            if row[_BENEFICIARY] and row[_DATA]:
                tags = profile_tags(row[_DATA])
                if tags:
                    scanned.update((ids.persons[row[_BENEFICIARY]][0], t) for t in tags)
                    self._facts_changed(str(row[_RECORDED_AT])[:7])
        self.profiles.keep_scanned(sorted(scanned))

    def _rows(
        self,
        added: list[tuple[Any, ...]],
        hashes: list[tuple[Any, Any]],
        now: str,
        ids: _Ids,
    ) -> list[tuple[Any, ...]]:
        """The rows inserted (INSERT_COLUMNS): each record's fields, then its ids and times;
        the stored code and hashes put in where the ledger pseudonymises."""
        persons, visits = ids.persons, ids.visits
        rows = []
        for record in added:
            code, visit = record[_BENEFICIARY], record[_VISIT]
            person = persons.get(code) if code else None
            person_n = person[1] if person else None
            visit_n = visits.get((record[_STATION], visit)) if visit else None
            rows.append((*record, now, record[_RECORDED_AT], visit_n, person_n))
        if self.privacy.pseudonymised:  # the stored code and keyed hashes in place
            for i, (row, kept) in enumerate(zip(rows, hashes, strict=True)):
                values = list(row)
                values[_HASH], values[_PREV_HASH] = kept
                code = values[_BENEFICIARY]
                if code:
                    values[_BENEFICIARY] = persons[code][0]
                rows[i] = tuple(values)
        return rows

    def _correct_times(self, station: str, epoch: str, added: list[tuple[Any, ...]]) -> None:
        """A Pi without RTC boots with a stale clock. Within one boot the monotonic clock is
        right, so once a record with a synchronised clock arrives, every unsynchronised record
        of that boot gets ``corrected_at = anchor.recorded_at + (mono_ns - anchor.mono_ns)``,
        the anchor being the boot's first synchronised record. ``recorded_at`` is kept as sent;
        ``occurred_at`` follows ``corrected_at``."""
        self._keep_anchors(station, epoch, added)
        for boot in sorted({r[_BOOT] for r in added if r[_BOOT]}):
            # the usual case, a synchronised clock: nothing waits for repair, skip the anchor
            if not self.db.exec(WAITING_FOR_REPAIR, (station, epoch, boot)):
                continue
            anchor = self.db.exec(
                "SELECT recorded_at, mono_ns FROM boot_anchors "
                "WHERE station = ? AND epoch = ? AND boot_id = ?",
                (station, epoch, boot),
            )
            if not anchor:
                continue
            anchor_at, anchor_mono = anchor[0]
            try:
                base = datetime.fromisoformat(str(anchor_at).replace("Z", "+00:00"))
            except ValueError:
                continue
            rows = self.db.exec(
                "SELECT seq, mono_ns, occurred_at, data LIKE '%\"profile\"%' FROM records "
                "WHERE station = ? AND epoch = ? "
                "AND boot_id = ? AND clock_synced = 0 AND corrected_at IS NULL "
                "AND mono_ns IS NOT NULL",
                (station, epoch, boot),
            )
            updates = []
            for seq, mono_ns, before, profiled in rows:
                when = base + timedelta(microseconds=(int(mono_ns) - int(anchor_mono)) // 1000)
                text = when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
                updates.append((text, text, station, epoch, seq))
                # the record leaves one month for another (a scanned tag moves with it)
                self._months.update((str(before)[:7], text[:7]))
                if profiled:
                    self._facts_changed(min(str(before)[:7], text[:7]))
            if updates:
                self.db.many(
                    "UPDATE records SET corrected_at = ?, occurred_at = ? "
                    "WHERE station = ? AND epoch = ? AND seq = ?",
                    updates,
                )

    def _keep_anchors(self, station: str, epoch: str, added: list[tuple[Any, ...]]) -> None:
        """Each boot's anchor, its first synchronised record with a monotonic time, kept in
        ``boot_anchors`` (one row a boot) as records are added: the repair reads it there
        instead of an index of every record's boot. A record that arrives later with a lower
        seq (batches out of order) takes its place, as the old query's ORDER BY seq did."""
        first: dict[str, tuple[Any, ...]] = {}
        for r in added:  # in seq order: the first one of a boot is its lowest
            if r[_BOOT] and r[_CLOCK_SYNCED] == 1 and r[_MONO] is not None:
                first.setdefault(r[_BOOT], r)
        if first:
            self.db.many(
                "INSERT INTO boot_anchors (station, epoch, boot_id, seq, recorded_at, mono_ns) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (station, epoch, boot_id) DO UPDATE SET "
                "seq = excluded.seq, recorded_at = excluded.recorded_at, "
                "mono_ns = excluded.mono_ns WHERE excluded.seq < boot_anchors.seq",
                [
                    (station, epoch, boot, r[_SEQ], r[_RECORDED_AT], r[_MONO])
                    for boot, r in sorted(first.items())
                ],
            )

    def _mark_voided(self, station: str, epoch: str, new: Sequence[tuple[Any, ...]]) -> None:
        """``voided_by`` on the records a void cancels, whichever of the two arrived first."""
        pairs = {(int(r[_VOIDS]), int(r[_SEQ])) for r in new if r[_KIND] == "void" and r[_VOIDS]}
        # voids that came before the records they cancel (batches out of order), looked up
        # over each run of consecutive new seqs (usually one)
        runs: list[list[int]] = []
        for r in new:
            if runs and r[_SEQ] == runs[-1][1] + 1:
                runs[-1][1] = r[_SEQ]
            else:
                runs.append([r[_SEQ], r[_SEQ]])
        for first, last in runs:
            pairs.update(
                (int(target), int(seq))
                for target, seq in self.db.exec(
                    "SELECT voids, seq FROM records WHERE station = ? AND epoch = ? "
                    "AND kind = 'void' AND voids BETWEEN ? AND ?",
                    (station, epoch, first, last),
                )
            )
        if pairs:
            # a target added in this batch is read as it now is when its month takes the
            # batch in; an older one changes a month already digested: that month is stale
            added = {r[_SEQ] for r in new}
            targets = sorted({target for target, _seq in pairs} - added)
            for k in range(0, len(targets), _WALK_CHUNK):
                chunk = targets[k : k + _WALK_CHUNK]
                marks = ", ".join("?" * len(chunk))
                self._months.update(
                    str(month)
                    for (month,) in self.db.exec(
                        "SELECT DISTINCT substr(occurred_at, 1, 7) FROM records "
                        f"WHERE station = ? AND epoch = ? AND seq IN ({marks})",
                        (station, epoch, *chunk),
                    )
                )
            self.db.set_voided(station, epoch, sorted(pairs))

    def _facts_changed(self, month: str) -> None:
        if self._facts_from is None or month < self._facts_from:
            self._facts_from = month

    def _walk(
        self, station: str, epoch: str, acked: int, last_hash: str | None, conflicts: list[str]
    ) -> tuple[int, str | None]:
        while True:
            rows = self.db.exec(
                "SELECT seq, prev_hash, hash FROM records WHERE station = ? AND epoch = ? "
                f"AND seq > ? ORDER BY seq LIMIT {_WALK_CHUNK}",
                (station, epoch, acked),
            )
            for seq, prev_hash, hash_ in rows:
                if seq != acked + 1:
                    return acked, last_hash
                # NULL on either side: an erased person's record (its hashes removed)
                if prev_hash is not None and last_hash is not None and prev_hash != last_hash:
                    message = f"seq {seq}: not chained to seq {acked}"
                    if message not in conflicts:  # said once when it came in this batch
                        conflicts.append(message)
                    return acked, last_hash
                acked, last_hash = int(seq), None if hash_ is None else str(hash_)
            if len(rows) < _WALK_CHUNK:
                return acked, last_hash


def _record(row: tuple[Any, ...]) -> dict[str, Any]:
    """A record's fields by name (a conflict keeps the record it refused)."""
    return dict(zip(_COLUMNS, row, strict=True))
