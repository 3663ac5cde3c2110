"""``station doctor``: the report a technician reads first: config, devices, store, broker."""

from __future__ import annotations

import shutil
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from common.exits import EX_FAIL, EX_NOPERM, EX_OK
from common.i18n import _
from common.oserrors import explain
from common.units import format_mass
from drivers.base import DriverError, PortError, Reading
from drivers.scale import Ack, Command, ScaleLink
from drivers.scale.probe import port_problem

from ..calibration import load_state
from ..calibration_flow import other_scale_warning
from ..calibration_report import due_line
from ..clock import ClockStatus
from ..config import Config, ConfigError, load_config
from ..store import Store, StoreError
from .context import permission_line, readonly_line, unreadable
from .live import live_daemon

__all__ = ["Check", "doctor", "live_daemon"]

OK, WARN, FAIL = "ok", "warn", "fail"


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    state: str  # ok | warn | fail
    detail: str
    noperm: bool = False  # failed because this user may not read the daemon's files


def _check_store(config: Config) -> Check:
    blocked = unreadable(config.store_path)
    if blocked is not None:
        return Check(_("journal"), FAIL, permission_line(blocked), noperm=True)
    if not config.store_path.exists():
        return Check(
            _("journal"), WARN, _("no journal yet at {path}").format(path=config.store_path)
        )
    try:
        with Store(config.store_path, config.station.id, create=False) as store:
            report = store.verify()
            summary = store.summary()
    except StoreError as exc:
        readonly = readonly_line(config.store_path, exc)
        if readonly is not None:
            return Check(_("journal"), FAIL, readonly, noperm=True)
        return Check(_("journal"), FAIL, str(exc))
    if not report.ok:
        return Check(_("journal"), FAIL, "; ".join(report.problems[:3]))
    return Check(
        _("journal"),
        OK,
        _("{n} records, chain intact, {backlog} not yet synced").format(
            n=report.records, backlog=summary["backlog"]
        ),
    )


def _check_scale(config: Config, live: dict[str, Any] | None) -> Check:
    name = _("scale")
    if live is not None:  # the daemon holds the port: ask it, do not fight it for the line
        scale = live.get("scale") or {}
        state = OK if scale.get("ok") else FAIL
        return Check(name, state, _("daemon says: {detail}").format(detail=scale.get("detail")))
    sc = config.scale
    protocol = sc.make_protocol()
    try:
        with ScaleLink(sc.url, protocol, sc.link(protocol), reply_timeout=sc.reply_timeout) as link:
            reading = link.reading(False, max(2.0, sc.reply_timeout * 2))
    except PortError as exc:
        return Check(name, FAIL, f"{sc.url} ({sc.protocol}): {port_problem(exc)}")
    except (DriverError, OSError) as exc:
        return Check(name, FAIL, f"{sc.url} ({sc.protocol}): {exc}")
    return Check(name, OK, f"{sc.url} ({sc.protocol}): {_weight(reading)}")


def _weight(reading: Reading) -> str:
    if reading.overload:
        return _("overload")
    if reading.underload:
        return _("underload")
    stable = _("stable") if reading.stable else _("moving")
    if reading.net_mg is None:
        return _("no weight in the reply")
    weight = format_mass(reading.net_mg)
    return f"{weight}, {stable}"


def _check_scanner(config: Config, live: dict[str, Any] | None) -> Check:
    name = _("scanner")
    if live is not None:
        state = OK if live.get("scanner_ok") else FAIL
        return Check(
            name,
            state,
            _("daemon says: {detail}").format(
                detail=_("connected") if state == OK else _("disconnected")
            ),
        )
    url = config.scanner.url
    if url.startswith("/") and not Path(url).exists():
        return Check(name, FAIL, _("{url} does not exist (unplugged? udev rule?)").format(url=url))
    return Check(name, OK, url)


def _check_broker(config: Config) -> Check:
    name = _("broker")
    if config.sync is None or not config.sync.enabled:
        return Check(name, WARN, _("no [sync] section: records stay on this station"))
    host, port = config.sync.host, config.sync.port
    try:
        with socket.create_connection((host, port), timeout=3):
            pass
    except OSError as exc:
        return Check(name, FAIL, explain(exc, f"{host}:{port}"))
    return Check(name, OK, _("{host}:{port} accepts connections").format(host=host, port=port))


def _check_clock() -> Check:
    if ClockStatus().synced():
        return Check(_("clock"), OK, _("synchronised"))
    return Check(
        _("clock"),
        WARN,
        _("not synchronised: records are flagged, the ledger repairs their times later"),
    )


def _check_disk(config: Config) -> Check:
    path = config.station.data_dir if config.station.data_dir.exists() else Path("/")
    free_mb = shutil.disk_usage(path).free // (1024 * 1024)
    limit = config.station.min_free_mb
    state = FAIL if free_mb < limit else WARN if free_mb < 4 * limit else OK
    return Check(
        _("disk"),
        state,
        _("{free} MB free (refused below {limit} MB)").format(free=free_mb, limit=limit),
    )


def _check_calibration(config: Config, scale_id: str | None = None) -> Check:
    name = _("calibration")
    blocked = unreadable(config.station.data_dir / "calibration.json")
    if blocked is not None:
        return Check(name, FAIL, permission_line(blocked), noperm=True)
    try:
        state = load_state(config.station.data_dir)
    except ValueError as exc:
        return Check(name, FAIL, str(exc))
    sc = config.scale
    if sc.e is None and state.verified_at is None:
        # no metrology configured and never verified: nothing is tracked, say how to start
        return Check(name, WARN, _("not tracked: set [scale] e and run station calibrate check"))
    detail = due_line(config).split(": ", 1)[-1]
    if state.other_scale(scale_id):
        return Check(name, FAIL, other_scale_warning(state, scale_id or "").split(": ", 1)[-1])
    if state.failed:  # a failed check: the scale weighs outside its limits
        return Check(name, FAIL, detail)
    late = state.overdue(sc.calibration_interval_days)
    return Check(name, WARN if late else OK, detail)


def _scale_id(config: Config, live: dict[str, Any] | None) -> str | None:
    """The scale's identity now (``protocol:serial``), as the daemon or the scale says it."""
    sc = config.scale
    if sc.scale_id:
        return sc.scale_id
    if live is not None:
        return (live.get("scale") or {}).get("id") or None
    protocol = sc.make_protocol()
    if protocol.request(Command.IDENTIFY) is None:
        return None
    try:
        with ScaleLink(sc.url, protocol, sc.link(protocol), reply_timeout=sc.reply_timeout) as link:
            reply = link.exchange(Command.IDENTIFY, max(1.0, sc.reply_timeout))
    except (DriverError, OSError):
        return None
    if isinstance(reply, Ack) and reply.params:
        return f"{sc.protocol}:{' '.join(reply.params)}"
    return None


@click.command("doctor")
@click.pass_context
def doctor(ctx: click.Context) -> None:
    """One report: config, scale, scanner, journal, broker, clock, disk. Exit 1 on any failure,
    77 when this user may not read the station's files (sudo, or the pesee group).

    \b
    Example:
      station doctor
    """
    marks = {OK: "✔", WARN: "!", FAIL: "✘"}
    path = ctx.obj["config_path"]
    try:
        config = load_config(path)
    except ConfigError as exc:
        click.echo(f"{marks[FAIL]} {_('config')}: {exc.path}: {'; '.join(exc.problems)}")
        sys.exit(1)
    live = live_daemon(config)
    checks: list[Callable[[], Check]] = [
        lambda: Check(_("config"), OK, str(path)),
        lambda: Check(
            _("daemon"),
            OK if live else WARN,
            _("running (pid {pid})").format(pid=live["pid"]) if live else _("not running"),
        ),
        lambda: _check_scale(config, live),
        lambda: _check_scanner(config, live),
        lambda: _check_store(config),
        lambda: _check_broker(config),
        _check_clock,
        lambda: _check_disk(config),
        lambda: _check_calibration(config, _scale_id(config, live)),
    ]
    failed = noperm = False
    for run in checks:
        check = run()
        failed = failed or check.state == FAIL
        noperm = noperm or check.noperm
        click.echo(f"{marks[check.state]} {check.name}: {check.detail}")
    sys.exit(EX_NOPERM if noperm else EX_FAIL if failed else EX_OK)
