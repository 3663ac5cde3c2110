"""First figures from the ledger: kg, items, visits and unique beneficiaries by one grouping."""

from __future__ import annotations

from typing import Any

import sqlite_utils

__all__ = ["GROUPINGS", "totals"]

GROUPINGS = {
    "category": "r.category",
    "station": "r.station",
    "referrer": "r.referrer",
    "beneficiary": "r.beneficiary",
    "month": "substr(coalesce(r.corrected_at, r.recorded_at), 1, 7)",
}

# weighings that no void record cancels (voids point at (station, epoch, seq))
_LIVE = """
    r.kind = 'weighing' AND NOT EXISTS (
        SELECT 1 FROM records v
        WHERE v.kind = 'void' AND v.station = r.station AND v.epoch = r.epoch AND v.voids = r.seq)
"""


def totals(
    db: sqlite_utils.Database, by: str, start: str | None = None, end: str | None = None
) -> list[dict[str, Any]]:
    """Rows ``{key, items, net_mg, visits, beneficiaries}`` for ``start <= recorded_at < end``."""
    key = GROUPINGS[by]
    where = [_LIVE]
    params: list[Any] = []
    when = "coalesce(r.corrected_at, r.recorded_at)"  # clock repaired where it could be
    if start:
        where.append(f"{when} >= ?")
        params.append(start)
    if end:
        where.append(f"{when} < ?")
        params.append(end)
    sql = f"""
        SELECT {key} AS key, count(*) AS items, sum(r.net_mg) AS net_mg,
               count(DISTINCT r.station || '/' || r.visit) AS visits,
               count(DISTINCT r.beneficiary) AS beneficiaries
        FROM records r WHERE {" AND ".join(where)}
        GROUP BY 1 ORDER BY net_mg DESC
    """
    return list(db.query(sql, params))
