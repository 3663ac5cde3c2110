"""``ledger households``, ``ledger fead`` and ``ledger eco``: household compositions, the FEAD /
ESF+ indicators and eco-organism declarations (ledger/funders; docs/reports.md)."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import click

from common.exits import EX_DATAERR, EX_IOERR, fail
from common.i18n import _

from ..config import LedgerConfig
from ..period import Period
from .context import check_year, day, load_config, open_ledger, shown, table_width, usage

__all__ = ["COMMANDS", "eco_cmd", "fead_cmd", "households", "persons_cmd", "trend_cmd"]


# -- shared options --------------------------------------------------------------------------------
def _period_options(f: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(
        [
            click.option("--year", help="A calendar year, e.g. 2026."),
            click.option("--quarter", help="2026-Q3 (or 2026-T3), or 1 to 4 with --year."),
            click.option("--month", help="With --year: 1 to 12; or 2026-10 alone."),
            click.option("--from", "start", help="First day INCLUDED, e.g. 2026-01-01."),
            click.option("--to", "end", help="Last day INCLUDED, e.g. 2026-12-31."),
            click.option("--group", help="Only the stations of this group (ledger config)."),
            click.option("--station", multiple=True, help="Only this station (repeatable)."),
            click.option(
                "--format",
                "fmt",
                type=click.Choice(["table", "csv", "json", "html"]),
                default="table",
                show_default=True,
            ),
            click.option(
                "-o",
                "--output",
                type=click.Path(dir_okay=False, path_type=Path),
                help="Write to a file.",
            ),
            click.option("--excel", is_flag=True, help="CSV for a spreadsheet: BOM, ';', comma."),
            click.option("--sep", default=",", show_default=True, help="CSV column separator."),
        ]
    ):
        f = option(f)
    return f


def _period(
    year: str | None, quarter: str | None, month: str | None, start: str | None, end: str | None
) -> Period:
    day("--from", start)
    day("--to", end)
    found = re.fullmatch(r"\s*(\d{4})-?[QqTt]([1-4])\s*", quarter or "")
    if found:
        if year and year.strip() != found.group(1):
            usage(_("--quarter {q} is not in --year {y}").format(q=quarter, y=year))
        year, quarter = found.group(1), found.group(2)
    if year and year.strip().isdigit():
        check_year("--year", int(year))
    if month and re.fullmatch(r"\s*\d{4}-\d{1,2}\s*", month):
        check_year("--month", int(month.strip()[:4]))
    try:
        if not any((year, quarter, month, start, end)):
            year = str(date.today().year)
        return Period.parse(year=year, quarter=quarter, month=month, start=start, end=end)
    except (ValueError, OverflowError) as exc:
        usage(str(exc))


def _stations(cfg: LedgerConfig, group: str | None, station: tuple[str, ...]) -> list[str] | None:
    """The stations a report covers: a group's, the ones named, or None (every station)."""
    chosen: list[str] = list(station)
    if group is not None:
        if group not in cfg.groups:
            known = ", ".join(sorted(cfg.groups)) or _("none in the ledger config")
            usage(_("unknown group {name!r} (known: {known})").format(name=group, known=known))
        chosen += [s for s in cfg.groups[group] if s not in chosen]
    return chosen if (group is not None or station) else None


R = TypeVar("R")


def _emit(data: bytes, output: Path | None) -> None:
    if output is None:
        click.echo(data, nl=False)
        return
    try:
        output.write_bytes(data)
    except OSError as exc:
        fail(_("Cannot write {file}: {error}").format(file=output, error=exc.strerror), EX_IOERR)
    click.echo(_("Written to {file}").format(file=output), err=True)


def _write(
    fmt: str,
    report: R,
    renderers: tuple[
        Callable[..., bytes], Callable[[R], str], Callable[[R], str], Callable[..., str]
    ],
    sep: str,
    excel: bool,
    output: Path | None,
) -> None:
    """``report`` in ``fmt`` (its CSV, JSON, HTML and table renderers, in that order), to the
    terminal or ``output``."""
    to_csv, to_json, to_html, to_table = renderers
    if fmt == "csv":
        data = to_csv(report, sep=sep, excel=excel)
    elif fmt == "json":
        data = (to_json(report) + "\n").encode()
    elif fmt == "html":
        data = to_html(report).encode()
    else:
        data = to_table(report, width=table_width(output)).encode()
    _emit(data, output)


def _sep(sep: str) -> str:
    sep = "\t" if sep == "\\t" else sep
    if len(sep) != 1:
        usage(_("--sep must be one character"))
    return sep


# -- ledger households -----------------------------------------------------------------------------
@click.group()
def households() -> None:
    """Household compositions of beneficiary codes (counts of members, never names), for the
    FEAD / ESF+ indicators."""


@households.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--replace", is_flag=True, help="Forget every composition not in this file.")
@click.pass_context
def households_import(ctx: click.Context, file: Path, replace: bool) -> None:
    """Import compositions: CSV with a header line (code;since;until;women;men;children_0_15;
    children_16_17;seniors;disabled;migrants;homeless;single_parents) or TOML [[households]].
    A code's compositions replace its former ones; codes are hashed as the records' when the
    ledger pseudonymises. since/until: first and last day it holds (empty: always).

    \b
    Examples:
      ledger households template > foyers.csv
      ledger households import foyers.csv
      ledger households import foyers.toml --replace
    """
    from ..funders.households import read_compositions

    cfg = load_config(ctx)
    try:
        rows = read_compositions(file)
    except (ValueError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        fail(_("Invalid households file {file}: {error}").format(file=file, error=exc), EX_DATAERR)
    store = open_ledger(cfg)
    try:
        stored = store.import_households(rows, replace_all=replace)
    finally:
        store.close()
    codes = len({c.code for c in rows})
    click.echo(_("{codes} codes, {rows} compositions imported").format(codes=codes, rows=stored))


@households.command("template")
def households_template() -> None:
    """Print the CSV header an office fills in (one line per household and period).

    \b
    Example:
      ledger households template > foyers.csv
    """
    from ..funders.households import template

    click.echo(template(), nl=False)


@households.command("show")
@click.argument("code")
@click.pass_context
def households_show(ctx: click.Context, code: str) -> None:
    """The compositions kept for one code (an access request; docs/privacy.md).

    \b
    Example:
      ledger households show B0010001234
    """
    from ..store.households import KINDS

    store = open_ledger(load_config(ctx))
    try:
        rows = store.households.of(code)
    finally:
        store.close()
    if not rows:
        click.echo(_("No composition for this code."))
        return
    click.echo("  ".join(["since", "until", *KINDS]))
    for r in rows:
        cells = [shown(r["valid_from"]), shown(r["valid_until"]), *(str(r[k]) for k in KINDS)]
        click.echo("  ".join(cells))


# -- ledger fead -----------------------------------------------------------------------------------
@click.command("fead")
@_period_options
@click.option(
    "--estimate",
    is_flag=True,
    help="Add an estimate for households without a composition (the known ones' average).",
)
@click.pass_context
def fead_cmd(
    ctx: click.Context,
    year: str | None,
    quarter: str | None,
    month: str | None,
    start: str | None,
    end: str | None,
    group: str | None,
    station: tuple[str, ...],
    fmt: str,
    output: Path | None,
    excel: bool,
    sep: str,
    estimate: bool,
) -> None:
    """FEAD / ESF+ indicators: persons helped and, of them, women, children (15 or under; under
    18), 65 or over, disabled, migrants / minorities, homeless, single parents — counted from the
    household compositions; households without one are said, and estimated only if asked.

    \b
    Examples:
      ledger fead --year 2026
      ledger fead --from 2026-01-01 --to 2026-06-30 --estimate
      ledger fead --year 2026 --group restos --format csv --excel -o fead-2026.csv
    """
    from ..funders.fead import build_fead
    from ..funders.render import fead_csv, fead_html, fead_json, fead_table

    cfg = load_config(ctx)
    period = _period(year, quarter, month, start, end)
    stations = _stations(cfg, group, station)
    sep = _sep(sep)
    store = open_ledger(cfg)
    try:
        report = build_fead(store, period, estimate=estimate, stations=stations)
    finally:
        store.close()
    _write(fmt, report, (fead_csv, fead_json, fead_html, fead_table), sep, excel, output)


# -- ledger eco ------------------------------------------------------------------------------------
@click.command("eco")
@_period_options
@click.option(
    "--organism", help="The eco-organism's code in the registry (none: show the mapping)."
)
@click.option("--records", is_flag=True, help="The records behind each figure (an audit).")
@click.pass_context
def eco_cmd(
    ctx: click.Context,
    year: str | None,
    quarter: str | None,
    month: str | None,
    start: str | None,
    end: str | None,
    group: str | None,
    station: tuple[str, ...],
    fmt: str,
    output: Path | None,
    excel: bool,
    sep: str,
    organism: str | None,
    records: bool,
) -> None:
    """An eco-organism's "sortie réemploi (don)" declaration: tonnes per declaration category,
    from the registry's [eco] mapping; categories not mapped are listed, never dropped. With no
    --organism: the mapping in force, and the categories no eco-organism declares.

    \b
    Examples:
      ledger eco
      ledger eco --quarter 2026-Q3 --organism ecomaison
      ledger eco --quarter 2026-Q3 --organism ecomaison --records --format csv -o audit.csv
      ledger eco --year 2026 --organism refashion --format html -o refashion-2026.html
    """
    from ..funders.eco import build_eco
    from ..funders.render import eco_csv, eco_html, eco_json, eco_table

    cfg = load_config(ctx)
    if organism is None:
        _show_mapping(cfg, fmt, output)
        return
    period = _period(year, quarter, month, start, end)
    stations = _stations(cfg, group, station)
    sep = _sep(sep)
    store = open_ledger(cfg)
    try:
        report = build_eco(store, period, organism, stations=stations, with_records=records)
    except ValueError as exc:
        fail(_("Error: {message}").format(message=exc), EX_DATAERR)
    finally:
        store.close()
    _write(fmt, report, (eco_csv, eco_json, eco_html, eco_table), sep, excel, output)


def _show_mapping(cfg: LedgerConfig, fmt: str, output: Path | None) -> None:
    """``ledger eco`` without an organism: the mapping in force (table or JSON)."""
    import json

    from ..funders.eco import load_mapping
    from ..funders.render import mapping_table
    from ..report_model import load_names

    store = open_ledger(cfg)
    try:
        mapping = load_mapping(store)
        names = load_names(store).categories
    except ValueError as exc:
        fail(_("Error: {message}").format(message=exc), EX_DATAERR)
    finally:
        store.close()
    if fmt == "json":
        body = {**mapping.as_dict(), "not_declared": mapping.unmapped(names)}
        _emit((json.dumps(body, ensure_ascii=False, indent=1) + "\n").encode(), output)
    else:
        _emit(mapping_table(mapping, names, width=table_width(output)).encode(), output)


# -- ledger persons and ledger trend ---------------------------------------------------------------
@click.command("persons")
@_period_options
@click.pass_context
def persons_cmd(
    ctx: click.Context,
    year: str | None,
    quarter: str | None,
    month: str | None,
    start: str | None,
    end: str | None,
    group: str | None,
    station: tuple[str, ...],
    fmt: str,
    output: Path | None,
    excel: bool,
    sep: str,
) -> None:
    """Persons of a period: new (first seen in the period) versus returning, and how often
    they came (visits per person: mean, median, bands).

    \b
    Examples:
      ledger persons --year 2026
      ledger persons --quarter 2026-Q3 --group restos --format csv -o personnes.csv
    """
    from ..funders.persons import (
        build_persons,
        persons_csv,
        persons_html,
        persons_json,
        persons_table,
    )

    cfg = load_config(ctx)
    period = _period(year, quarter, month, start, end)
    stations = _stations(cfg, group, station)
    sep = _sep(sep)
    store = open_ledger(cfg)
    try:
        report = build_persons(store, period, stations=stations)
    finally:
        store.close()
    _write(
        fmt, report, (persons_csv, persons_json, persons_html, persons_table), sep, excel, output
    )


@click.command("trend")
@click.option("--first", "first", type=int, help="First year (default: the first with records).")
@click.option("--last", "last", type=int, help="Last year (default: the last with records).")
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
@click.option("--excel", is_flag=True, help="CSV for a spreadsheet: BOM, ';', comma.")
@click.option("--sep", default=",", show_default=True, help="CSV column separator.")
@click.pass_context
def trend_cmd(
    ctx: click.Context,
    first: int | None,
    last: int | None,
    fmt: str,
    output: Path | None,
    excel: bool,
    sep: str,
) -> None:
    """A trend over several years: kg, persons, new persons and visits per year, and the
    change from one year to the next (every station).

    \b
    Examples:
      ledger trend
      ledger trend --first 2015 --last 2017 --format csv --excel -o tendance.csv
    """
    from ..funders.persons import build_trend, trend_csv, trend_html, trend_json, trend_table

    cfg = load_config(ctx)
    for flag, value in (("--first", first), ("--last", last)):
        if value is not None:
            check_year(flag, value)
    sep = _sep(sep)
    store = open_ledger(cfg)
    try:
        report = build_trend(store, first, last)
    except ValueError as exc:
        usage(str(exc))
    finally:
        store.close()
    _write(fmt, report, (trend_csv, trend_json, trend_html, trend_table), sep, excel, output)


COMMANDS = (households, fead_cmd, eco_cmd, persons_cmd, trend_cmd)
