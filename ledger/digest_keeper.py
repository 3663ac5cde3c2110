"""When ``ledger run`` builds the stale month digests: every 30 s, in a lull of the ingest.

A pass built while a backlog pours in is rebuilt as soon as the next batches land in the same
months, and it takes the CPU (and the GIL) the ingest thread needs: a station's 100k-record
backlog drained 8 % slower with a pass in the middle (bench/README.md, session 8). So a due pass
waits until no batch has been stored for ``quiet`` seconds, and one that started in a lull
stops between two months when batches come again. Under a load that never pauses, a pass is
made all the same ``overdue`` seconds after it was due, whole: reports and the dashboard never
meet more than a minute or so of stale months (a stale month is still exact: its reader builds
it, only slower).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from common.i18n import _

from .redact import redacted
from .store import SqlLedgerStore

__all__ = ["DigestKeeper"]

log = logging.getLogger("ledger")

# how often `ledger run` builds the month digests new records made stale (docs/reports.md): a
# report or a dashboard view then reads them instead of building the month itself
EVERY_S = 30.0
QUIET_S = 1.0  # no batch stored for this long: a lull
OVERDUE_S = 30.0  # a due pass waits for a lull at most this long


class DigestKeeper:
    """Decides when to build, and builds, on its own connection (``store``): building one
    never holds up the ingest's. ``last_batch()`` is when the ingest last stored a batch
    (``time.monotonic()``, 0 before the first); ``clock`` is the same clock (tests pass theirs).
    """

    def __init__(
        self,
        store: SqlLedgerStore,
        last_batch: Callable[[], float],
        *,
        every: float = EVERY_S,
        quiet: float = QUIET_S,
        overdue: float = OVERDUE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.last_batch = last_batch
        self.every = every
        self.quiet = quiet
        self.overdue = overdue
        self.clock = clock
        self.due_at = clock()  # the first pass at start: months left stale by a stop

    def step(self, stop: Callable[[], bool]) -> int | None:
        """One pass if one is due now (None if not): how many month digests it built. A pass
        cut short by batches arriving stays due; a failed one is logged and tried again at the
        next period (the ingest has its own connection and its own retries)."""
        now = self.clock()
        if now < self.due_at:
            return None
        forced = now >= self.due_at + self.overdue
        if not forced and now - self.last_batch() < self.quiet:
            return None

        cut = False

        def interrupted() -> bool:
            nonlocal cut
            cut = stop() or (not forced and self.last_batch() > now)
            return cut

        built = 0
        try:
            built = self.store.refresh_digests(interrupted)
        except Exception as exc:
            log.warning(_("month digests not built this time: %s"), redacted(str(exc)))
            cut = False
        if not cut:  # done (or failed): the next pass a period from now
            self.due_at = self.clock() + self.every
        return built
