"""Free space on the card: checked before every commit, so staff hear "full" before SQLite does."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from common.i18n import _

__all__ = ["DiskGuard"]

log = logging.getLogger("station")


class DiskGuard:
    """Says whether the journal's file system has less than ``min_free_mb`` free (a statvfs:
    microseconds). A store that runs out of space mid-transaction stays intact, but staff must
    hear it before it happens; ``full`` keeps the last answer for the status page."""

    def __init__(self, directory: Path, min_free_mb: int) -> None:
        self.directory = directory
        self.min_free_mb = min_free_mb
        self.full = False

    def check(self) -> bool:
        """True when new records must be refused; logs once each time the answer changes."""
        try:
            free = shutil.disk_usage(self.directory).free
        except OSError:
            return self.full
        full = free < self.min_free_mb * 1024 * 1024
        if full != self.full:
            self.full = full
            if full:
                log.error(
                    _("less than %d MB free on the card: refusing new records"), self.min_free_mb
                )
        return full
