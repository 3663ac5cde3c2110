"""A period's figures from month digests: sums added, visit and person sets united.

Pure Python over :class:`~ledger.store.digests.MonthDigest` cells, no SQL. Each month's
figures per grouping (a *tally*: sums, and visits and persons as bit sets over the month's
ids) are computed once per digest and kept with it; a period's row is then the sum of its
months' sums and the population count of the union (``|``) of their bit sets, so a person seen
in two months counts once, as ``count(DISTINCT …)`` over the records would count them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .digests import Cell, MonthDigest

__all__ = ["DIGESTED", "figures"]

# groupings a digest answers (by beneficiary needs the records)
DIGESTED = ("month", "station", "category", "referrer", "group", "referrer_type", "profile")
_BIT = tuple(1 << i for i in range(8))
# a tally's entry: weighings, items, net_mg, pieces, manual, visits bits, persons bits, referrers
Entry = list[Any]


def _key_fn(
    grouping: str, groups: Mapping[str, str], types: Mapping[str, str]
) -> Callable[[Cell], Any]:
    """The key of a cell as the SQL of ledger/store/queries.py gives it (NULL where it does)."""
    if grouping == "station":
        return lambda c: c[1]
    if grouping == "category":
        return lambda c: c[2] or ""
    if grouping == "referrer":
        return lambda c: c[3] or ""
    if grouping == "group":
        return lambda c: groups.get(c[1])
    if grouping == "referrer_type":
        return lambda c: None if c[3] is None else types.get(c[3])
    if grouping == "profile":
        return lambda c: c[0]
    raise ValueError(f"not a digest grouping: {grouping!r}")


def _bits(lists: list[list[int]], offset: int) -> int:
    """The sorted id lists as one integer, bit ``id - offset`` set for each id."""
    top = max((chunk[-1] for chunk in lists if chunk), default=None)
    if top is None:
        return 0
    buffer = bytearray(((top - offset) >> 3) + 1)
    for ids in lists:
        for x in ids:
            x -= offset
            buffer[x >> 3] |= _BIT[x & 7]
    return int.from_bytes(buffer, "little")


def _offsets(digest: MonthDigest) -> tuple[int, int]:
    """The smallest visit and person ids of the month: its bit sets start there."""
    hit = digest.tallies.get("offsets")
    if hit is None:
        visits = [c[9][0] for c in digest.base if c[9]]
        persons = [c[10][0] for c in digest.base if c[10]]
        hit = digest.tallies["offsets"] = (min(visits, default=0), min(persons, default=0))
    return tuple(hit)


def _tally(
    digest: MonthDigest,
    by: tuple[str, ...],
    groups: Mapping[str, str],
    types: Mapping[str, str],
) -> dict[tuple[Any, ...], Entry]:
    """The month's figures per key of ``by`` (no month among them), kept with the digest."""
    memo = (by, tuple(sorted(groups.items())), tuple(sorted(types.items())))
    hit: dict[tuple[Any, ...], Entry] | None = digest.tallies.get(memo)
    if hit is not None:
        return hit
    cells = digest.base
    if "profile" in by and digest.tagged is not None:
        cells = digest.tagged
    keys = [_key_fn(g, groups, types) for g in by]
    gathered: dict[tuple[Any, ...], list[Any]] = {}
    for cell in cells:
        key = tuple(f(cell) for f in keys)
        acc = gathered.get(key)
        if acc is None:
            acc = gathered[key] = [0, 0, 0, 0, 0, [], [], set()]
        acc[0] += cell[4]
        acc[1] += cell[5]
        acc[2] += cell[6]
        acc[3] += cell[7]
        acc[4] += cell[8]
        acc[5].append(cell[9])
        acc[6].append(cell[10])
        if cell[5] and cell[3] is not None:  # a structure counts where a weighing is live
            acc[7].add(cell[3])
    v_off, p_off = _offsets(digest)
    out = {
        key: [*acc[:5], _bits(acc[5], v_off), _bits(acc[6], p_off), acc[7]]
        for key, acc in gathered.items()
    }
    digest.tallies[memo] = out
    return out


def figures(
    digests: Sequence[MonthDigest],
    by: Sequence[str],
    *,
    groups: Mapping[str, str] | None = None,
    referrer_types: Mapping[str, str] | None = None,
    counted: bool = True,
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Rows as :func:`ledger.store.queries.figures_by_key` gives them (``k0``, ``k1``, the
    sums; with ``counted``, visits, beneficiaries, referrers), and the period's own counts."""
    groups, types = groups or {}, referrer_types or {}
    by = tuple(by)
    at_month = by.index("month") if "month" in by else -1
    rest = tuple(g for g in by if g != "month")
    # per key: sums, then per month (offsets, bits) to unite
    rows: dict[tuple[Any, ...], list[Any]] = {}
    everything: list[tuple[int, int, int, int]] = []
    referrers_all: set[str] = set()
    for digest in digests:
        v_off, p_off = _offsets(digest)
        for key, entry in _tally(digest, rest, groups, types).items():
            if at_month >= 0:
                key = (*key[:at_month], digest.month, *key[at_month:])
            acc = rows.get(key)
            if acc is None:
                acc = rows[key] = [0, 0, 0, 0, 0, [], [], set()]
            for i in range(5):
                acc[i] += entry[i]
            if counted:
                acc[5].append((v_off, entry[5]))
                acc[6].append((p_off, entry[6]))
                acc[7] |= entry[7]
        if counted:
            total = _tally(digest, (), groups, types).get(())
            if total is not None:
                everything.append((v_off, total[5], p_off, total[6]))
                referrers_all |= total[7]
    out = []
    for key in sorted(rows, key=_sortable):
        acc = rows[key]
        row: dict[str, Any] = {f"k{i}": k for i, k in enumerate(key)}
        row.update(weighings=acc[0], items=acc[1], net_mg=acc[2], pieces=acc[3], manual=acc[4])
        if counted:
            row.update(visits=_count(acc[5]), beneficiaries=_count(acc[6]), referrers=len(acc[7]))
        out.append(row)
    totals: dict[str, int] = {}
    if counted:
        totals = {
            "visits": _count([(v, b) for v, b, _p, _q in everything]),
            "beneficiaries": _count([(p, q) for _v, _b, p, q in everything]),
            "referrers": len(referrers_all),
        }
    return out, totals


def _count(parts: list[tuple[int, int]]) -> int:
    """Ids in the union of bit sets, each (offset, bits)."""
    if len(parts) == 1:
        return parts[0][1].bit_count()
    base = min((off for off, bits in parts if bits), default=0)
    union = 0
    for off, bits in parts:
        if bits:
            union |= bits << (off - base)
    return union.bit_count()


def _sortable(key: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple((0, "") if k is None else (1, k) for k in key)
