"""The ``station`` command: run the daemon, check config, show status, verify and export."""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

import click

from common.i18n import _, set_language

from .. import __version__
from ..config import Config, ConfigError, config_path, load_config
from ..store import Store, StoreError

# sysexits(3): systemd and scripts can tell a bad config from a crash
EX_DATAERR = 65
EX_NOINPUT = 66
EX_IOERR = 74
EX_CONFIG = 78


def _fail(message: str, code: int) -> NoReturn:
    click.echo(message, err=True)
    sys.exit(code)


def _config(ctx: click.Context) -> Config:
    path = ctx.obj["config_path"]
    try:
        config = load_config(path)
    except ConfigError as exc:
        _config_error(exc)
    if ctx.obj.get("lang") is None:
        set_language(config.station.language)
    return config


def _config_error(exc: ConfigError) -> NoReturn:
    lines = [_("Configuration error in {path}:").format(path=exc.path)]
    lines += [f"  - {p}" for p in exc.problems]
    if exc.missing:
        lines.append(_("Create it from station.example.toml, or give another path with --config."))
    _fail("\n".join(lines), EX_NOINPUT if exc.missing else EX_CONFIG)


def _open_store(config: Config, store: Path | None) -> Store:
    path = store or config.store_path
    try:
        return Store(path, config.station.id, create=False)
    except StoreError as exc:
        _fail(_("Cannot open the store: {error}").format(error=exc), EX_IOERR)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="station")
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Config file (default: $PESEE_CONFIG or /etc/pesee/station.toml).",
)
@click.option("--lang", type=click.Choice(["fr", "en"]), default=None, help="Language of messages.")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.pass_context
def cli(ctx: click.Context, config_file: Path | None, lang: str | None, verbose: int) -> None:
    """Pesée weighing station: the daemon and the technician's tools.

    \b
    Examples:
      station config check
      station run
      station status
      station db verify
      station db export --format csv --output records.csv
    """
    ctx.ensure_object(dict)
    ctx.obj["config_path"] = config_path(config_file)
    ctx.obj["lang"] = lang
    set_language(lang)
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(
        level=max(level, logging.DEBUG), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


@cli.command()
@click.pass_context
def run(ctx: click.Context) -> None:
    """Run the station daemon (what systemd starts).

    \b
    Example:
      station --config /etc/pesee/station.toml run
    """
    from ..daemon import Daemon  # imports gpiozero and the device stack only when needed

    config = _config(ctx)
    if logging.getLogger().level > logging.INFO:
        logging.getLogger().setLevel(logging.INFO)
    try:
        daemon = Daemon(config, config_path=ctx.obj["config_path"])
        if ctx.obj.get("lang"):
            set_language(ctx.obj["lang"])  # --lang wins over the config's language
    except StoreError as exc:
        _fail(_("Cannot open the store: {error}").format(error=exc), EX_IOERR)
    except Exception as exc:  # GPIO busy, no pin factory…: say what, exit for systemd to retry
        if ctx.obj.get("lang"):
            set_language(ctx.obj["lang"])  # the daemon switched to the config's language
        _fail(_("Cannot start the station: {error}").format(error=exc), 1)
    daemon.run()


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Show the daemon's live state and the store's figures.

    \b
    Example:
      station status
    """
    from .doctor import live_daemon  # the command modules load at the end of this one

    config = _config(ctx)
    live = live_daemon(config)
    with _open_store(config, None) as store:
        summary = store.summary()
    if as_json:
        out = {"daemon": live, "store": summary, "calibration": _calibration(config)}
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


def _calibration(config: Config) -> dict[str, Any]:
    """The calibration in force and its due date, for ``station status --json``."""
    from ..calibration import load_state

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
    }


@cli.group()
def config() -> None:
    """Check the configuration."""


@config.command("check")
@click.pass_context
def config_check(ctx: click.Context) -> None:
    """Validate the config file; exit 0 if valid, 78 if invalid, 66 if missing.

    \b
    Example:
      station --config ./station.toml config check
    """
    cfg = _config(ctx)
    click.echo(
        _(
            "Configuration OK: {path} (station {id}, scale {protocol} on {url}, {n} categories)"
        ).format(
            path=ctx.obj["config_path"],
            id=cfg.station.id,
            protocol=cfg.scale.protocol,
            url=cfg.scale.url,
            n=len(cfg.categories),
        )
    )


@cli.group()
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
    """Prove the journal is intact: seq without gaps, hash chain unbroken. Exit 1 on any break.

    \b
    Example:
      station db verify
    """
    cfg = _config(ctx)
    with _open_store(cfg, store) as st:
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
    sys.exit(1)


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
    cfg = _config(ctx)
    with _open_store(cfg, store) as st:
        n = st.export(output, fmt, after)
    click.echo(_("{n} records exported").format(n=n), err=True)


from .scale import scale  # noqa: E402 - the group needs the helpers above

cli.add_command(scale)

from .doctor import doctor  # noqa: E402

cli.add_command(doctor)

from .diag import manual_entry, panel, scanner, sync, technician  # noqa: E402

for _command in (scanner, panel, sync, manual_entry, technician):
    cli.add_command(_command)

from .calibrate import calibrate, due_line  # noqa: E402

cli.add_command(calibrate)


def main(argv: list[str] | None = None) -> None:
    """Console entry point."""
    try:
        cli.main(args=argv, prog_name="station", standalone_mode=True)
    except StoreError as exc:
        _fail(_("Store error: {error}").format(error=exc), EX_IOERR)
