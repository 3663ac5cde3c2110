"""The eco-organism declarations' SQL: a period's live weighings by category, and the records
behind a figure (an audit). ledger/funders/eco.py maps categories to declaration categories.

Every live weighing is an item given out ("sortie réemploi : don"): a station weighs what
leaves the counter. Bounds are record times (start included, end excluded); ``stations``
restricts to one association's stations (None: every station).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from .persons import digests_of
from .visit_digests import period_parts

__all__ = ["ReadStore", "records_of", "weights_by_category", "weights_by_category_sql"]


class ReadStore(Protocol):
    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]: ...


LIVE = "r.kind = 'weighing' AND r.voided_by IS NULL AND r.occurred_at >= ? AND r.occurred_at < ?"


def _where(bounds: tuple[str, str], stations: Sequence[str] | None) -> tuple[str, list[Any]]:
    params: list[Any] = list(bounds)
    where = LIVE
    if stations is not None:
        # no station: nothing (an empty group), not everything
        where += f" AND r.station IN ({', '.join('?' * len(stations)) or 'NULL'})"
        params += list(stations)
    return where, params


def weights_by_category(
    store: ReadStore, bounds: tuple[str, str], stations: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """:func:`weights_by_category_sql` from the visit digests' sums (ledger/store/
    visit_digests.py): the whole months' are kept, a partial month's read from its records."""
    digests = digests_of(store, bounds)
    if digests is None:
        return weights_by_category_sql(store, bounds, stations)
    sums: dict[str, list[int]] = {}
    for part in period_parts(digests, bounds):
        for s in part.of(stations):
            for category, (items, net_mg, _nobody) in s.sums.items():
                acc = sums.setdefault(category, [0, 0])
                acc[0] += items
                acc[1] += net_mg
    return [
        {"category": category, "net_mg": net_mg, "items": items}
        for category, (items, net_mg) in sorted(sums.items())
    ]


def weights_by_category_sql(
    store: ReadStore, bounds: tuple[str, str], stations: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """``category`` ('' for none), ``net_mg`` and ``items`` of the live weighings, per
    category (NULL and '' are one "(none)" row)."""
    where, params = _where(bounds, stations)
    rows = store.fetch(
        "SELECT coalesce(r.category, '') AS category, "
        "sum(coalesce(r.net_mg, 0)) AS net_mg, count(*) AS items "
        f"FROM records r WHERE {where} GROUP BY coalesce(r.category, '') ORDER BY 1",
        params,
    )
    return [
        {"category": str(r["category"]), "net_mg": int(r["net_mg"] or 0), "items": int(r["items"])}
        for r in rows
    ]


def records_of(
    store: ReadStore,
    bounds: tuple[str, str],
    categories: Sequence[str],
    stations: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """The live weighings of ``categories`` ('' for none), in time order: what an auditor
    checks a figure against (station, epoch, seq and uuid name the record in its journal)."""
    if not categories:
        return []
    where, params = _where(bounds, stations)
    where += f" AND coalesce(r.category, '') IN ({', '.join('?' * len(categories))})"
    params += list(categories)
    return store.fetch(
        "SELECT r.occurred_at, r.station, r.epoch, r.seq, r.uuid, "
        "coalesce(r.category, '') AS category, coalesce(r.net_mg, 0) AS net_mg, r.source "
        f"FROM records r WHERE {where} ORDER BY r.occurred_at, r.station, r.epoch, r.seq",
        params,
    )
