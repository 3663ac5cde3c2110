"""A period's figures from month digests: sums added, visit and person sets united.

Pure Python over :class:`~ledger.store.digests.MonthDigest`, no SQL. Each month's figures per
grouping (a *tally*: sums, and visits and persons as bit sets over the month's ids) come from
the digest's dimension of that grouping (or its cells, for two groupings), computed once per
digest and kept with it; a period's row is then the sum of its months' sums and the population
count of the union (``|``) of their bit sets, so a person seen in two months counts once, as
``count(DISTINCT …)`` over the records counts them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .digests import Entry, MonthDigest, bits_of

__all__ = ["DIGESTED", "figures"]

# groupings a digest answers (by beneficiary needs the records)
DIGESTED = ("month", "station", "category", "referrer", "group", "referrer_type", "profile")
# the dimension a grouping reads, and the place of its value in a cell's key
_DIMENSION = {
    "station": ("station", 1),
    "category": ("category", 2),
    "referrer": ("referrer", 3),
    "group": ("station", 1),
    "referrer_type": ("referrer", 3),
    "profile": ("tag", 0),
}


def _key_fn(
    grouping: str, groups: Mapping[str, str], types: Mapping[str, str]
) -> Callable[[Any], Any]:
    """A stored value's key as the SQL of ledger/store/queries.py gives it (NULL where it
    does: an unmapped station or structure, a weighing without profile)."""
    if grouping in ("category", "referrer"):
        return lambda v: v or ""
    if grouping == "group":
        return lambda v: groups.get(v)
    if grouping == "referrer_type":
        return lambda v: None if v is None else types.get(v)
    return lambda v: v


def _merge(into: Entry | None, entry: Entry) -> Entry:
    if into is None:
        return [*entry[:7], set(entry[7])]
    for i in range(5):
        into[i] += entry[i]
    into[5] |= entry[5]
    into[6] |= entry[6]
    into[7] |= entry[7]
    return into


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
    out: dict[tuple[Any, ...], Entry] = {}
    if not by:
        whole = digest.dims["all"].get(None)
        out = {} if whole is None else {(): whole}
    elif len(by) == 1:
        key = _key_fn(by[0], groups, types)
        for value, entry in digest.dims[_DIMENSION[by[0]][0]].items():
            k = (key(value),)
            out[k] = _merge(out.get(k), entry)
    else:
        out = _from_cells(digest, by, groups, types)
    digest.tallies[memo] = out
    return out


def _from_cells(
    digest: MonthDigest,
    by: tuple[str, ...],
    groups: Mapping[str, str],
    types: Mapping[str, str],
) -> dict[tuple[Any, ...], Entry]:
    """Two groupings at once: from the cells (station × category × referrer [× tag])."""
    base, tagged = digest.cells
    cells = tagged if "profile" in by and tagged is not None else base
    keys = [(_key_fn(g, groups, types), _DIMENSION[g][1]) for g in by]
    gathered: dict[tuple[Any, ...], list[Any]] = {}
    for cell in cells:
        k = tuple(f(cell[at]) for f, at in keys)
        acc = gathered.get(k)
        if acc is None:
            acc = gathered[k] = [0, 0, 0, 0, 0, set(), set(), set()]
        for i in range(5):
            acc[i] += cell[4 + i]
        acc[5].update(cell[9])
        acc[6].update(cell[10])
        if cell[5] and cell[3] is not None:  # a structure counts where a weighing is live
            acc[7].add(cell[3])
    v_off, p_off = digest.offsets
    return {
        k: [*acc[:5], bits_of(acc[5], v_off), bits_of(acc[6], p_off), acc[7]]
        for k, acc in gathered.items()
    }


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
    # per key: the sums, and per month (offset, bits) to unite
    rows: dict[tuple[Any, ...], list[Any]] = {}
    everything: list[tuple[int, int, int, int]] = []
    referrers_all: set[str] = set()
    for digest in digests:
        v_off, p_off = digest.offsets
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
            for entry in digest.dims["all"].values():
                everything.append((v_off, entry[5], p_off, entry[6]))
                referrers_all |= entry[7]
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
