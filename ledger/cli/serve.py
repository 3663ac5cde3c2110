"""``ledger serve`` (the dashboard) and ``ledger passwd`` (its users' password hashes)."""

from __future__ import annotations

import contextlib
import logging
import re
import signal
from collections.abc import Iterator
from typing import Any

import click

from common.exits import EX_CONFIG, EX_DATAERR, EX_IOERR, fail
from common.i18n import _

from .context import load_config

__all__ = ["passwd", "serve"]

MIN_PASSWORD = 10


def _server_class() -> Any:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn re-raises SIGTERM after its graceful shutdown (exit status -15); systemd and
        scripts read a clean stop better as exit 0, so the signals only ask it to stop here."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            def stop(signum: int, _frame: object) -> None:
                if self.should_exit:  # a second signal: do not wait for slow requests
                    self.force_exit = True
                self.should_exit = True

            previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
            try:
                yield
            finally:
                for s, handler in previous.items():
                    signal.signal(s, handler)

    return Server


@click.command()
@click.option("--host", default=None, help="Address to listen on (default: [dashboard] host).")
@click.option("--port", type=int, default=None, help="Port (default: [dashboard] port).")
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None) -> None:
    """The dashboard: figures for a period, the fleet, CSV downloads (login required).

    \b
    Examples:
      ledger serve                       # http://127.0.0.1:8080, loopback only
      ledger serve --port 8081
    """
    import uvicorn

    from ..web.app import DashboardError, DatabaseUnavailable, create_app

    cfg = load_config(ctx)
    try:
        app = create_app(cfg)
    except DatabaseUnavailable as exc:  # before uvicorn: one line, not its lifespan traceback
        fail(str(exc), EX_IOERR)
    except DashboardError as exc:
        fail(str(exc), EX_CONFIG)
    if logging.getLogger().level > logging.INFO:
        logging.getLogger().setLevel(logging.INFO)
    server = _server_class()(
        uvicorn.Config(
            app,
            host=host or cfg.dashboard.host,
            port=port or cfg.dashboard.port,
            log_config=None,  # our stdout logging (journald), no colours
            access_log=False,
            proxy_headers=True,  # client address from a reverse proxy on this host
            server_header=False,
        )
    )
    # SIGTERM/SIGINT: stop accepting, finish the requests, run the app's shutdown (closes the
    # database), exit 0
    server.run()
    if not server.started:
        fail(_("The dashboard could not start (address in use?)."), EX_IOERR)


@click.command()
@click.argument("user")
@click.pass_context
def passwd(ctx: click.Context, user: str) -> None:
    """Hash a dashboard password; prints the line to paste under [dashboard.users].

    \b
    Example:
      ledger passwd alice
    """
    from ..web.auth import hash_password

    if not re.fullmatch(r"[A-Za-z0-9_.@-]{1,64}", user):
        fail(_("A user name is 1 to 64 letters, digits, or . _ @ -"), EX_DATAERR)
    password = click.prompt(
        _("Password for {user}").format(user=user),
        hide_input=True,
        confirmation_prompt=_("Repeat the password"),
    )
    if len(password) < MIN_PASSWORD:
        fail(_("Too short: at least 10 characters."), EX_DATAERR)
    click.echo(_("Add this line under [dashboard.users] in the ledger config:"), err=True)
    click.echo(f'{user} = "{hash_password(password)}"')
