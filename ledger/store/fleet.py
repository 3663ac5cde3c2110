"""The fleet: each station's last status, and how far each of its journals is stored (heads)."""

from __future__ import annotations

import json
import uuid

from sync.wire import StationStatus

from .dialect import Dialect
from .models import FleetRow, HeadRow, utc_now

__all__ = ["Fleet"]

_STATUS_COLUMNS = (
    "station",
    "online",
    "session",
    "epoch",
    "version",
    "last_seen",
    "last_seq",
    "synced_through",
    "backlog",
    "last_sync",
    "last_record_at",
    "clock_synced",
    "scale_ok",
    "scale_detail",
    "calibration_age_days",
    "status",
)

# every station the ledger knows by a status or records, and any station over its quarantine
# cap (credentials that flood the quarantine may send nothing else)
_FLEET = """
WITH names AS (
    SELECT station FROM stations
    UNION SELECT station FROM heads
    UNION SELECT station FROM quarantine_dropped WHERE station <> '' AND messages > 0
)
SELECT n.station, s.online, s.last_seen, s.backlog, s.clock_synced, s.scale_ok,
       s.calibration_age_days, s.version, s.last_record_at,
       (SELECT sum(h.acked_through) FROM heads h WHERE h.station = n.station) AS records,
       (SELECT count(*) FROM conflicts c WHERE c.station = n.station) AS conflicts,
       (SELECT count(*) FROM quarantine q WHERE q.station = n.station) AS quarantined,
       coalesce((SELECT d.messages FROM quarantine_dropped d WHERE d.station = n.station), 0)
           AS quarantine_dropped
FROM names n LEFT JOIN stations s ON s.station = n.station
ORDER BY n.station
"""


def _newer(status: StationStatus, stored: str | None) -> bool:
    """Whether ``status`` was written after the stored one: a station's own goodbye (its final
    figures), not its Last Will (the figures of when its link started)."""
    try:
        before = json.loads(stored or "{}").get("ts") or ""
    except ValueError:
        before = ""
    return bool(status.ts) and status.ts >= before  # whole seconds: the same second counts


class Fleet:
    """Station statuses (the ``stations`` table) and journal heads, as typed rows."""

    def __init__(self, db: Dialect) -> None:
        self.db = db

    def update_status(self, status: StationStatus) -> bool:
        """Keep the newest status of a station; an older one (a stale Will, a late message of
        the journal it had before a re-flash) is ignored: False."""
        return self.db.atomic(lambda: self._update_status(status))

    def _stale(self, status: StationStatus, session: int, epoch: str | None) -> bool:
        """Statuses are ordered by journal (epoch), then by session within a journal. A
        re-flashed station starts a new journal and counts its sessions from 1 again."""
        if not status.epoch or not epoch or status.epoch == epoch:
            return status.session < session
        # two journals: the one the ledger first saw records of later is the newer; a journal
        # with no record yet is newer than any with records (a fresh flash sends its status
        # before its first batch)
        seen = dict(
            self.db.exec(
                "SELECT epoch, first_seen FROM heads WHERE station = ? AND epoch IN (?, ?)",
                (status.station, status.epoch, epoch),
            )
        )
        received, stored = seen.get(status.epoch), seen.get(epoch)
        if received is None:
            return False
        if stored is None:
            return True
        return bool(received < stored)

    def _update_status(self, status: StationStatus) -> bool:
        row = self.db.exec(
            "SELECT session, status, epoch FROM stations WHERE station = ?" + self.db.for_update,
            (status.station,),
        )
        if row and row[0][0] is not None and self._stale(status, int(row[0][0]), row[0][2]):
            return False
        now = utc_now()
        same_journal = not row or not status.epoch or row[0][2] in (None, status.epoch)
        if not status.online and row and same_journal and not _newer(status, row[0][1]):
            # a Will, written when the link started: keep the last known figures, mark offline
            self.db.exec(
                "UPDATE stations SET online = 0, session = ?, last_seen = ? WHERE station = ?",
                (status.session, now, status.station),
            )
            return True
        values = (
            status.station,
            int(status.online),
            status.session,
            status.epoch or None,
            status.version or None,
            now,
            status.last_seq,
            status.synced_through,
            status.backlog,
            status.last_sync,
            status.last_record_at,
            None if status.clock_synced is None else int(status.clock_synced),
            None if status.scale_ok is None else int(status.scale_ok),
            status.scale_detail or None,
            status.calibration_age_days,
            json.dumps(
                {k: getattr(status, k) for k in StationStatus.__slots__}, ensure_ascii=False
            ),
        )
        updates = ", ".join(f"{c} = excluded.{c}" for c in _STATUS_COLUMNS[1:])
        self.db.exec(
            f"INSERT INTO stations ({', '.join(_STATUS_COLUMNS)}) "
            f"VALUES ({', '.join('?' * len(_STATUS_COLUMNS))}) "
            f"ON CONFLICT (station) DO UPDATE SET {updates}",
            values,
        )
        return True

    def head(self, station: str, epoch: str) -> tuple[int, int]:
        """(acked_through, received_through) of one journal; (0, 0) when unknown."""
        rows = self.db.fetch(
            "SELECT acked_through, received_through FROM heads WHERE station = ? AND epoch = ?",
            [station, epoch],
        )
        if not rows:
            return (0, 0)
        return int(rows[0]["acked_through"]), int(rows[0]["received_through"])

    def change_stamp(self) -> tuple[object, ...]:
        """Changes whenever a record is stored, the registry (names) changes, or the figures
        change otherwise (:meth:`figures_changed`): cheap (heads has a row per station
        journal), for caches of figures computed from the records."""
        rows = self.db.fetch(
            "SELECT count(*) AS journals, sum(acked_through) AS acked, max(updated_at) AS at, "
            "(SELECT max(updated_at) FROM registry) AS names, "
            "(SELECT value FROM ledger_meta WHERE name = 'figures_changed') AS figures FROM heads"
        )
        return tuple(rows[0].values()) if rows else ()

    def figures_changed(self) -> None:
        """Move the change stamp for what changes figures without a record: profiles and
        households imported, a purge, an erasure (a dashboard in another process reads it)."""
        self.db.atomic(
            lambda: self.db.exec(
                "INSERT INTO ledger_meta (name, value) VALUES ('figures_changed', ?) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (uuid.uuid4().hex,),
            )
        )

    def heads(self) -> list[HeadRow]:
        return [
            HeadRow.of(r) for r in self.db.fetch("SELECT * FROM heads ORDER BY station, first_seen")
        ]

    def fleet(self) -> list[FleetRow]:
        """One row per station: its last status, its heads, conflicts and last record."""
        return [FleetRow.of(r) for r in self.db.fetch(_FLEET)]
