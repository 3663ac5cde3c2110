"""What the ledger keeps for inquiry: conflicting records and quarantined (refused) messages.

The quarantine is capped per station (:class:`QuarantineCap`): a station whose credentials are
used to flood it keeps its oldest messages, the evidence of how it started; what comes over
the cap is counted in ``quarantine_dropped`` (messages and bytes), not kept.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .dialect import Dialect
from .models import ConflictRow, QuarantineRow, utc_now
from .privacy import Privacy

__all__ = ["DroppedCount", "Inquiry", "QuarantineCap", "station_of_topic"]


@dataclass(frozen=True, slots=True)
class QuarantineCap:
    """How much of the quarantine one station may fill ([ledger] quarantine_max_messages and
    quarantine_max_bytes): its messages, and their sizes as received."""

    messages: int = 1000
    bytes: int = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class DroppedCount:
    """What came over one station's cap and was not kept, and when (the first and last)."""

    station: str
    messages: int
    bytes: int
    first_at: str
    last_at: str


def station_of_topic(topic: str) -> str:
    """The station of ``…/stations/{station}/{kind}`` (any prefix: a station id has no "/"),
    "" for any other topic (those share one cap)."""
    parts = topic.split("/")
    if len(parts) >= 3 and parts[-3] == "stations" and parts[-2]:
        return parts[-2]
    return ""


class Inquiry:
    """Conflicts (same key, other content; or not chained) and the quarantine."""

    def __init__(self, db: Dialect, privacy: Privacy) -> None:
        self.db = db
        self.privacy = privacy

    def add_conflict(
        self, record: Mapping[str, Any], kind: str, existing: str | None, now: str
    ) -> None:
        """Keep a conflicting record (codes pseudonymised, hashes keyed), once."""
        new_hash = self.privacy.kept_hash(record["hash"])
        known = self.db.exec(
            "SELECT 1 FROM conflicts WHERE station = ? AND epoch = ? AND seq = ? AND kind = ? "
            "AND new_hash = ?",
            (record["station"], record["epoch"], record["seq"], kind, new_hash),
        )
        if known:
            return  # the same conflict re-sent: kept once
        self.db.exec(
            "INSERT INTO conflicts (station, epoch, seq, kind, existing_hash, new_hash, record, "
            "received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record["station"],
                record["epoch"],
                record["seq"],
                kind,
                existing,
                new_hash,
                json.dumps(self.privacy.hidden(dict(record)), ensure_ascii=False),
                now,
            ),
        )

    def conflicts(self) -> list[ConflictRow]:
        return [ConflictRow.of(r) for r in self.db.fetch("SELECT * FROM conflicts ORDER BY id")]

    def quarantine(
        self, topic: str, payload: bytes, reason: str, cap: QuarantineCap | None = None
    ) -> bool:
        """Keep an invalid message for inquiry: its topic, station, reason, size and SHA-256,
        and its bytes as received (redacted, or none, when pseudonymising:
        Privacy.kept_payload). Over its station's ``cap`` it is only counted: False."""
        self.privacy.require_writable()
        limit = cap or QuarantineCap()
        station = station_of_topic(topic)
        size, digest = len(payload), hashlib.sha256(payload).hexdigest()
        kept = self.privacy.kept_payload(payload)

        def keep() -> bool:
            now = utc_now()
            # the station's row of quarantine_dropped (or a first one) is locked first: two
            # workers quarantining for one station take turns, so the cap holds between them
            self.db.exec(
                "INSERT INTO quarantine_dropped (station, messages, bytes, first_at, last_at) "
                "VALUES (?, 0, 0, ?, ?) ON CONFLICT (station) DO NOTHING",
                (station, now, now),
            )
            self.db.exec(
                "SELECT messages FROM quarantine_dropped WHERE station = ?" + self.db.for_update,
                (station,),
            )
            used = self.db.exec(
                "SELECT count(*), coalesce(sum(size), 0) FROM quarantine WHERE station = ?",
                (station,),
            )[0]
            if int(used[0]) + 1 > limit.messages or int(used[1]) + size > limit.bytes:
                self.db.exec(
                    "UPDATE quarantine_dropped SET first_at = CASE WHEN messages = 0 THEN ? "
                    "ELSE first_at END, messages = messages + 1, bytes = bytes + ?, last_at = ? "
                    "WHERE station = ?",
                    (now, size, now, station),
                )
                return False
            self.db.exec(
                "INSERT INTO quarantine (topic, payload, reason, received_at, size, sha256, "
                "station) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (topic, kept, reason, now, size, digest, station),
            )
            return True

        return self.db.atomic(keep)

    def quarantined(self, station: str | None = None) -> list[QuarantineRow]:
        """The messages kept, oldest first (of one station, or all)."""
        where, params = ("WHERE station = ? ", (station,)) if station is not None else ("", ())
        return [
            QuarantineRow.of(r)
            for r in self.db.fetch(
                "SELECT id, topic, reason, received_at, size, sha256, station FROM quarantine "
                f"{where}ORDER BY id",
                params,
            )
        ]

    def dropped(self) -> list[DroppedCount]:
        """Per station, what came over its cap (stations that lost none are left out)."""
        return [
            DroppedCount(
                r["station"], int(r["messages"]), int(r["bytes"]), r["first_at"], r["last_at"]
            )
            for r in self.db.fetch(
                "SELECT * FROM quarantine_dropped WHERE messages > 0 ORDER BY station"
            )
        ]

    def purge_quarantine(
        self, station: str | None = None, before: str | None = None, *, dry_run: bool = False
    ) -> tuple[int, int]:
        """Remove kept messages (of ``station``, received before ``before``, or all): their
        number and bytes. Without ``before``, the dropped counts of those stations are reset
        too (the incident is closed); with it, they stay."""
        clauses, params = [], []
        if station is not None:
            clauses.append("station = ?")
            params.append(station)
        if before is not None:
            clauses.append("received_at < ?")
            params.append(before)
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""

        def purge() -> tuple[int, int]:
            row = self.db.exec(
                f"SELECT count(*), coalesce(sum(size), 0) FROM quarantine{where}", params
            )[0]
            if not dry_run:
                self.db.exec(f"DELETE FROM quarantine{where}", params)
                if before is None:
                    self.db.exec(
                        "DELETE FROM quarantine_dropped"
                        + (" WHERE station = ?" if station is not None else ""),
                        params,
                    )
            return int(row[0]), int(row[1])

        return self.db.atomic(purge)
