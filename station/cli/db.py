"""``station db verify`` and ``station db export``: check and export the station's journal."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from common.exits import EX_FAIL
from common.i18n import _

from .context import load_config, open_store

__all__ = ["db"]


@click.group()
def db() -> None:
    """Check and export the station's journal."""


_store_option = click.option(
    "--store",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Store file (default: data_dir/station.db from the config).",
)


@db.command("verify")
@_store_option
@click.pass_context
def db_verify(ctx: click.Context, store: Path | None) -> None:
    """Prove the journal is intact: seq without gaps, hash chain unbroken, the bytes kept for
    sending equal to their records. Exit 1 on any break.

    \b
    Example:
      station db verify
    """
    cfg = load_config(ctx)
    with open_store(cfg, store) as st:
        report = st.verify()
        epoch = st.epoch
    if report.ok:
        click.echo(
            _("Journal OK: {n} records, seq {first}..{last}, epoch {epoch}").format(
                n=report.records,
                first=report.first_seq or 0,
                last=report.last_seq or 0,
                epoch=epoch,
            )
        )
        return
    click.echo(_("Journal BROKEN ({n} problem(s)):").format(n=len(report.problems)), err=True)
    for problem in report.problems:
        click.echo(f"  - {problem}", err=True)
    if report.advice:
        click.echo(report.advice, err=True)
    sys.exit(EX_FAIL)


@db.command("export")
@_store_option
@click.option(
    "--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True
)
@click.option(
    "--output",
    "-o",
    type=click.File("w", encoding="utf-8"),
    default="-",
    help="Output file (default: standard output).",
)
@click.option("--after", type=int, default=0, help="Only records with seq above this.")
@click.pass_context
def db_export(ctx: click.Context, store: Path | None, fmt: str, output: Any, after: int) -> None:
    """Export the journal as JSON lines or CSV.

    \b
    Examples:
      station db export > records.jsonl
      station db export --format csv -o records.csv --after 1200
    """
    cfg = load_config(ctx)
    with open_store(cfg, store) as st:
        n = st.export(output, fmt, after)
    click.echo(_("{n} records exported").format(n=n), err=True)
