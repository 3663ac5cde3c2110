"""``ledger conflicts`` and ``ledger quarantine``: what the ledger kept aside for an inquiry."""

from __future__ import annotations

import click

from common.i18n import _

from .context import load_config, open_ledger, shown, when

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


@click.command()
@click.pass_context
def quarantine(ctx: click.Context) -> None:
    """Messages refused as invalid, kept raw with the reason.

    \b
    Example:
      ledger quarantine
    """
    store = open_ledger(load_config(ctx))
    try:
        rows = store.quarantined()
    finally:
        store.close()
    for r in rows:
        click.echo(f"{when(r.received_at)} #{r.id} {shown(r.topic)}: {r.reason}")
    click.echo(_("{n} message(s) in quarantine").format(n=len(rows)), err=True)
