"""systemd supervision for both programs: READY, STATUS, STOPPING, WATCHDOG while all progress."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping

from .i18n import _
from .service import ServiceThread

__all__ = ["Watchdog", "fresh", "sd_notify", "watchdog_interval"]

log = logging.getLogger(__name__)


def sd_notify(message: str) -> bool:
    """Send ``message`` to systemd's notify socket, if there is one (no libsystemd needed)."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(message.encode())
    except OSError as exc:
        log.debug("sd_notify failed: %s", exc)
        return False
    return True


def watchdog_interval() -> float | None:
    """Half of systemd's ``WatchdogSec`` (as the man page advises), or None when not enabled."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return max(0.05, int(usec) / 2e6)
    except ValueError:
        return None


class Watchdog:
    """Every ``interval`` seconds: if each check passes, ping ``WATCHDOG=1`` with a ``STATUS=``
    line; otherwise stay silent so systemd restarts the daemon (a timer that always pings would
    prove nothing), and say which worker is stuck."""

    def __init__(
        self,
        checks: Mapping[str, Callable[[], bool]],
        status: Callable[[], str],
        interval: float,
    ) -> None:
        self.checks = dict(checks)
        self.status = status
        self.interval = interval
        self.stuck: list[str] = []
        self._service = ServiceThread("watchdog", self._run)

    def start(self) -> None:
        self._service.start()

    def stop(self) -> None:
        self._service.stop()

    def _run(self, stop: threading.Event) -> None:
        while not stop.wait(self.interval):
            stuck = [name for name, check in self.checks.items() if not _safe(check)]
            if stuck:
                if stuck != self.stuck:
                    log.error(_("not feeding the watchdog: stuck %s"), ", ".join(stuck))
                sd_notify("STATUS=" + _("stuck: {names}").format(names=", ".join(stuck)))
            else:
                sd_notify(f"WATCHDOG=1\nSTATUS={self.status()}")
            self.stuck = stuck


def _safe(check: Callable[[], bool]) -> bool:
    try:
        return bool(check())
    except Exception:
        return False


def fresh(heartbeat: Callable[[], float], within: float) -> Callable[[], bool]:
    """A check that passes while ``heartbeat()`` (a monotonic time) is less than ``within`` old."""
    return lambda: time.monotonic() - heartbeat() < within
