"""When ``ledger run`` builds the stale month digests: every 30 s, in a lull of the ingest.

A pass built while a backlog pours in is rebuilt as soon as the next batches land in the same
months, and it takes the CPU (and the GIL) the ingest thread needs: a restarted ledger drained
a station's 100k-record backlog ~12 % faster without a pass in the middle (bench/README.md,
session 8). So a due pass waits until no batch has been stored for ``quiet`` seconds, and one
that started in a lull stops between two months when batches come again; it is tried again at
a lull ``retry`` seconds later at the soonest (each try builds the newest month again, the one
the batches changed). Under a load that never pauses, a pass is made all the same ``overdue``
seconds after it was due, whole: reports and the dashboard meet about a minute of stale months
at the most (a stale month is still exact: its reader builds it, only slower).
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
RETRY_S = 5.0  # after a pass cut short by batches, the next try in a lull


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
        retry: float = RETRY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.last_batch = last_batch
        self.every = every
        self.quiet = quiet
        self.overdue = overdue
        self.retry = retry
        self.clock = clock
        self.due_at = clock()  # the first pass at start: months left stale by a stop
        self.retry_at = self.due_at  # a cut pass: no try in a lull before this

    def step(self, stop: Callable[[], bool]) -> int | None:
        """One pass if one is due now (None if not): how many month digests it built. A pass
        cut short by batches arriving stays due; a failed one is logged and tried again at the
        next period (the ingest has its own connection and its own retries)."""
        now = self.clock()
        if now < self.due_at:
            return None
        forced = now >= self.due_at + self.overdue
        if not forced and (now < self.retry_at or now - self.last_batch() < self.quiet):
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
        if cut:  # still due, from the same time: the forced pass is not put off
            self.retry_at = self.clock() + self.retry
        else:  # done (or failed): the next pass a period from now
            self.due_at = self.retry_at = self.clock() + self.every
        return built
