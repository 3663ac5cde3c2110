"""``ledger config check`` and ``ledger run``: the configuration, and the ingest service itself."""

from __future__ import annotations

import logging
import signal
import threading

import click

from common.i18n import _
from common.notify import Watchdog, fresh, sd_notify, watchdog_interval

from ..digest_keeper import DigestKeeper
from ..redact import redacted
from .context import load_config, open_ledger

__all__ = ["config_group", "run"]


@click.group("config")
def config_group() -> None:
    """Check the configuration."""


@config_group.command("check")
@click.pass_context
def config_check(ctx: click.Context) -> None:
    """Validate the config file; exit 0 if valid, 78 if invalid, 66 if missing.

    \b
    Example:
      ledger --config ./ledger.toml config check
    """
    cfg = load_config(ctx)
    click.echo(
        _("Configuration OK: database {db}, broker {host}:{port}").format(
            db=redacted(cfg.ledger.database), host=cfg.mqtt.host, port=cfg.mqtt.port
        )
    )
    if cfg.unset_mqtt_password is not None:  # fine for reports, not for `ledger run`
        click.echo(
            _(
                "Note: environment variable {name} (mqtt.password) is not set: reports, the "
                "fleet and the dashboard work, ledger run does not."
            ).format(name=cfg.unset_mqtt_password),
            err=True,
        )


@click.command()
@click.option(
    "--client-id",
    default="",
    help="MQTT client id (default: [mqtt] client_id, else the broker user).",
)
@click.pass_context
def run(ctx: click.Context, client_id: str) -> None:
    """Run the ingest service until SIGTERM (what systemd starts).

    \b
    Example:
      ledger --config /etc/pesee/ledger.toml run
    """
    from ..service import LedgerService

    cfg = load_config(ctx, mqtt=True)
    if logging.getLogger().level > logging.INFO:
        logging.getLogger().setLevel(logging.INFO)
    store = open_ledger(cfg)
    service = LedgerService(cfg, store, client_id=client_id)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_a: stop.set())
    signal.signal(signal.SIGINT, lambda *_a: stop.set())
    service.start()
    logging.getLogger("ledger").info(
        _("ledger running, database %s"), redacted(cfg.ledger.database)
    )
    sd_notify("READY=1\nSTATUS=" + service.summary())
    interval = watchdog_interval()
    watchdog = None
    if interval:
        # the ingest worker wakes at least every second: 10 s without a turn means stuck
        watchdog = Watchdog(
            {"ingest": lambda: service.alive and fresh(lambda: service.heartbeat, 10.0)()},
            service.summary,
            interval,
        )
        watchdog.start()
    # the month digests on a connection of their own: building one never holds up the ingest
    keeper = DigestKeeper(open_ledger(cfg), lambda: service.last_batch_at)
    try:
        while not stop.wait(1.0):
            keeper.step(stop.is_set)
    finally:
        sd_notify("STOPPING=1")
        if watchdog is not None:
            watchdog.stop()
        service.stop()
        keeper.store.close()
        store.close()
