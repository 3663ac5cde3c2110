"""Retention: records older than a date removed, their totals kept as monthly aggregates."""

from __future__ import annotations

from typing import Any, Literal

from .dialect import Dialect
from .digests import Digests
from .migrations import ANCHORS_FROM_RECORDS
from .models import PurgeResult, utc_now
from .privacy import Privacy

__all__ = ["Retention"]

_OLD = "occurred_at < ?"


class Retention:
    """``ledger purge`` (docs/privacy.md)."""

    def __init__(self, db: Dialect, privacy: Privacy, digests: Digests) -> None:
        self.db = db
        self.privacy = privacy
        self.digests = digests

    def purge(
        self, before: str, mode: Literal["aggregate", "delete"], *, dry_run: bool = False
    ) -> PurgeResult:
        """Remove records that occurred before ``before`` (ISO date); in ``aggregate`` mode
        their live weighings are first added to ``aggregates`` (month × station × category ×
        referrer: kg, items, visits), which keeps totals and drops who received what. Old
        conflicts and quarantined messages go too."""
        if mode not in ("aggregate", "delete"):
            raise ValueError(f"unknown retention mode {mode!r}")
        if not dry_run:
            self.privacy.require_writable()
        db = self.db

        def count(sql: str) -> int:
            return int(db.exec(sql, (before,))[0][0])

        def body() -> PurgeResult:
            if not dry_run and db.name == "postgresql":
                # an ingest numbers a returning person's id (INSERT … ON CONFLICT DO NOTHING,
                # no row lock) before storing the records that use it: wait for those in
                # flight, hold new ones until the purge commits, so the unused-id clean-up
                # never deletes an id being reused. Same order as ingest (visits, then
                # persons): no deadlock. SQLite's writers are serial already.
                db.exec("LOCK TABLE visit_ids, person_ids IN SHARE ROW EXCLUSIVE MODE")
            groups = db.exec(
                "SELECT substr(occurred_at, 1, 7), station, coalesce(category, ''), "
                "coalesce(referrer, ''), sum(net_mg), count(*), "
                "count(DISTINCT visit), sum(coalesce(pieces, 0)) FROM records "
                f"WHERE {_OLD} AND kind = 'weighing' AND voided_by IS NULL GROUP BY 1, 2, 3, 4",
                (before,),
            )
            records = count(f"SELECT count(*) FROM records WHERE {_OLD}")
            conflicts = count("SELECT count(*) FROM conflicts WHERE received_at < ?")
            quarantined = count("SELECT count(*) FROM quarantine WHERE received_at < ?")
            if not dry_run:
                if mode == "aggregate" and groups:
                    self._aggregate(groups)
                self._delete(before)
                # the purged months, and any later one whose profile facts began in them
                self.digests.changed_all()
            return PurgeResult(
                before,
                mode,
                records,
                len(groups) if mode == "aggregate" else 0,
                conflicts,
                quarantined,
                dry_run,
            )

        return db.atomic(body)

    def _aggregate(self, groups: list[tuple[Any, ...]]) -> None:
        now = utc_now()
        self.db.many(
            "INSERT INTO aggregates (month, station, category, referrer, net_mg, "
            "items, visits, pieces, aggregated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (month, station, category, referrer) DO UPDATE SET "
            "net_mg = aggregates.net_mg + excluded.net_mg, "
            "items = aggregates.items + excluded.items, "
            "visits = aggregates.visits + excluded.visits, "
            "pieces = coalesce(aggregates.pieces, 0) + excluded.pieces, "
            "aggregated_at = excluded.aggregated_at",
            [(*g[:4], int(g[4] or 0), int(g[5]), int(g[6]), int(g[7] or 0), now) for g in groups],
        )

    def _delete(self, before: str) -> None:
        db = self.db
        db.exec(f"DELETE FROM records WHERE {_OLD}", (before,))
        # ids no record uses any more: their codes go with the records
        db.exec(
            "DELETE FROM person_ids WHERE n NOT IN "
            "(SELECT person_n FROM records WHERE person_n IS NOT NULL)"
        )
        # scanned tags of persons with no record left go with their records
        db.exec(
            "DELETE FROM scanned_profiles WHERE beneficiary NOT IN "
            "(SELECT beneficiary FROM records WHERE beneficiary IS NOT NULL)"
        )
        db.exec(
            "DELETE FROM visit_ids WHERE n NOT IN "
            "(SELECT visit_n FROM records WHERE visit_n IS NOT NULL)"
        )
        # a boot whose anchor was purged: its next synchronised record, if one is left
        gone = db.exec(
            "SELECT 1 FROM boot_anchors a WHERE NOT EXISTS (SELECT 1 FROM records r "
            "WHERE r.station = a.station AND r.epoch = a.epoch AND r.seq = a.seq) LIMIT 1"
        )
        if gone:
            db.exec(
                "DELETE FROM boot_anchors WHERE NOT EXISTS (SELECT 1 FROM records r "
                "WHERE r.station = boot_anchors.station AND r.epoch = boot_anchors.epoch "
                "AND r.seq = boot_anchors.seq)"
            )
            db.exec(ANCHORS_FROM_RECORDS)
        db.exec("DELETE FROM conflicts WHERE received_at < ?", (before,))
        db.exec("DELETE FROM quarantine WHERE received_at < ?", (before,))
