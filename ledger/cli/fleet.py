"""``ledger stations``: the fleet, each station's last status, backlog, records, conflicts and
quarantine (a station that floods it shows the messages dropped over its cap)."""

from __future__ import annotations

import json

import click

from common.i18n import _

from .context import MISSING, load_config, open_ledger, shown, when

__all__ = ["calibration_cell", "quarantine_cell", "stations"]


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def stations(ctx: click.Context, as_json: bool) -> None:
    """The fleet: each station's last status, backlog, records, conflicts and quarantine
    (messages kept; "+N dropped": the station sent more than its quarantine cap).

    \b
    Example:
      ledger stations
    """
    config = load_config(ctx)
    store = open_ledger(config)
    try:
        rows = store.fleet()
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in rows], ensure_ascii=False, indent=1))
        return
    labels = [
        _("station"),
        _("state"),
        _("last seen"),
        _("backlog"),
        _("quarantine"),
        _("records"),
        _("conflicts"),
        _("clock"),
        _("scale"),
        _("calibration"),
    ]
    widths = ["<24", "<10", "<24", ">10", ">18", ">10", ">9", "<8", "<8", "<12"]
    due_days = config.dashboard.calibration_days
    click.echo(" ".join(f"{label:{w}}" for label, w in zip(labels, widths, strict=True)))
    for r in rows:
        cells = [
            r.station,
            _yes_no(r.online, _("online"), _("offline")),
            when(r.last_seen),
            shown(r.backlog),
            quarantine_cell(r.quarantined, r.quarantine_dropped),
            r.records or 0,
            r.conflicts,
            _yes_no(r.clock_synced, _("ok"), _("unsync")),
            _yes_no(r.scale_ok, _("ok"), _("lost")),
            calibration_cell(r.calibration_age_days, due_days),
        ]
        click.echo(" ".join(f"{cell:{w}}" for cell, w in zip(cells, widths, strict=True)))


def quarantine_cell(kept: int, dropped: int) -> str:
    """Messages kept in quarantine, and those dropped over the cap: a station that floods."""
    if not dropped:
        return str(kept)
    return _("{kept} +{dropped} dropped").format(kept=kept, dropped=dropped)


def _yes_no(value: object, yes: str, no: str) -> str:
    return MISSING if value is None else (yes if value else no)


def calibration_cell(age_days: float | None, due_days: int) -> str:
    """Days since the last passing calibration, flagged when due ([dashboard] calibration_days)."""
    if age_days is None:
        return MISSING
    days = _("{n} d").format(n=int(age_days))
    return f"{days} " + _("due") if age_days >= due_days else days
