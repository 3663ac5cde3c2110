"""The station's live status: the snapshot the loop publishes, mirrored to a file for the CLI.

The loop writes ``runtime_dir/status.json`` (tmpfs) at most once a second on changes and every
5 s anyway, so its age tells a live daemon from a hung one; ``station status``, ``doctor`` and
the technician's commands read it with :func:`live_status`.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from drivers.base import Reading

from .counter import Item
from .outcomes import Result

__all__ = ["Snapshot", "StatusFile", "live_status", "read_status", "status_data"]

log = logging.getLogger("station")

CHANGED_EVERY_S = 1.0  # at most this often when something changed
ANYWAY_EVERY_S = 5.0  # and this often when nothing did, so the file's age shows a live loop


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything a status page may show; replaced whole by the loop, read from any thread."""

    scale_ok: bool = False
    scale_detail: str = ""
    scale_id: str = ""
    scale_rejected_frames: int = 0  # undecodable frames since start: wrong framing or protocol?
    scanner_ok: bool = True
    weight: Reading | None = None
    beneficiary: str | None = None  # masked except the last characters
    referrer: str | None = None
    referrer_name: str = ""
    category: str | None = None
    category_name: str = ""
    operator: str = ""
    container: str = ""
    container_tare_mg: int = 0
    items: tuple[Item, ...] = ()
    waiting: bool = False
    last: Result | None = None
    last_seq: int = 0
    synced_through: int = 0
    backlog: int = 0
    last_record_at: str | None = None
    clock_synced: bool = False
    store_fault: bool = False  # the journal cannot be written (full card, failing storage)

    @property
    def visit_total_mg(self) -> int:
        return sum(i.net_mg for i in self.items)


def status_data(snap: Snapshot, station: str) -> dict[str, Any]:
    """The status file's content for ``snap`` (JSON-ready)."""
    return {
        "station": station,
        "pid": os.getpid(),
        "written_at": time.time(),
        "scale": {
            "ok": snap.scale_ok,
            "detail": snap.scale_detail,
            "id": snap.scale_id,
            "rejected_frames": snap.scale_rejected_frames,
        },
        "scanner_ok": snap.scanner_ok,
        "visit": {
            "beneficiary": snap.beneficiary,
            "referrer": snap.referrer,
            "items": len(snap.items),
            "net_mg": snap.visit_total_mg,
        },
        "category": snap.category_name or None,
        "operator": snap.operator or None,
        "last": {
            "outcome": snap.last.outcome.value,
            "text": snap.last.text,
            "seq": snap.last.seq,
        }
        if snap.last
        else None,
        "last_seq": snap.last_seq,
        "backlog": snap.backlog,
        "clock_synced": snap.clock_synced,
        "store_fault": snap.store_fault,
    }


class StatusFile:
    """Writes the status file atomically (a temporary file renamed over it), paced as above."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._written = -1e9

    def due(self, now: float, changed: bool) -> bool:
        age = now - self._written
        return age >= ANYWAY_EVERY_S or (changed and age >= CHANGED_EVERY_S)

    def write(
        self, data: dict[str, Any], now: float, extras: dict[str, Callable[[], Any]] | None = None
    ) -> None:
        """Write ``data`` plus the ``extras`` blocks (each a call; one that fails is left out)."""
        for name, extra in (extras or {}).items():
            try:
                data[name] = extra()
            except Exception:  # a status block must never stop the loop
                log.exception("status block %s failed", name)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
            tmp.replace(self.path)
        except OSError as exc:
            log.debug("cannot write %s: %s", self.path, exc)
        self._written = now

    def remove(self) -> None:
        """A stopped daemon must not look alive."""
        try:
            self.path.unlink(missing_ok=True)
        except OSError as exc:
            log.debug("cannot remove %s: %s", self.path, exc)


def read_status(path: Path) -> dict[str, Any] | None:
    """The status file's content, or None when it is missing or unreadable (whether the daemon
    that wrote it still runs is :func:`live_status`'s question)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def live_status(path: Path) -> dict[str, Any] | None:
    """The running daemon's status, or None when no daemon is alive: a file left behind by a
    daemon that was killed names a pid that is gone. A pid we may not signal (another user's
    daemon: ``PermissionError``) is alive."""
    data = read_status(path)
    if data is None:
        return None
    try:
        pid = int(data["pid"])
    except (KeyError, TypeError, ValueError):
        return None
    if pid <= 0:  # 0 and negative pids signal process groups, not one process
        return None
    try:
        os.kill(pid, 0)
    except PermissionError:
        return data
    except (OSError, OverflowError):
        return None
    return data
