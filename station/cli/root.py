"""The ``station`` root command: options every command shares, ``run``, and the command list."""

from __future__ import annotations

import importlib
from collections.abc import Iterator, MutableMapping
from pathlib import Path

import click

from common import clickfr
from common.i18n import LANGUAGES

from .. import __version__
from .context import root_obj
from .start import guarded, setup, start

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
@click.option("--lang", type=click.Choice(LANGUAGES), default=None, help="Language of messages.")
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
    ctx.obj["config_path"] = setup(config_file, lang, verbose)
    ctx.obj["lang"] = lang


@cli.command()
@click.pass_context
def run(ctx: click.Context) -> None:
    """Run the station daemon (what systemd starts).

    \b
    Example:
      station --config /etc/pesee/station.toml run
    """
    obj = root_obj(ctx)
    start(obj["config_path"], obj["lang"])


def main(argv: list[str] | None = None) -> None:
    """The ``station`` command through click (every command line but a plain ``run``:
    station/cli/__init__.py)."""
    clickfr.install()  # click's own words (usage errors, prompts) in the staff's language
    guarded(lambda: cli.main(args=argv, prog_name="station", standalone_mode=True))
