"""``station config check``: is the config valid, and does it match this station's journal?"""

from __future__ import annotations

import click

from common.i18n import _

from .context import load_config

__all__ = ["config_group"]


@click.group("config")
def config_group() -> None:
    """Check the configuration."""


@config_group.command("check")
@click.pass_context
def config_check(ctx: click.Context) -> None:
    """Validate the config file; exit 0 if valid, 78 if invalid, 66 if missing.

    \b
    Example:
      station --config ./station.toml config check
    """
    cfg = load_config(ctx)
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
