"""``ledger conflicts`` and ``ledger quarantine``: what the ledger kept aside for an inquiry."""

from __future__ import annotations

from decimal import Decimal

import click

from common.i18n import _
from common.units import format_number

from .context import day, load_config, open_ledger, shown, when

__all__ = ["conflicts", "quarantine"]

HASH_SHOWN = 12  # characters of a record hash, enough to tell two apart


@click.command()
@click.pass_context
def conflicts(ctx: click.Context) -> None:
    """Records received twice with other content, or not chained: kept for inquiry.

    \b
    Example:
      ledger conflicts
    """
    store = open_ledger(load_config(ctx))
    try:
        rows = store.conflicts()
    finally:
        store.close()
    for r in rows:
        # an erasure (ledger beneficiary erase) empties the hashes that named the person
        click.echo(
            _(
                "{received} {station} epoch {epoch} seq {seq}: {kind} "
                "(stored {stored}, received {new})"
            ).format(
                received=when(r.received_at),
                station=r.station,
                epoch=r.epoch,
                seq=r.seq,
                kind=r.kind,
                stored=shown(r.existing_hash, HASH_SHOWN),
                new=shown(r.new_hash, HASH_SHOWN),
            )
        )
    click.echo(_("{n} conflict(s)").format(n=len(rows)), err=True)


@click.group(invoke_without_command=True)
@click.pass_context
def quarantine(ctx: click.Context) -> None:
    """Messages refused as invalid, kept raw with the reason (oldest first, per station up to
    [ledger] quarantine_max_messages and quarantine_max_bytes; the rest is only counted).

    \b
    Examples:
      ledger quarantine
      ledger quarantine purge --station ressourcerie-nord-1
    """
    if ctx.invoked_subcommand is not None:
        return
    store = open_ledger(load_config(ctx))
    try:
        rows = store.quarantined()
        dropped = store.quarantine_dropped()
    finally:
        store.close()
    for r in rows:
        click.echo(f"{when(r.received_at)} #{r.id} {shown(r.topic)}: {r.reason}")
    for d in dropped:
        click.echo(
            _(
                "station {station}: {n} message(s) ({size}) over its quarantine cap, not kept "
                "(last {last})"
            ).format(
                station=shown(d.station), n=d.messages, size=_size(d.bytes), last=when(d.last_at)
            ),
            err=True,
        )
    click.echo(_("{n} message(s) in quarantine").format(n=len(rows)), err=True)


@quarantine.command("purge")
@click.option("--station", help="Only this station's messages.")
@click.option("--before", help="Only messages received before this date (2026-01-31).")
@click.option("--dry-run", is_flag=True, help="Count what would go; change nothing.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def quarantine_purge(
    ctx: click.Context, station: str | None, before: str | None, dry_run: bool, yes: bool
) -> None:
    """Remove quarantined messages: all, one station's, or those received before a date.
    Without --before, the station's count of dropped messages starts again from zero.

    \b
    Examples:
      ledger quarantine purge --station ressourcerie-nord-1 --dry-run
      ledger quarantine purge --station ressourcerie-nord-1 --yes
      ledger quarantine purge --before 2026-01-01
    """
    cutoff = day("--before", before)
    config = load_config(ctx)
    store = open_ledger(config)
    try:
        since = None if cutoff is None else cutoff.isoformat()
        count, size = store.purge_quarantine(station, since, dry_run=True)
        what = _("{n} quarantined message(s) ({size})").format(n=count, size=_size(size))
        if dry_run:
            click.echo(_("Would remove: {what}").format(what=what))
            return
        if count == 0 and before is not None:  # (without --before, counts may still go)
            click.echo(_("Nothing to remove."))
            return
        if not yes and not click.confirm(_("Remove {what}?").format(what=what)):
            click.echo(_("Nothing removed."))
            return
        count, size = store.purge_quarantine(station, since)
    finally:
        store.close()
    click.echo(
        _("Removed: {what}").format(
            what=_("{n} quarantined message(s) ({size})").format(n=count, size=_size(size))
        )
    )


def _size(size: int) -> str:
    """Bytes as people read them: ``52,3 MiB`` (``Mio`` in French, with its decimal comma)."""
    if size < 1024:
        return _("{n} B").format(n=size)
    if size < 1024 * 1024:
        return _("{n} KiB").format(n=format_number(Decimal(size) / 1024, 1))
    return _("{n} MiB").format(n=format_number(Decimal(size) / (1024 * 1024), 1))
