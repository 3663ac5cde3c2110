"""The ``station`` root command: options every command shares, ``run``, and the command list."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from common import clickfr
from common.exits import EX_IOERR, EX_NOPERM, fail
from common.i18n import _, set_language

from .. import __version__
from ..config import config_path
from ..store import StoreError
from .calibrate import calibrate
from .codes import codes
from .config_check import config_group
from .context import load_config, permission_line
from .db import db
from .doctor import doctor
from .manual import manual_entry
from .panel import panel
from .scale import scale
from .scanner import scanner
from .status import status
from .sync import sync
from .technician import technician

__all__ = ["cli", "main"]


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

    config = load_config(ctx)
    if logging.getLogger().level > logging.INFO:
        logging.getLogger().setLevel(logging.INFO)
    try:
        daemon = Daemon(config, config_path=ctx.obj["config_path"])
        if ctx.obj.get("lang"):
            set_language(ctx.obj["lang"])  # --lang wins over the config's language
    except StoreError as exc:
        fail(_("Cannot open the store: {error}").format(error=exc), EX_IOERR)
    except Exception as exc:  # GPIO busy, no pin factory…: say what, exit for systemd to retry
        if ctx.obj.get("lang"):
            set_language(ctx.obj["lang"])  # the daemon switched to the config's language
        fail(_("Cannot start the station: {error}").format(error=exc), 1)
    daemon.run()


for _command in (
    status,
    config_group,
    db,
    scale,
    doctor,
    scanner,
    panel,
    sync,
    manual_entry,
    technician,
    calibrate,
    codes,
):
    cli.add_command(_command)


def main(argv: list[str] | None = None) -> None:
    """Console entry point."""
    clickfr.install()  # click's own words (usage errors, prompts) in the staff's language
    try:
        cli.main(args=argv, prog_name="station", standalone_mode=True)
    except StoreError as exc:
        fail(_("Store error: {error}").format(error=exc), EX_IOERR)
    except PermissionError as exc:  # a file of the daemon's this user may not read
        fail(permission_line(exc.filename or str(exc)), EX_NOPERM)
