"""``ledger db migrate`` and ``ledger purge``: the database's schema and its retention."""

from __future__ import annotations

from datetime import UTC, date, datetime

import click

from common.i18n import _, ngettext

from ..redact import redacted
from .context import load_config, open_ledger, usage

__all__ = ["db_group", "purge", "retention_cutoff"]


@click.group("db")
def db_group() -> None:
    """The ledger database: schema version and migrations."""


@db_group.command("migrate")
@click.pass_context
def db_migrate(ctx: click.Context) -> None:
    """Bring the database schema to this ledger's version (also done at every start), then
    build the month digests reports read (else the first report after an upgrade builds them).

    \b
    Example:
      ledger db migrate
    """
    cfg = load_config(ctx)
    store = open_ledger(cfg)
    try:
        version = store.schema_version()
        click.echo(
            _("Database {db}: schema version {v} ({dialect})").format(
                db=redacted(cfg.ledger.database), v=version, dialect=store.dialect
            )
        )
        built = store.refresh_digests()
    finally:
        store.close()
    click.echo(
        ngettext(
            "{n} month digest built for reports",
            "{n} month digests built for reports",
            built,
        ).format(n=built)
    )


def retention_cutoff(years: int, today: date | None = None) -> str:
    """The first day of the month ``years`` years before this month: whole months go."""
    today = today or datetime.now(UTC).date()
    return f"{today.year - years:04d}-{today.month:02d}-01"


@click.command()
@click.option("--dry-run", is_flag=True, help="Count what would go; change nothing.")
@click.option("--before", help="Purge before this date instead of [ledger] retention_years.")
@click.option(
    "--mode",
    type=click.Choice(["aggregate", "delete"]),
    default=None,
    help="Default: [ledger] retention_mode.",
)
@click.pass_context
def purge(ctx: click.Context, dry_run: bool, before: str | None, mode: str | None) -> None:
    """Remove records older than the retention period (aggregate mode keeps monthly totals).

    \b
    Examples:
      ledger purge --dry-run
      ledger purge
      ledger purge --before 2021-01-01 --mode delete
    """
    cfg = load_config(ctx)
    if before is None:
        if cfg.ledger.retention_years is None:
            usage(_("no retention period: set [ledger] retention_years or give --before"))
        before = retention_cutoff(cfg.ledger.retention_years)
    else:
        try:
            date.fromisoformat(before)
        except ValueError:
            usage(_("--before must be a date such as 2021-01-01, not {v!r}").format(v=before))
    chosen = mode or cfg.ledger.retention_mode
    store = open_ledger(cfg)
    try:
        result = store.purge(
            before, "delete" if chosen == "delete" else "aggregate", dry_run=dry_run
        )
    finally:
        store.close()
    text = _("{n} record(s) before {before}, {c} conflict(s), {q} quarantined message(s)").format(
        n=result.records, before=before, c=result.conflicts, q=result.quarantined
    )
    if result.mode == "aggregate":
        text += " · " + _("{a} monthly total(s) kept").format(a=result.aggregated_rows)
    click.echo((_("Would remove: ") if dry_run else _("Removed: ")) + text)
