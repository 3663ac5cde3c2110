"""``station config check``: is the config valid, and does it match this station's journal?"""

from __future__ import annotations

import click

from common.exits import EX_CONFIG, fail
from common.i18n import _, ngettext

from ..config import Config, config_warnings
from ..store import journal_info
from .context import load_config, permission_line, unreadable

__all__ = ["config_group"]


@click.group("config")
def config_group() -> None:
    """Check the configuration."""


def journal_problem(config: Config) -> tuple[bool, str] | None:
    """What is wrong between the config and the journal on disk: (fatal, one sentence), or
    None when they agree or there is no journal yet."""
    path = config.store_path
    blocked = unreadable(path)
    if blocked is not None:  # the config may be right: say the journal was not checked
        return False, _("journal not checked: {reason}").format(reason=permission_line(blocked))
    info = journal_info(path)
    if info is None or info.station == config.station.id:
        return None
    if info.last_seq == 0:
        return False, _(
            "the journal {path} was made for station {old} and holds no record: the station "
            "binds it to {new} at its next start."
        ).format(path=path, old=info.station, new=config.station.id)
    return True, ngettext(
        "The journal {path} belongs to station {old} ({n} record), not to {new}: the station "
        'will not start. Put id = "{old}" back in [station], or, if this is a new station, '
        "move the old journal aside (sudo mv {path} {path}.{old}) and restart.",
        "The journal {path} belongs to station {old} ({n} records), not to {new}: the station "
        'will not start. Put id = "{old}" back in [station], or, if this is a new station, '
        "move the old journal aside (sudo mv {path} {path}.{old}) and restart.",
        info.last_seq,
    ).format(path=path, old=info.station, new=config.station.id, n=info.last_seq)


@config_group.command("check")
@click.pass_context
def config_check(ctx: click.Context) -> None:
    """Validate the config file and match it to the journal; exit 0 if valid, 78 if invalid
    or the journal belongs to another station id, 66 if missing. Devices not plugged in are
    warnings.

    \b
    Example:
      station --config ./station.toml config check
    """
    cfg = load_config(ctx)
    problem = journal_problem(cfg)
    if problem is not None and problem[0]:
        fail(problem[1], EX_CONFIG)
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
    notes = config_warnings(cfg) + ([problem[1]] if problem is not None else [])
    for note in notes:
        click.echo("  ! " + note)
