"""``ledger report`` and ``ledger totals``: the figures of a period, for people and spreadsheets.

``--to`` is the last day INCLUDED in both (and on the dashboard): one meaning, docs/reports.md."""

from __future__ import annotations

import csv
import json
import re
import sys
from datetime import date
from pathlib import Path

import click

from common.exits import EX_IOERR, fail
from common.i18n import _
from common.units import format_mass, format_number, kg_text

from ..period import Period
from ..report_model import GROUPINGS
from ..reports import totals
from .context import check_year, day, load_config, open_ledger, shown, table_width, usage

__all__ = ["groupings", "report_cmd", "totals_cmd"]

TOTALS_COLUMNS = ["key", "items", "net_mg", "visits", "beneficiaries", "kg"]


def _period(start: str | None, end: str | None) -> Period | None:
    """``--from``/``--to`` as a period (``--to`` included); None: every record."""
    day("--from", start)
    day("--to", end)
    if start is None and end is None:
        return None
    try:
        return Period.parse(start=start, end=end)
    except (ValueError, OverflowError) as exc:
        usage(str(exc))


@click.command("totals")
@click.option("--by", type=click.Choice(sorted(GROUPINGS)), default="category", show_default=True)
@click.option("--from", "start", help="First day INCLUDED, e.g. 2026-01-01.")
@click.option("--to", "end", help="Last day INCLUDED, e.g. 2026-12-31.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table")
@click.pass_context
def totals_cmd(ctx: click.Context, by: str, start: str | None, end: str | None, fmt: str) -> None:
    """kg, items, visits and unique beneficiaries by one grouping (voided records excluded).

    \b
    Examples:
      ledger totals --by category
      ledger totals --by beneficiary --from 2026-11-01 --to 2026-11-30 --format csv
    """
    config = load_config(ctx)  # first: its language is the messages'
    period = _period(start, end)
    store = open_ledger(config)
    try:
        rows = totals(store, by, period)
    except (ValueError, OverflowError) as exc:
        usage(str(exc))
    finally:
        store.close()
    if fmt == "json":
        click.echo(json.dumps(rows, ensure_ascii=False, indent=1))
        return
    if fmt == "csv":
        from ..report_render import spreadsheet_cell  # station codes: never a live formula

        writer = csv.DictWriter(sys.stdout, fieldnames=TOTALS_COLUMNS)
        writer.writeheader()
        writer.writerows(
            {**{k: spreadsheet_cell(v) for k, v in r.items()}, "kg": kg_text(r["net_mg"])}
            for r in rows
        )
        return
    from ..report_render import grouping_title

    labels = [grouping_title(by), _("items"), _("net"), _("visits"), _("persons")]
    click.echo(f"{labels[0]:<24} {labels[1]:>7} {labels[2]:>16} {labels[3]:>7} {labels[4]:>8}")
    for r in rows:
        click.echo(
            f"{shown(r['key']):<24} {format_number(r['items']):>7} "
            f"{format_mass(r['net_mg']):>16} {format_number(r['visits']):>7} "
            f"{format_number(r['beneficiaries']):>8}"
        )
    total = sum(r["net_mg"] for r in rows)
    items = format_number(sum(r["items"] for r in rows))
    click.echo(f"{_('total'):<24} {items:>7} {format_mass(total):>16}")


def groupings(values: tuple[str, ...]) -> tuple[str, ...]:
    """``--by`` values (repeated or comma lists): known ones, at most two, no twice the same."""
    by = tuple(g.strip() for v in values for g in v.split(",") if g.strip())
    for g in by:
        if g not in GROUPINGS:
            usage(
                _("unknown grouping {name!r} (use {known})").format(
                    name=g, known=", ".join(GROUPINGS)
                )
            )
    if len(by) > 2:
        usage(_("at most two groupings"))
    if len(set(by)) != len(by):
        usage(_("the same grouping twice"))
    return by


@click.command("report")
@click.option("--year", help="A calendar year, e.g. 2026 (the current year if no period).")
@click.option("--quarter", help="With --year: 1 to 4.")
@click.option("--month", help="With --year: 1 to 12; or 2026-10 alone.")
@click.option("--from", "start", help="First day INCLUDED, e.g. 2026-01-01.")
@click.option("--to", "end", help="Last day INCLUDED, e.g. 2026-03-31.")
@click.option(
    "--by",
    multiple=True,
    help="Grouping, up to two (repeat or comma list): month (default), category, station, "
    "group, referrer, referrer_type, profile, beneficiary.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json", "html"]),
    default="table",
    show_default=True,
)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to a file."
)
@click.option("--excel", is_flag=True, help="CSV for Excel/LibreOffice: BOM, ';', decimal comma.")
@click.option("--sep", default=",", show_default=True, help="CSV column separator.")
@click.option("--decimal-comma", is_flag=True, help="CSV numbers with a decimal comma.")
@click.option("--no-compare", is_flag=True, help="Skip the same period a year before.")
@click.pass_context
def report_cmd(
    ctx: click.Context,
    year: str | None,
    quarter: str | None,
    month: str | None,
    start: str | None,
    end: str | None,
    by: tuple[str, ...],
    fmt: str,
    output: Path | None,
    excel: bool,
    sep: str,
    decimal_comma: bool,
    no_compare: bool,
) -> None:
    """Figures for a period: kg, items, visits, unique beneficiaries, monthly averages, change
    against the year before; by up to two groupings. Voided weighings are left out.

    \b
    Examples:
      ledger report --year 2026
      ledger report --year 2026 --quarter 3 --by category
      ledger report --from 2026-01-01 --to 2026-06-30 --by referrer_type,profile
      ledger report --year 2026 --by month --format csv --excel -o 2026.csv
      ledger report --year 2026 --by station --format html -o rapport-2026.html
    """
    from ..report_render import to_csv, to_html, to_json, to_table
    from ..reports import build_report

    cfg = load_config(ctx)  # first: its language is the messages'
    by = groupings(by) or ("month",)  # no grouping: the period month by month
    if sep == "\\t":
        sep = "\t"
    if len(sep) != 1:
        usage(_("--sep must be one character"))
    day("--from", start)
    day("--to", end)
    if year and year.strip().isdigit():
        check_year("--year", int(year))
    if month and re.fullmatch(r"\s*\d{4}-\d{1,2}\s*", month):
        check_year("--month", int(month.strip()[:4]))
    try:
        if not any((year, quarter, month, start, end)):
            year = str(date.today().year)
        period = Period.parse(year=year, quarter=quarter, month=month, start=start, end=end)
    except (ValueError, OverflowError) as exc:
        usage(str(exc))
    store = open_ledger(cfg)
    try:
        result = build_report(
            store, period, by, groups=cfg.station_groups(), compare=not no_compare
        )
    except (ValueError, OverflowError) as exc:
        usage(str(exc))
    finally:
        store.close()
    data: bytes
    if fmt == "csv":
        data = to_csv(result, sep=sep, decimal_comma=decimal_comma, excel=excel)
    elif fmt == "json":
        data = (to_json(result) + "\n").encode()
    elif fmt == "html":
        data = to_html(result).encode()
    else:
        data = to_table(result, width=table_width(output)).encode()
    if output is None:
        click.echo(data, nl=False)
        return
    try:
        output.write_bytes(data)
    except OSError as exc:
        fail(_("Cannot write {file}: {error}").format(file=output, error=exc.strerror), EX_IOERR)
    click.echo(_("Written to {file}").format(file=output), err=True)
