"""The ``station`` root command: options every command shares, ``run``, and the command list."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterator, MutableMapping
from pathlib import Path

import click

from common import clickfr
from common.exits import EX_IOERR, EX_NOPERM, fail
from common.i18n import _, set_language

from .. import __version__
from ..config import config_path
from ..store import StoreError
from .context import load_config, permission_line

__all__ = ["cli", "main"]

# name -> (module, attribute): imported when the command is asked for, so `station run` (the
# daemon) loads none of them (issue 18: ~0.7 MiB) and a broken command cannot stop it
COMMANDS = {
    "status": ("status", "status"),
    "config": ("config_check", "config_group"),
    "db": ("db", "db"),
    "scale": ("scale", "scale"),
    "doctor": ("doctor", "doctor"),
    "scanner": ("scanner", "scanner"),
    "panel": ("panel", "panel"),
    "sync": ("sync", "sync"),
    "manual-entry": ("manual", "manual_entry"),
    "technician": ("technician", "technician"),
    "calibrate": ("calibrate", "calibrate"),
    "codes": ("codes", "codes"),
}


class LazyCommands(MutableMapping[str, click.Command]):
    """The root group's commands: a command's module is imported when the command is looked
    up (``station doctor``, a help page, ``items()``), never for another one; the names are
    all there from the start (the command list, "did you mean")."""

    def __init__(self) -> None:
        self.loaded: dict[str, click.Command] = {}

    def __getitem__(self, name: str) -> click.Command:
        if name not in self.loaded and name in COMMANDS:
            module, attribute = COMMANDS[name]
            command = getattr(importlib.import_module(f"{__package__}.{module}"), attribute)
            self.loaded[name] = command
        return self.loaded[name]

    def __setitem__(self, name: str, command: click.Command) -> None:
        self.loaded[name] = command

    def __delitem__(self, name: str) -> None:
        del self.loaded[name]

    def __contains__(self, name: object) -> bool:
        return name in self.loaded or name in COMMANDS

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys([*self.loaded, *COMMANDS]))

    def __len__(self) -> int:
        return len({*self.loaded, *COMMANDS})


@click.group(commands=LazyCommands(), context_settings={"help_option_names": ["-h", "--help"]})
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
    from ..daemon import Daemon, one_malloc_arena  # gpiozero and the devices: only for run

    one_malloc_arena()  # before any thread starts (the daemon's memory, issue 18)
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


def main(argv: list[str] | None = None) -> None:
    """Console entry point."""
    clickfr.install()  # click's own words (usage errors, prompts) in the staff's language
    try:
        cli.main(args=argv, prog_name="station", standalone_mode=True)
    except StoreError as exc:
        fail(_("Store error: {error}").format(error=exc), EX_IOERR)
    except PermissionError as exc:  # a file of the daemon's this user may not read
        fail(permission_line(exc.filename or str(exc)), EX_NOPERM)
