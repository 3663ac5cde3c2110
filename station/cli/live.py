"""Is the station daemon running? Its status file, and whether the pid it names is alive."""

from __future__ import annotations

import json
import os
from typing import Any

from ..config import Config

__all__ = ["alive_after", "live_daemon"]


def alive_after(error: OSError | None) -> bool:
    """Whether ``os.kill(pid, 0)`` ending with ``error`` (None: no error) means the process
    exists: a PermissionError says it does, run by another user (the daemon's own account)."""
    return error is None or isinstance(error, PermissionError)


def live_daemon(config: Config) -> dict[str, Any] | None:
    """The running daemon's status file, or None when no daemon is alive (a file left behind
    by a daemon that was killed names a pid that is gone)."""
    try:
        live: dict[str, Any] = json.loads(config.status_path.read_text(encoding="utf-8"))
        pid = int(live["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if pid <= 0:  # 0 and negative pids signal process groups, not one process
        return None
    error: OSError | None = None
    try:
        os.kill(pid, 0)
    except OSError as exc:
        error = exc
    except OverflowError:
        return None
    return live if alive_after(error) else None
