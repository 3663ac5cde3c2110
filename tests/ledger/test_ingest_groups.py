"""Group commit: batches stored together leave the ledger exactly as stored one by one."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from ledger.store import open_store
from sync.record import Record as WireRecord
from sync.wire import Batch, decode_batch, encode, record_hash
from tests.support.ledger_dataset import Dataset, network

# what a record's storage must be, whichever way it came in (received_at is the ledger's clock)
_STORED = (
    "station, epoch, seq, uuid, kind, hash, prev_hash, net_mg, beneficiary, occurred_at, "
    "corrected_at, voided_by, CASE WHEN visit_n IS NULL THEN 0 ELSE 1 END, "
    "CASE WHEN person_n IS NULL THEN 0 ELSE 1 END"
)


def _batches(dataset: Dataset, rng: random.Random) -> list[Batch]:
    """Every journal cut into batches of 1 to 40 records, as stations send them."""
    out = []
    for journal in dataset.journals:
        records = journal.records
        i = 0
        while i < len(records):
            n = rng.randint(1, 40)
            chunk = tuple(map(WireRecord.from_row, records[i : i + n]))
            out.append(decode_batch(encode(Batch(journal.station, journal.epoch, chunk))))
            i += n
    return out


def _forged(batch: Batch) -> Batch:
    """The batch's first record with other content (a valid record, its hash its own): the
    ledger must keep whichever came first and report the other as a conflict."""
    row = dict(batch.records[0])
    row["net_mg"] = (row["net_mg"] or 0) + 1_000
    row["hash"] = record_hash(row)
    record = WireRecord.from_row(row)
    return decode_batch(encode(Batch(batch.station, batch.epoch, (record,))))


def _schedule(batches: list[Batch], rng: random.Random) -> list[Batch]:
    """Batches late and early (a window of eight shuffled), resent (duplicates, some in the
    same group as their first copy) and one forged, as a reconnecting station and two
    workers deliver them."""
    order = list(batches)
    for k in range(0, len(order), 8):
        window = order[k : k + 8]
        rng.shuffle(window)
        order[k : k + 8] = window
    out: list[Batch] = []
    for batch in order:
        out.append(batch)
        if rng.random() < 0.15:
            out.insert(len(out) - rng.randint(0, min(3, len(out) - 1)), batch)
    victim = out[len(out) // 2]
    out.insert(len(out) // 2 + 1, _forged(victim))
    return out


def _state(
    store: Any,
) -> tuple[list[tuple[str, ...]], list[tuple[str, ...]], list[tuple[str, ...]]]:
    db = store.sql
    records = sorted(tuple(map(str, r)) for r in db.exec(f"SELECT {_STORED} FROM records"))
    heads = sorted(
        tuple(map(str, r))
        for r in db.exec(
            "SELECT station, epoch, acked_through, last_hash, received_through FROM heads"
        )
    )
    conflicts = sorted(
        tuple(map(str, r))
        for r in db.exec(
            "SELECT station, epoch, seq, kind, existing_hash, new_hash FROM conflicts "
            "WHERE kind = 'content'"
        )
    )
    return records, heads, conflicts


@pytest.mark.parametrize("seed", [1, 2])
def test_groups_store_what_one_by_one_stores(tmp_path: Path, ledger_url: str, seed: int) -> None:
    rng = random.Random(seed)
    dataset = network(seed=seed, persons=60, visits_per_station=40)
    schedule = _schedule(_batches(dataset, rng), rng)
    assert len(schedule) > 60

    alone = open_store(str(tmp_path / "one-by-one.db"))
    last_alone = {}
    for batch in schedule:
        result = alone.ingest(batch)
        last_alone[(result.station, result.epoch)] = (result.acked_through, result.received_through)

    grouped = open_store(ledger_url)
    last_grouped = {}
    k = 0
    while k < len(schedule):
        group = schedule[k : k + rng.randint(1, 12)]
        results = grouped.ingest_many(group)
        assert [(r.station, r.epoch) for r in results] == [(b.station, b.epoch) for b in group]
        for batch, result in zip(group, results, strict=True):
            assert result.inserted + result.duplicates == len(batch.records)
            last_grouped[(result.station, result.epoch)] = (
                result.acked_through,
                result.received_through,
            )
        k += len(group)

    records, heads, conflicts = _state(grouped)
    assert (records, heads, conflicts) == _state(alone)
    assert last_grouped == last_alone
    # every station's journal whole and acked, bar the forged seq kept as first sent
    assert len(records) == len(dataset.records)
    assert len(conflicts) == 1
    stored = sum(r.inserted for r in [alone.ingest(b) for b in schedule])
    assert stored == 0  # everything is a duplicate now, in both


def test_a_group_with_batches_apart_finds_what_is_stored_beyond_the_gap(
    ledger_url: str,
) -> None:
    dataset = network(seed=3, persons=20, visits_per_station=8)
    journal = max(dataset.journals, key=lambda j: len(j.records))
    records = tuple(map(WireRecord.from_row, journal.records[:30]))
    b1, b2, b3 = (
        decode_batch(encode(Batch(journal.station, journal.epoch, records[i : i + 10])))
        for i in (0, 10, 20)
    )
    store = open_store(ledger_url)
    assert store.ingest(b3).acked_through == 0  # kept beyond the gap
    first, again, forged = store.ingest_many([b1, b3, _forged(b1)])
    assert (first.inserted, first.duplicates, first.conflicts) == (10, 0, ())
    assert (again.inserted, again.duplicates, again.conflicts) == (0, 10, ())
    # the forged copy came second: the first is kept, the conflict is the forged batch's
    assert forged.inserted == 0 and forged.conflicts == ("seq 1: same key, other content",)
    assert (first.acked_through, first.received_through) == (10, 30)
    assert store.ingest_many([b2])[0].acked_through == 30
