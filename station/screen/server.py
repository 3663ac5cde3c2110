"""Runs the counter screen's app under uvicorn in a thread of the daemon; never required."""

from __future__ import annotations

import logging
import socket
import threading

import uvicorn

from common.i18n import _

from ..config import Config
from ..loop import Station
from .app import make_app

__all__ = ["ScreenServer"]

log = logging.getLogger("station")


class ScreenServer:
    """``start()`` binds and serves in a background thread; ``stop()`` ends the feeds and the
    server. A port already in use or a bad address is one clear log line: the station carries
    on without its screen (the button, lights and buzzer are the interface that counts)."""

    def __init__(self, station: Station, config: Config) -> None:
        self.section = config.screen
        self.stopping = threading.Event()
        self.app = make_app(station, config, self.stopping)
        self.port: int | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = self.section.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}/"

    def start(self) -> bool:
        host, port = self.section.host, self.section.port
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            # bound here rather than by uvicorn: a failure is an OSError we can explain, not a
            # SystemExit inside a thread
            sock = socket.create_server((host, port), family=family)
        except OSError as exc:
            log.error(
                _("counter screen not started: cannot listen on %s port %d (%s)")
                + " "
                + _("The station works without it."),
                host,
                port,
                exc.strerror or exc,
            )
            return False
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            loop="asyncio",
            http="h11",
            ws="none",
            lifespan="off",
            log_config=None,  # keep the daemon's logging as it is
            access_log=False,  # every page load in the journal would only wear the card
            server_header=False,
            timeout_graceful_shutdown=2,
        )
        logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(
            target=self._serve, args=(server, sock), name="screen", daemon=True
        )
        self._thread.start()
        log.info(_("counter screen on %s"), self.url)
        return True

    def _serve(self, server: uvicorn.Server, sock: socket.socket) -> None:
        try:
            server.run(sockets=[sock])
        except BaseException:  # uvicorn may sys.exit(); the station must not notice
            log.exception(_("the counter screen stopped; the station works without it"))
        finally:
            sock.close()

    def stop(self, timeout: float = 5.0) -> None:
        self.stopping.set()  # open feeds end at their next look (POLL_S)
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
