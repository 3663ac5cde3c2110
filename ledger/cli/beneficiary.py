"""``ledger beneficiary show|erase``: a person's access and erasure requests (docs/privacy.md)."""

from __future__ import annotations

import csv
import json
import sys

import click

from common.exits import EX_FAIL, EX_TEMPFAIL, fail
from common.i18n import _
from common.units import format_mass

from .context import MISSING, load_config, open_ledger, shown, when

__all__ = ["beneficiary"]


@click.group()
def beneficiary() -> None:
    """A person's access and erasure requests (docs/privacy.md)."""


@beneficiary.command("show")
@click.argument("code")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table")
@click.pass_context
def beneficiary_show(ctx: click.Context, code: str, fmt: str) -> None:
    """Every record of the person who holds CODE (answer to an access request).

    \b
    Example:
      ledger beneficiary show B0010001234 --format csv > access-request.csv
    """
    store = open_ledger(load_config(ctx))
    try:
        rows = store.beneficiary_records(code)
    finally:
        store.close()
    if fmt == "json":
        click.echo(json.dumps(rows, ensure_ascii=False, indent=1))
        return
    if fmt == "csv":
        from ..report_render import spreadsheet_cell  # station codes: never a live formula

        writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]) if rows else ["occurred_at"])
        writer.writeheader()
        writer.writerows({k: spreadsheet_cell(v) for k, v in r.items()} for r in rows)
        return
    for r in rows:
        voided = " " + _("(voided)") if r["voided_by"] is not None else ""
        click.echo(
            f"{when(r['occurred_at'])} {r['station']:<24} {r['kind']:<9} "
            f"{shown(r['category']):<14} {_mass(r['net_mg']):>14}{voided}"
        )
    click.echo(_("{n} record(s)").format(n=len(rows)), err=True)


def _mass(net_mg: int | None) -> str:
    return MISSING if net_mg is None else format_mass(net_mg)


@beneficiary.command("erase")
@click.argument("code")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def beneficiary_erase(ctx: click.Context, code: str, yes: bool) -> None:
    """Replace CODE by an anonymous tombstone in every record (an erasure request); the kg
    and the count of persons stay, the link to the person is gone. Cannot be undone.

    \b
    Example:
      ledger beneficiary erase B0010001234
    """
    cfg = load_config(ctx)
    if not yes and not click.confirm(_("Erase {code} from every record?").format(code=code)):
        fail(_("Nothing erased."), EX_FAIL)
    store = open_ledger(cfg)
    try:
        n = store.erase_beneficiary(code)
        pending = store.wal_pending
    finally:
        store.close()
    click.echo(_("{n} record(s) no longer linked to {code}").format(n=n, code=code))
    if pending:  # SQLite: a reader kept the WAL busy, the old values are still in it
        fail(
            _(
                "The database's write-ahead log still holds the old values (a reader was busy): "
                "run the same command again in a moment."
            ),
            EX_TEMPFAIL,
        )
