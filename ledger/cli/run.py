"""``ledger config check`` and ``ledger run``: the configuration, and the ingest service itself."""

from __future__ import annotations

import logging
import signal
import threading
import time

import click

from common.i18n import _
from common.notify import Watchdog, fresh, sd_notify, watchdog_interval

from ..redact import redacted
from ..store import SqlLedgerStore
from .context import load_config, open_ledger

__all__ = ["DIGESTS_EVERY_S", "config_group", "run"]

# how often `ledger run` builds the month digests new records made stale (docs/reports.md): a
# report or a dashboard view then reads them instead of building the month itself
DIGESTS_EVERY_S = 30.0


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
    keeper = open_ledger(cfg)
    next_digests = 0.0
    try:
        while not stop.wait(1.0):
            if time.monotonic() >= next_digests:
                _keep_digests(keeper, stop)
                next_digests = time.monotonic() + DIGESTS_EVERY_S
    finally:
        sd_notify("STOPPING=1")
        if watchdog is not None:
            watchdog.stop()
        service.stop()
        keeper.close()
        store.close()


def _keep_digests(keeper: SqlLedgerStore, stop: threading.Event) -> None:
    """Build the stale month digests; a database error is logged and tried again later (the
    ingest has its own connection and its own retries)."""
    try:
        keeper.refresh_digests(stop.is_set)
    except Exception as exc:
        logging.getLogger("ledger").warning(
            _("month digests not built this time: %s"), redacted(str(exc))
        )
