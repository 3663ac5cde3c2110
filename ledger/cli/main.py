"""The ``ledger`` command's root: options every command shares, and the commands themselves."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from common import clickfr
from common.i18n import set_language
from common.version import version

from . import beneficiary, calibrations, db, fleet, inquiry, profiles, registry, report, run, serve
from .codes import codes  # cards and the registry's sheets (issue 16)
from .funders import COMMANDS as FUNDERS_COMMANDS  # households, fead, eco (issue 14)

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(version(), prog_name="ledger")
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Config file (default: $PESEE_LEDGER_CONFIG or /etc/pesee/ledger.toml).",
)
@click.option("--lang", type=click.Choice(["fr", "en"]), default=None, help="Language of messages.")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.pass_context
def cli(ctx: click.Context, config_file: Path | None, lang: str | None, verbose: int) -> None:
    """Pesée ledger: the central office's records of every station.

    \b
    Examples:
      ledger config check
      ledger run
      ledger stations
      ledger totals --by category --from 2026-01-01 --to 2026-12-31
      ledger report --year 2026 --by referrer_type
    """
    ctx.ensure_object(dict)
    ctx.obj["config_path"] = config_file
    ctx.obj["lang"] = lang
    set_language(lang)
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(
        level=max(level, logging.DEBUG), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


# every command of `ledger` (its help lists them by name)
for command in (
    run.config_group,
    run.run,
    fleet.stations,
    report.totals_cmd,
    report.report_cmd,
    profiles.profiles,
    calibrations.calibrations,
    inquiry.conflicts,
    inquiry.quarantine,
    serve.serve,
    serve.passwd,
    registry.registry,
    db.db_group,
    db.purge,
    beneficiary.beneficiary,
    *FUNDERS_COMMANDS,
    codes,
):
    cli.add_command(command)


def main(argv: list[str] | None = None) -> None:
    """The console script ``ledger`` (and ``python -m ledger``)."""
    clickfr.install()  # click's own words (usage errors, "Aborted!", [O/n]) in French too
    cli.main(args=argv, prog_name="ledger", standalone_mode=True)
