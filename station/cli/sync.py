"""``station sync status`` and ``station sync now``: the link to the central ledger."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import click

from common.exits import EX_FAIL, EX_TEMPFAIL, EX_UNAVAILABLE, fail
from common.i18n import _

from ..config import Config
from ..control import ControlError, NoDaemon, request, socket_path
from .context import load_config, open_store, require_readable
from .live import live_daemon

__all__ = ["sync"]


@click.group()
def sync() -> None:
    """See and nudge the link to the central ledger."""


def _sync_report(config: Config) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "last_seq": 0,
        "synced_through": 0,
        "backlog": 0,
        "last_record_at": None,
    }
    require_readable(config.store_path)
    if config.store_path.exists():  # else nothing recorded yet: nothing to send
        with open_store(config) as store:
            summary = store.summary()
    live = live_daemon(config)
    sc = config.sync
    return {
        "enabled": bool(sc is not None and sc.enabled),
        "broker": f"{sc.host}:{sc.port}" if sc is not None else None,
        "journal": {
            "last_seq": summary["last_seq"],
            "synced_through": summary["synced_through"],
            "backlog": summary["backlog"],
            "last_record_at": summary["last_record_at"],
        },
        "daemon": None if live is None else {"pid": live.get("pid"), **(live.get("sync") or {})},
    }


def _print_sync(report: dict[str, Any]) -> None:
    j = report["journal"]
    if not report["enabled"]:
        click.echo(_("sync: disabled (no [sync] section): records stay on this station"))
    else:
        click.echo(_("broker: {broker}").format(broker=report["broker"]))
    click.echo(
        _(
            "journal: last seq {last_seq}, acknowledged by the ledger through {synced}, "
            "backlog {backlog}"
        ).format(last_seq=j["last_seq"], synced=j["synced_through"], backlog=j["backlog"])
    )
    d = report["daemon"]
    if d is None:
        click.echo(_("daemon: not running (records are sent when it runs)"))
        return
    if "connected" not in d:
        click.echo(_("daemon: running (pid {pid}), no sync link").format(pid=d["pid"]))
        return
    click.echo(
        _("daemon: running (pid {pid}), {state}").format(
            pid=d["pid"], state=_("connected") if d["connected"] else _("not connected")
        )
    )
    click.echo(
        _("last sync: {when}; backlog {backlog}").format(
            when=d.get("last_sync") or _("never since start"), backlog=d.get("backlog")
        )
    )
    if d.get("last_error"):
        click.echo(_("last error: {error}").format(error=d["last_error"]))


@sync.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def sync_status(ctx: click.Context, as_json: bool) -> None:
    """What the ledger has acknowledged (from the journal) and the link's live state.

    Exit 0; 74 when the journal cannot be opened.

    \b
    Examples:
      station sync status
      station sync status --json | jq .journal.backlog
    """
    report = _sync_report(load_config(ctx))
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False, indent=1))
    else:
        _print_sync(report)


@sync.command("now")
@click.option(
    "--wait",
    type=click.FloatRange(min=0),
    default=0.0,
    help="Then wait up to S seconds for the backlog to reach 0.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def sync_now(ctx: click.Context, wait: float, as_json: bool) -> None:
    """Ask the running daemon to send its unsent records now (over its control socket).

    Exit 0 when the daemon was asked (and, with --wait, the backlog reached 0); 1 when records
    are still waiting after --wait; 69 when no daemon runs; 75 when it did not answer.

    \b
    Examples:
      station sync now
      station sync now --wait 60
    """
    config = load_config(ctx)
    path = socket_path(config.station.runtime_dir)
    deadline = time.monotonic() + wait
    try:
        reply = request(path, {"op": "sync"})
        while reply.get("ok") and reply["sync"]["backlog"] > 0 and time.monotonic() < deadline:
            time.sleep(0.5)
            reply = request(path, {"op": "sync"})
    except NoDaemon:
        fail(
            _(
                "The station daemon is not running (no {path}): nothing to nudge; records are "
                "sent when it runs."
            ).format(path=path),
            EX_UNAVAILABLE,
        )
    except ControlError as exc:
        fail(_("The daemon did not answer: {error}").format(error=exc), EX_TEMPFAIL)
    if not reply.get("ok"):
        fail(
            str(reply.get("error")), EX_TEMPFAIL if reply.get("kind") == "busy" else EX_UNAVAILABLE
        )
    state = reply["sync"]
    if as_json:
        click.echo(json.dumps(state, ensure_ascii=False, indent=1))
    else:
        click.echo(
            _("Sync asked: {state}, backlog {backlog}, ledger has everything through {seq}").format(
                state=_("connected") if state["connected"] else _("not connected"),
                backlog=state["backlog"],
                seq=state["acked_through"],
            )
        )
        if not state["connected"]:
            click.echo(
                _("The link retries by itself (at most every 60 s); last error: {error}").format(
                    error=state["last_error"]
                )
            )
    if wait and state["backlog"] > 0:
        sys.exit(EX_FAIL)
