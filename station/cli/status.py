"""``station status``: the daemon's live state, the journal's figures, the calibration due."""

from __future__ import annotations

import json
import time
from typing import Any

import click

from common.i18n import _

from ..calibration import load_state
from ..calibration_flow import other_scale_warning
from ..calibration_report import due_line
from ..config import Config
from .context import load_config, open_store
from .live import live_daemon

__all__ = ["status"]


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Show the daemon's live state and the store's figures.

    \b
    Example:
      station status
    """
    config = load_config(ctx)
    live = live_daemon(config)
    with open_store(config) as store:
        summary = store.summary()
    if as_json:
        out = {"daemon": live, "store": summary, "calibration": _calibration(config, live)}
        click.echo(json.dumps(out, ensure_ascii=False, indent=1))
        return
    click.echo(_("Station {id}").format(id=config.station.id))
    if live is None:
        click.echo("  " + _("daemon: not running (no {path})").format(path=config.status_path))
    else:
        age = time.time() - float(live.get("written_at", 0))
        scale = live.get("scale", {})
        click.echo(
            "  "
            + _("daemon: running (pid {pid}, updated {age:.0f} s ago)").format(
                pid=live.get("pid"), age=age
            )
        )
        state = _("answering") if scale.get("ok") else _("not answering")
        click.echo(
            "  " + _("scale: {state} ({detail})").format(state=state, detail=scale.get("detail"))
        )
        click.echo(
            "  "
            + _("scanner: {state}").format(
                state=_("connected") if live.get("scanner_ok") else _("disconnected")
            )
        )
        visit = live.get("visit") or {}
        if visit.get("beneficiary"):
            click.echo(
                "  "
                + _("visit: {code}, {n} item(s)").format(
                    code=visit["beneficiary"], n=visit.get("items", 0)
                )
            )
        if live.get("last"):
            click.echo("  " + _("last action: {text}").format(text=live["last"]["text"]))
        click.echo(
            "  "
            + _("clock synchronised: {v}").format(
                v=_("yes") if live.get("clock_synced") else _("no")
            )
        )
    click.echo(
        "  "
        + _("store: {records} records, last seq {last_seq}, not yet synced {backlog}").format(
            **summary
        )
    )
    click.echo("  " + due_line(config))
    scale_id = _live_scale_id(config, live)
    try:
        calibration = load_state(config.station.data_dir)
    except ValueError:
        return  # due_line said it
    if calibration.other_scale(scale_id):
        click.echo("  " + other_scale_warning(calibration, scale_id or ""))


def _live_scale_id(config: Config, live: dict[str, Any] | None) -> str | None:
    """The scale's identity as configured or as the running daemon read it."""
    if config.scale.scale_id:
        return config.scale.scale_id
    return ((live or {}).get("scale") or {}).get("id") or None


def _calibration(config: Config, live: dict[str, Any] | None = None) -> dict[str, Any]:
    """The calibration in force and its due date, for ``station status --json``."""
    try:
        state = load_state(config.station.data_dir)
    except ValueError as exc:
        return {"error": str(exc)}
    interval = config.scale.calibration_interval_days
    due = state.due(interval)
    return {
        **state.to_json(),
        "interval_days": interval,
        "due": due.isoformat() if due else None,
        "overdue": state.overdue(interval),
        "age_days": state.age_days(),
        "last_check_failed": state.failed,
        "other_scale": state.other_scale(_live_scale_id(config, live)),
    }
