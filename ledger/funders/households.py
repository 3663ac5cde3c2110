"""Household composition files (CSV or TOML) read and checked: counts of members per beneficiary
code with dates, never a name (docs/privacy.md); ``ledger households import`` stores them."""

from __future__ import annotations

import csv
import io
import itertools
import tomllib
from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path
from typing import Any

from common.i18n import _

from ..store.households import KINDS, Composition

__all__ = ["COLUMNS", "parse_compositions", "read_compositions", "template"]

# the columns a file may have, in the order a template shows them
COLUMNS = ("code", "since", "until", *KINDS)
# French headers a spreadsheet may use, as the office writes them
ALIASES = {
    "beneficiary": "code",
    "bénéficiaire": "code",
    "beneficiaire": "code",
    "depuis": "since",
    "from": "since",
    "jusqu'au": "until",
    "jusqua": "until",
    "to": "until",
    "femmes": "women",
    "hommes": "men",
    "enfants_0_15": "children_0_15",
    "enfants_16_17": "children_16_17",
    "65_ans_et_plus": "seniors",
    "plus_65": "seniors",
    "handicap": "disabled",
    "migrants_minorites": "migrants",
    "sans_abri": "homeless",
    "parents_isoles": "single_parents",
}
MAX_MEMBERS = 99  # per kind: a household of more is a typing error


def _column(name: str) -> str:
    key = name.strip().strip('"').lower().replace(" ", "_").replace("-", "_")
    return ALIASES.get(key, key)


def _day(value: Any, where: str, field: str) -> str:
    if value in (None, ""):
        return ""
    if isinstance(value, date):
        return value.isoformat()
    try:
        return date.fromisoformat(str(value).strip()).isoformat()
    except ValueError:
        raise ValueError(
            _("{where}: {field} {value!r} is not a date like 2026-01-31").format(
                where=where, field=field, value=value
            )
        ) from None


def _count(value: Any, where: str, field: str) -> int:
    if value in (None, ""):
        return 0
    try:
        n = int(str(value).strip())
    except ValueError:
        n = -1
    if isinstance(value, bool) or not 0 <= n <= MAX_MEMBERS:
        raise ValueError(
            _("{where}: {field} must be a whole number from 0 to {most}, not {value!r}").format(
                where=where, field=field, most=MAX_MEMBERS, value=value
            )
        )
    return n


def _composition(raw: Mapping[str, Any], where: str) -> Composition:
    unknown = sorted(set(raw) - set(COLUMNS))
    if unknown:  # a name, an address, a birth date: refused, not silently dropped
        raise ValueError(
            _("{where}: unknown column {name!r} (known: {known})").format(
                where=where, name=unknown[0], known=", ".join(COLUMNS)
            )
        )
    code = str(raw.get("code") or "").strip()
    if not code:
        raise ValueError(_("{where}: code is required").format(where=where))
    c = Composition(
        code,
        _day(raw.get("since"), where, "since"),
        _day(raw.get("until"), where, "until"),
        **{kind: _count(raw.get(kind), where, kind) for kind in KINDS},
    )
    adults = c.women + c.men
    if c.size == 0:
        raise ValueError(_("{where}: a household has at least one member").format(where=where))
    if c.since and c.until and c.until < c.since:
        raise ValueError(_("{where}: until is before since").format(where=where))
    for kind, most in (
        ("seniors", adults),
        ("single_parents", adults),
        ("disabled", c.size),
        ("migrants", c.size),
        ("homeless", c.size),
    ):
        if getattr(c, kind) > most:
            raise ValueError(
                _("{where}: {field} ({n}) is more than the household's {most}").format(
                    where=where, field=kind, n=getattr(c, kind), most=most
                )
            )
    return c


def _no_overlap(compositions: list[Composition]) -> None:
    """A code's compositions follow each other: two holding on one day are refused."""
    by_code: dict[str, list[Composition]] = {}
    for c in compositions:
        by_code.setdefault(c.code, []).append(c)
    for code, spans in by_code.items():
        spans.sort(key=lambda c: c.since)
        for before, after in itertools.pairwise(spans):
            if before.until == "" or after.since == "" or after.since <= before.until:
                raise ValueError(
                    _("{code}: two compositions hold on the same day (since {a} and {b})").format(
                        code=code, a=before.since or "–", b=after.since or "–"
                    )
                )


def parse_compositions(text: str, toml: bool = False) -> list[Composition]:
    """Compositions from a file's text: CSV with a header line (``code;since;until;women;…``,
    ``;``, ``,`` or tab) or TOML ``[[households]]`` tables. Raises ValueError naming the line."""
    out: list[Composition] = []
    if toml:
        raw = tomllib.loads(text)
        items = raw.get("households", [])
        if not isinstance(items, list) or set(raw) - {"households"}:
            raise ValueError(_("expected [[households]] tables only"))
        for n, item in enumerate(items, start=1):
            if not isinstance(item, dict):
                raise ValueError(_("[[households]] #{n}: expected a table").format(n=n))
            out.append(_composition(item, f"[[households]] #{n}"))
    else:
        lines = [line for line in text.lstrip("\ufeff").splitlines() if line.strip()]
        if not lines:
            return []
        header = lines[0]
        sep = ";" if ";" in header else ("\t" if "\t" in header else ",")
        reader = csv.reader(io.StringIO("\n".join(lines)), delimiter=sep)
        columns = [_column(c) for c in next(reader)]
        if "code" not in columns:
            raise ValueError(_("line 1: a header line with a code column is required"))
        for n, cells in enumerate(reader, start=2):
            if cells and cells[0].lstrip().startswith("#"):
                continue
            if len(cells) > len(columns):
                raise ValueError(_("line {n}: more cells than columns").format(n=n))
            row = dict(zip(columns, cells, strict=False))
            out.append(_composition(row, _("line {n}").format(n=n)))
    _no_overlap(out)
    return out


def read_compositions(path: Path) -> list[Composition]:
    """A composition file: ``.toml`` or CSV (UTF-8, a BOM allowed)."""
    text = path.read_text(encoding="utf-8-sig")
    return parse_compositions(text, toml=path.suffix.lower() == ".toml")


def template(rows: Iterable[Composition] = ()) -> str:
    """The CSV header (and ``rows``) as an office fills it in."""
    lines = [";".join(COLUMNS)]
    for c in rows:
        lines.append(";".join([c.code, c.since, c.until, *(str(getattr(c, k)) for k in KINDS)]))
    return "\n".join(lines) + "\n"
