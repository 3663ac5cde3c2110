"""``ledger registry import``: the office's lists, merged by code and published to the stations."""

from __future__ import annotations

import tomllib
from pathlib import Path

import click

from common.exits import EX_DATAERR, EX_UNAVAILABLE, fail
from common.i18n import _

from ..registry_file import merge_registry, read_registry_file
from .context import load_config, open_ledger

__all__ = ["registry"]

BROKER_WAIT = 10.0  # seconds to reach the broker before leaving the publication to `ledger run`


@click.group()
def registry() -> None:
    """Categories, referring structures and code patterns pushed to the stations."""


@registry.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--station", default="all", help="Only for this station (default: all).")
@click.option("--no-publish", is_flag=True, help="Store it; the running ledger publishes later.")
@click.pass_context
def registry_import(ctx: click.Context, file: Path, station: str, no_publish: bool) -> None:
    """Import a registry (TOML, or CSV kind,code,name) into the one in force, by code, and
    publish it, retained, to the stations. Codes the file does not give stay; a code goes only
    when the file retires it (retired = true).

    \b
    Examples:
      ledger registry import registry.toml
      ledger registry import categories.csv --station ressourcerie-nord-1
    """
    from sync.wire import WireError, decode_registry, encode

    cfg = load_config(ctx, mqtt=not no_publish)  # publishing needs the broker's password
    try:
        imported = read_registry_file(file)
    except (ValueError, OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        fail(_("Invalid registry {file}: {error}").format(file=file, error=exc), EX_DATAERR)
    store = open_ledger(cfg)
    try:
        candidate = merge_registry(
            store.registries().get(station), imported, store.registry_version() + 1
        )
        merged = decode_registry(encode(candidate))  # the stations' own validation
    except (ValueError, WireError) as exc:
        store.close()
        fail(_("Invalid registry {file}: {error}").format(file=file, error=exc), EX_DATAERR)
    try:
        store.set_registry(merged, station)
    finally:
        store.close()
    click.echo(
        _("Registry version {v}: {c} categories, {r} referring structures").format(
            v=merged.version, c=len(merged.categories), r=len(merged.referrers)
        )
    )
    if no_publish:
        return
    from sync.client import MqttLink

    topics = cfg.topics
    topic = topics.config_all if station == "all" else topics.config(station)
    link = MqttLink(cfg.mqtt_settings(client_id=""))
    link.start()
    if not link.connected.wait(BROKER_WAIT):
        link.stop()
        fail(
            _("Broker unreachable: stored, the ledger will publish it when it starts."),
            EX_UNAVAILABLE,
        )
    link.stop([(topic, encode(merged), True)])
    click.echo(_("Published on {topic}").format(topic=topic))
