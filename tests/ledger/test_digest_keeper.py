"""When `ledger run` builds the stale month digests (ledger/digest_keeper.py): in a lull of the
ingest, cut short by batches arriving, made whole all the same when the load never pauses."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.digest_keeper import DigestKeeper
from ledger.store import SqlLedgerStore, open_store
from tests.support import ledger_dataset


class Clock:
    """The keeper's monotonic clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _stale(store: SqlLedgerStore) -> int:
    return int(store.fetch("SELECT count(DISTINCT month) AS n FROM digest_changes")[0]["n"])


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlLedgerStore]:
    store = open_store(str(tmp_path / "ledger.db"))
    ledger_dataset.ingest(store, ledger_dataset.network(seed=3, persons=20, visits_per_station=12))
    assert _stale(store) > 3
    yield store
    store.close()


def test_a_pass_waits_for_a_lull_then_builds_every_stale_month(store: SqlLedgerStore) -> None:
    clock = Clock()
    last = [clock.now - 0.2]  # a batch stored a moment ago: the ingest is busy
    keeper = DigestKeeper(store, lambda: last[0], quiet=1.0, overdue=30.0, clock=clock)
    stale = _stale(store)
    assert keeper.step(lambda: False) is None
    clock.now += 0.5
    last[0] = clock.now - 0.1  # still batches coming
    assert keeper.step(lambda: False) is None
    assert _stale(store) == stale  # nothing built while the backlog pours in
    clock.now += 1.5  # a lull
    assert keeper.step(lambda: False) == stale
    assert _stale(store) == 0
    assert keeper.step(lambda: False) is None  # the next pass a period from now
    clock.now += 29
    assert keeper.step(lambda: False) is None
    clock.now += 1
    assert keeper.step(lambda: False) == 0


def test_a_load_that_never_pauses_gets_a_whole_pass_when_overdue(store: SqlLedgerStore) -> None:
    clock = Clock()
    calls = [0]

    def busy() -> float:  # a batch stored at every look, even during the pass
        calls[0] += 1
        return clock.now + calls[0] * 1e-3

    keeper = DigestKeeper(store, busy, quiet=1.0, overdue=30.0, clock=clock)
    stale = _stale(store)
    for _ in range(29):
        assert keeper.step(lambda: False) is None
        clock.now += 1
    clock.now += 1  # 30 s past due
    assert keeper.step(lambda: False) == stale
    assert _stale(store) == 0


def test_a_pass_cut_by_batches_resumes_at_the_next_lull(store: SqlLedgerStore) -> None:
    clock = Clock()
    looks = [0]

    def last_batch() -> float:
        # a lull when the pass starts and while its first month is built, then a batch
        looks[0] += 1
        return clock.now - 5 if looks[0] <= 2 else clock.now + 0.1

    def quiet() -> float:
        return clock.now - 5

    keeper = DigestKeeper(store, last_batch, quiet=1.0, overdue=30.0, retry=5.0, clock=clock)
    stale = _stale(store)
    assert keeper.step(lambda: False) == 1
    assert _stale(store) == stale - 1
    # still due: at a lull 5 s later the rest is built, without waiting a whole period
    keeper.last_batch = quiet
    clock.now += 2
    assert keeper.step(lambda: False) is None
    clock.now += 3
    assert keeper.step(lambda: False) == stale - 1
    assert _stale(store) == 0


def test_passes_cut_at_every_lull_still_end_whole_when_overdue(store: SqlLedgerStore) -> None:
    """A lull at every try and batches during every pass: the tries are spaced (each builds
    the newest month again), and the whole pass comes 30 s after due all the same."""
    clock = Clock()
    looks = [0]

    def last_batch() -> float:
        # a lull at each step's first look, a batch at the next: every pass is cut
        looks[0] += 1
        return clock.now - 5 if looks[0] % 2 else clock.now + 0.1

    keeper = DigestKeeper(store, last_batch, quiet=1.0, overdue=30.0, retry=5.0, clock=clock)
    stale = _stale(store)
    tries = []
    for _ in range(29):
        looks[0] = 0
        tries.append(keeper.step(lambda: False))
        clock.now += 1
    cut = [t for t in tries if t is not None]
    assert cut == [0] * len(cut) and 5 <= len(cut) <= 6  # a try every 5 s, each cut at once
    assert _stale(store) == stale
    clock.now += 1  # 30 s past due: whole, batches or not
    assert keeper.step(lambda: False) == stale
    assert _stale(store) == 0


def test_a_stop_cuts_a_pass_between_two_months(store: SqlLedgerStore) -> None:
    keeper = DigestKeeper(store, lambda: 0.0, clock=Clock())
    stale = _stale(store)
    assert keeper.step(lambda: True) == 0
    assert _stale(store) == stale


def test_a_failing_database_is_logged_and_tried_again_a_period_later(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = open_store(str(tmp_path / "ledger.db"))
    store.close()  # every statement now fails
    clock = Clock()
    keeper = DigestKeeper(store, lambda: 0.0, every=30.0, clock=clock)
    with caplog.at_level(logging.WARNING, logger="ledger"):
        assert keeper.step(lambda: False) == 0
    assert "month digests not built this time" in caplog.text
    assert keeper.step(lambda: False) is None
    clock.now += 30
    assert keeper.step(lambda: False) == 0
