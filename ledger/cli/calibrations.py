"""``ledger calibrations``: every zero, span and check the stations' technicians ran."""

from __future__ import annotations

import json
from typing import Any

import click

from common.i18n import _

from ..store import queries
from .context import load_config, open_ledger, shown, when

__all__ = ["calibrations"]


@click.command()
@click.option("--station", help="Only this station.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_context
def calibrations(ctx: click.Context, station: str | None, as_json: bool) -> None:
    """Calibration history of the stations: every zero, span and check their technicians ran.

    \b
    Examples:
      ledger calibrations
      ledger calibrations --station ressourcerie-nord-1 --json
    """
    store = open_ledger(load_config(ctx))
    try:
        rows = queries.calibrations(store, station)
    finally:
        store.close()
    for r in rows:
        data = _data(r["data"])
        if as_json:
            click.echo(json.dumps({**r, "data": data}, ensure_ascii=False))
            continue
        click.echo(
            f"{when(r['recorded_at']):<16}  {r['station']:<24} {shown(r['reason']):<5}  "
            f"{shown(data.get('verdict')):<10}  {shown(r['operator'])}  {shown(r['scale_id'])}"
        )
    if not as_json:
        click.echo(_("{n} calibration record(s)").format(n=len(rows)), err=True)


def _data(text: str | None) -> dict[str, Any]:
    """A calibration record's data (JSON text); an unreadable one shows as empty."""
    try:
        data = json.loads(text or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
