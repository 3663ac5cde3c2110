"""What the ledger keeps for inquiry: conflicting records and quarantined (refused) messages."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from .dialect import Dialect
from .models import ConflictRow, QuarantineRow, utc_now
from .privacy import Privacy

__all__ = ["Inquiry"]


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

    def quarantine(self, topic: str, payload: bytes, reason: str) -> None:
        """Keep an invalid message for inquiry: its topic, reason, size and SHA-256, and its
        bytes as received (redacted, or none, when pseudonymising: Privacy.kept_payload)."""
        self.privacy.require_writable()
        size, digest = len(payload), hashlib.sha256(payload).hexdigest()
        kept = self.privacy.kept_payload(payload)
        self.db.atomic(
            lambda: self.db.exec(
                "INSERT INTO quarantine (topic, payload, reason, received_at, size, sha256) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (topic, kept, reason, utc_now(), size, digest),
            )
        )

    def quarantined(self) -> list[QuarantineRow]:
        return [
            QuarantineRow.of(r)
            for r in self.db.fetch(
                "SELECT id, topic, reason, received_at, size, sha256 FROM quarantine ORDER BY id"
            )
        ]
