"""``ledger codes``: beneficiary cards with fresh codes (never issued twice), the registry's sheets.

Codes follow the network's pattern as the office publishes it (the registry's
``[[beneficiary_patterns]]``, the rule the stations then read codes by), with its check digit;
each one is recorded as issued (``issued_codes``) before its card is printed.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any, NoReturn

import click

from common.exits import EX_CANTCREAT, EX_CONFIG, EX_DATAERR, EX_USAGE, fail
from common.i18n import _, language, ngettext
from common.printing import (
    Card,
    Label,
    Pattern,
    PatternError,
    Section,
    TooWide,
    render_cards,
)
from common.printing.cli import need_pdf, sheet_options, write_sheets
from sync.wire import Registry

from ..report_render import spreadsheet_text
from ..store import SqlLedgerStore
from ..store.issued import CodesExhausted
from .context import load_config, open_ledger

__all__ = ["codes"]

MAX_CARDS = 1000  # one run: a hundred A4 pages


def _registry(store: SqlLedgerStore, station: str) -> Registry:
    registries = store.registries()
    found = registries.get(station) or registries.get("all")
    if found is None:
        _refuse(
            _("No registry yet: import one first (ledger registry import registry.toml)."),
            EX_CONFIG,
            store,
        )
    return found


def _refuse(message: str, code: int, store: SqlLedgerStore | None = None) -> NoReturn:
    if store is not None:
        store.close()
    fail(message, code)


def _day(value: date) -> str:
    return value.strftime("%d/%m/%Y") if language() == "fr" else value.isoformat()


def _structure(registry: Registry, code: str) -> str:
    """The referring structure's name; "" when the registry does not know ``code``."""
    for item in registry.referrers:
        if item.get("code") == code:
            return str(item.get("name") or code)
    return ""


def _pattern(registry: Registry, referrer: str) -> Pattern:
    """The network's pattern for this structure's codes: the first that carries the structure
    (a ``referrer`` group it fits), else the first pattern; PatternError when none can."""
    patterns = [Pattern.from_mapping(p) for p in registry.beneficiary_patterns]
    if not patterns:
        raise PatternError(
            _(
                "the registry gives no beneficiary code pattern: add the stations' one to the "
                'registry ([[beneficiary_patterns]], e.g. regex = "B(?P<referrer>\\\\d{{3}})'
                '\\\\d{{6}}\\\\d", check_digit = "luhn") and import it, so cards and stations agree'
            )
        )
    carrying = [p for p in patterns if p.carries_referrer]
    reasons: list[PatternError] = []
    for pattern in carrying or patterns:
        try:
            pattern.make(referrer)
        except PatternError as exc:
            reasons.append(exc)
            continue
        return pattern
    raise reasons[0]


def _write_csv(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, ["code", "referrer", "structure", "issued", "printed"])
        writer.writeheader()
        for row in rows:
            writer.writerow({k: spreadsheet_text(str(v)) for k, v in row.items()})


@click.group()
def codes() -> None:
    """Beneficiary cards and the registry's code sheets, as A4 PDFs."""


@codes.command("cards")
@click.option("--referrer", help="The referring structure the cards are for (its code).")
@click.option(
    "--count",
    type=click.IntRange(1, MAX_CARDS),
    default=10,
    show_default=True,
    help="How many fresh codes (cards) to issue.",
)
@click.option("--reprint", "reprint", help="Print again the card of an issued code (a lost card).")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The PDF file to write (10 cards to an A4 page).",
)
@click.option(
    "--csv",
    "csv_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the codes as CSV, for the office's records.",
)
@click.pass_context
def cards(
    ctx: click.Context,
    referrer: str | None,
    count: int,
    reprint: str | None,
    output: Path,
    csv_path: Path | None,
) -> None:
    """Issue COUNT fresh beneficiary codes for a referring structure and print their cards
    (bank-card size, ten to an A4 page): the structure's name, Code 128 and QR, never a
    person's name. A code is never issued twice, nor one the ledger has already seen.

    \b
    Examples:
      ledger codes cards --referrer 014 --count 20 -o cartes-014.pdf --csv cartes-014.csv
      ledger codes cards --reprint B0142345678 -o duplicata.pdf
    """
    if (referrer is None) == (reprint is None):
        fail(_("Error: give --referrer CODE (new cards) or --reprint CODE (one card)."), EX_USAGE)
    need_pdf()
    cfg = load_config(ctx)
    store = open_ledger(cfg)
    registry = _registry(store, "all")
    today = _day(date.today())
    rows: list[dict[str, Any]] = []
    if reprint is not None:
        code = reprint.strip()
        found = store.issued.get(code)
        if found is None:
            _refuse(
                _("{code} was never issued by this ledger: nothing printed.").format(code=code),
                EX_DATAERR,
                store,
            )
        referrer = found.referrer or ""
        issued = [code]
        footer = _("Duplicate of {day} · show it at every visit").format(day=today)
    else:
        assert referrer is not None
        if not _structure(registry, referrer):
            known = ", ".join(str(r.get("code")) for r in registry.referrers) or "-"
            _refuse(
                _("Unknown referring structure {code} (known: {known}).").format(
                    code=referrer, known=known
                ),
                EX_DATAERR,
                store,
            )
        try:
            pattern = _pattern(registry, referrer)
            issued = store.issued.issue(
                lambda: pattern.make(referrer), count, referrer=referrer, pattern=pattern.name
            )
        except PatternError as exc:
            _refuse(str(exc), EX_CONFIG, store)
        except CodesExhausted:
            _refuse(
                _(
                    "The pattern has no {n} fresh codes left for {code}: none issued. Widen "
                    "the pattern (more digits) in the registry."
                ).format(n=count, code=referrer),
                EX_DATAERR,
                store,
            )
        footer = _("Issued {day} · show it at every visit").format(day=today)
    assert referrer is not None
    name = _structure(registry, referrer) or referrer
    heading = _("Beneficiary card")
    try:
        render_cards(
            output,
            [Card(code, name, heading, footer) for code in issued],
            title=_("Beneficiary cards: {name}").format(name=name),
        )
        if reprint is not None:
            store.issued.reprinted(reprint.strip())
        if csv_path is not None:
            for code in issued:
                printed = store.issued.get(code)
                rows.append(
                    {
                        "code": code,
                        "referrer": referrer,
                        "structure": name,
                        "issued": printed.issued_at[:10] if printed else "",
                        "printed": printed.printed if printed else 1,
                    }
                )
            _write_csv(csv_path, rows)
    except TooWide as exc:  # the codes stay issued: --reprint prints each again
        _refuse(str(exc), EX_DATAERR, store)
    except OSError as exc:
        _refuse(
            _("Cannot write {path}: {error}").format(path=exc.filename, error=exc.strerror),
            EX_CANTCREAT,
            store,
        )
    store.close()
    text = ngettext(
        "{n} card for {name}: {path}", "{n} cards for {name}: {path}", len(issued)
    ).format(n=len(issued), name=name, path=output)
    click.echo(text)
    if csv_path is not None:
        click.echo(_("Codes list: {path}").format(path=csv_path))


@codes.command("sheet")
@sheet_options
@click.option("--station", default="all", help="The registry of this station (default: all).")
@click.pass_context
def sheet(ctx: click.Context, output: Path, layout: str, grid: str, station: str) -> None:
    """Print the office's registry (categories and household profiles) as counter sheets, to
    send to every association. A station prints its own full set with `station codes print`.

    \b
    Examples:
      ledger codes sheet -o registre.pdf
      ledger codes sheet -o etiquettes.pdf --layout labels --grid 2x7
    """
    need_pdf()
    cfg = load_config(ctx)
    store = open_ledger(cfg)
    registry = _registry(store, station)
    store.close()
    profiles = [p for p in registry.extra.get("profiles") or () if isinstance(p, dict)]
    sections = [
        Section(
            _("Categories"),
            tuple(Label(str(c["code"]), str(c["name"])) for c in registry.categories),
        ),
        Section(
            _("Household profiles"),
            tuple(Label(str(p["code"]), str(p.get("name") or p["code"])) for p in profiles),
        ),
    ]
    sections = [s for s in sections if s.labels]
    footer = _("Office registry version {v} · {day} · Pesée").format(
        v=registry.version, day=_day(date.today())
    )
    write_sheets(
        output, sections, layout=layout, grid=grid, title=_("Office registry"), footer=footer
    )
