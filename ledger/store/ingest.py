"""Ingest: every record exactly once, the contiguous chained head, clock repair and voids.

Ingest of one (station, epoch) is serialised by its ``heads`` row: created if missing
(``ON CONFLICT DO NOTHING``), then read ``FOR UPDATE`` on PostgreSQL (SQLite has a single
writer anyway), so two workers given batches of the same station take turns and each record is
stored once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from operator import attrgetter
from typing import Any

from sync.wire import RECORD_FIELDS, Batch, Record, genesis_hash

from .conflicts import Inquiry
from .dialect import Dialect
from .digests import Digests
from .models import IngestResult, utc_now
from .privacy import Privacy
from .profiles import Profiles, profile_tags

__all__ = ["INSERT_COLUMNS", "Ingest"]

_COLUMNS = list(RECORD_FIELDS)
# a record is handled as the tuple of its fields in table order (one attrgetter call for a
# Record; a plain mapping, as tests and benches forge them, by .get): no per-field lookups
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
_HASH = _COLUMNS.index("hash")
_PREV_HASH = _COLUMNS.index("prev_hash")
_FIELDS = attrgetter(*_COLUMNS)
# a wire field needs a migration that adds its column (tests/ledger/test_store_schema.py)
INSERT_COLUMNS = (*_COLUMNS, "received_at", "occurred_at", "visit_n", "person_n")
_WALK_CHUNK = 500


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

    def ingest_many(self, batches: list[Batch]) -> list[IngestResult]:
        """Several batches in one transaction: one commit for all (group commit). The heads
        are locked first, in one order, so two workers' groups never wait on each other in a
        cycle."""
        self.privacy.require_writable()

        rows = [[_values(r) for r in batch.records] for batch in batches]

        def body() -> list[IngestResult]:
            self._months, self._facts_from, self._added = set(), None, []
            for station, epoch in sorted({(b.station, b.epoch) for b in batches}):
                self._lock_head(station, epoch, utc_now())
            ids = self._assign_ids(batches, rows)
            results = [self._ingest(b, r, ids) for b, r in zip(batches, rows, strict=True)]
            self.digests.appended(self._added)
            self.digests.changed(self._months)
            if self._facts_from is not None:
                self.digests.changed_from(self._facts_from)
            return results

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

    def _assign_ids(self, batches: list[Batch], rows: list[list[tuple[Any, ...]]]) -> _Ids:
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

    def _ingest(self, batch: Batch, rows: list[tuple[Any, ...]], ids: _Ids) -> IngestResult:
        station, epoch = batch.station, batch.epoch
        now = utc_now()
        conflicts: list[str] = []
        acked, last_hash, received = self._lock_head(station, epoch, now)
        first, last = rows[0][_SEQ], rows[-1][_SEQ]
        existing = dict(
            self.db.exec(
                "SELECT seq, hash FROM records WHERE station = ? AND epoch = ? "
                "AND seq BETWEEN ? AND ?",
                (station, epoch, first, last),
            )
        )
        # the stored form of each record's (hash, prev_hash) (keyed when pseudonymising); the
        # chain inside the batch was checked on the station's own hashes by decode_batch
        keyed = self.privacy.kept_hash
        if self.privacy.pseudonymised:
            kept = [(keyed(r[_HASH]), keyed(r[_PREV_HASH])) for r in rows]
        else:
            kept = [(r[_HASH], r[_PREV_HASH]) for r in rows]
        new: list[int] = []  # positions in the batch
        for i, row in enumerate(rows):
            seq = row[_SEQ]
            if seq not in existing:
                if seq > acked:
                    new.append(i)
                # else: acked once and purged since (retention): never stored again
                continue
            seen = existing[seq]
            # NULL: an erased person's record, its hash gone; stored, so a duplicate
            if seen is not None and seen != kept[i][0]:
                conflicts.append(f"seq {seq}: same key, other content")
                self.inquiry.add_conflict(batch.records[i], "content", seen, now)
        if new:
            self.db.insert(
                "records", INSERT_COLUMNS, [self._row(rows[i], now, ids, kept[i]) for i in new]
            )
            # added to their months (occurred_at is recorded_at until a clock repair), in runs
            # of consecutive new seqs: a kept digest reads those records only
            for i in new:
                seq, month = rows[i][_SEQ], str(rows[i][_RECORDED_AT])[:7]
                run = self._added[-1] if self._added else None
                if run and run[:3] == (month, station, epoch) and run[4] == seq - 1:
                    self._added[-1] = (*run[:4], seq)
                else:
                    self._added.append((month, station, epoch, seq, seq))
            # tags scanned at the counter: one small table for reports by profile
            scanned: set[tuple[str, str]] = set()
            for i in new:
                if rows[i][_BENEFICIARY] and rows[i][_DATA]:
                    tags = profile_tags(rows[i][_DATA])
                    if tags:
                        scanned.update((ids.persons[rows[i][_BENEFICIARY]][0], t) for t in tags)
                        self._facts_changed(str(rows[i][_RECORDED_AT])[:7])
            self.profiles.keep_scanned(sorted(scanned))
        # advance over consecutive, chained records: first the new ones in memory (the usual
        # in-order case), then from the table (duplicates, or what out-of-order batches left
        # beyond a gap)
        for i in new:
            seq = rows[i][_SEQ]
            if seq != acked + 1:
                break
            if last_hash is not None and kept[i][1] != last_hash:
                conflicts.append(f"seq {seq}: not chained to seq {acked}")
                self.inquiry.add_conflict(batch.records[i], "chain", last_hash, now)
                break
            acked, last_hash = seq, kept[i][0]
        if new:
            added = [rows[i] for i in new]
            self._correct_times(station, epoch, {r[_BOOT] for r in added if r[_BOOT]})
            self._mark_voided(station, epoch, added)
        received = max(received, last)
        if received > acked:
            acked, last_hash = self._walk(station, epoch, acked, last_hash, conflicts)
        self.db.exec(
            "UPDATE heads SET acked_through = ?, last_hash = ?, received_through = ?, "
            "updated_at = ? WHERE station = ? AND epoch = ?",
            (acked, last_hash, received, now, station, epoch),
        )
        return IngestResult(
            station,
            epoch,
            acked,
            received,
            len(new),
            len(rows) - len(new),
            tuple(conflicts),
        )

    def _row(
        self, record: tuple[Any, ...], now: str, ids: _Ids, hashes: tuple[str | None, str | None]
    ) -> list[Any]:
        values = list(record)
        values[_HASH], values[_PREV_HASH] = hashes
        code = values[_BENEFICIARY]
        person = ids.persons.get(code) if code else None
        if person is not None:
            values[_BENEFICIARY] = person[0]
        visit = ids.visits.get((record[_STATION], record[_VISIT])) if record[_VISIT] else None
        values += [now, record[_RECORDED_AT], visit, person[1] if person else None]
        return values

    def _correct_times(self, station: str, epoch: str, boots: set[str]) -> None:
        """A Pi without RTC boots with a stale clock. Within one boot the monotonic clock is
        right, so once a record with a synchronised clock arrives, every unsynchronised record
        of that boot gets ``corrected_at = anchor.recorded_at + (mono_ns - anchor.mono_ns)``,
        the anchor being the boot's first synchronised record. ``recorded_at`` is kept as sent;
        ``occurred_at`` follows ``corrected_at``."""
        for boot in sorted(boots):
            # the usual case, a synchronised clock: nothing waits for repair, skip the anchor
            if not self.db.exec(
                "SELECT 1 FROM records WHERE station = ? AND epoch = ? AND boot_id = ? "
                "AND clock_synced = 0 AND corrected_at IS NULL AND mono_ns IS NOT NULL LIMIT 1",
                (station, epoch, boot),
            ):
                continue
            anchor = self.db.exec(
                "SELECT recorded_at, mono_ns FROM records WHERE station = ? AND epoch = ? "
                "AND boot_id = ? AND clock_synced = 1 AND mono_ns IS NOT NULL "
                "ORDER BY seq LIMIT 1",
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

    def _mark_voided(self, station: str, epoch: str, new: Sequence[tuple[Any, ...]]) -> None:
        """``voided_by`` on the records a void cancels, whichever of the two arrived first."""
        pairs = {(int(r[_VOIDS]), int(r[_SEQ])) for r in new if r[_KIND] == "void" and r[_VOIDS]}
        # voids that came before the records they cancel (batches out of order)
        pairs.update(
            (int(target), int(seq))
            for target, seq in self.db.exec(
                "SELECT voids, seq FROM records WHERE station = ? AND epoch = ? "
                "AND kind = 'void' AND voids BETWEEN ? AND ?",
                (station, epoch, new[0][_SEQ], new[-1][_SEQ]),
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


def _values(record: Mapping[str, Any]) -> tuple[Any, ...]:
    """Every field of a record in table order, absent ones None."""
    if type(record) is Record:
        return _FIELDS(record)
    return tuple(map(record.get, _COLUMNS))
