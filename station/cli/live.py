"""Is the station daemon running? The status file it writes, read by station.status_file."""

from __future__ import annotations

from typing import Any

from ..config import Config
from ..status_file import live_status

__all__ = ["alive_after", "live_daemon"]


def alive_after(error: OSError | None) -> bool:
    """Whether ``os.kill(pid, 0)`` ending with ``error`` (None: no error) means the process
    exists: a PermissionError says it does, run by another user (the daemon's own account).
    The rule :func:`station.status_file.live_status` applies."""
    return error is None or isinstance(error, PermissionError)


def live_daemon(config: Config) -> dict[str, Any] | None:
    """The running daemon's status file, or None when no daemon is alive (a file left behind
    by a daemon that was killed names a pid that is gone)."""
    return live_status(config.status_path)
