"""The ledger's change stamp (the dashboard's cache key) moves with everything that changes a
figure: records, names, and also profiles, households, a purge and an erasure."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from ledger.store import open_store
from ledger.store.households import Composition
from sync.wire import Registry
from tests.support import ledger_dataset
from tests.support.helpers import beneficiary
from tests.support.ledger_dataset import Dataset, Journal


def test_the_stamp_moves_with_every_change_of_the_figures(ledger_url: str) -> None:
    journal = Journal("st-stamp", random.Random(5))
    at = datetime(2020, 3, 2, 10, tzinfo=UTC)
    code = beneficiary(42)
    journal.append("weighing", at, category="CAT-VET", net_mg=1_000_000, beneficiary=code)
    journal.append(
        "weighing", at + timedelta(days=400), category="CAT-VET", net_mg=2_000_000, beneficiary=code
    )
    store = open_store(ledger_url)
    try:
        before = store.change_stamp()
        ledger_dataset.ingest(store, Dataset([journal], Registry(1)))
        stamps = [before, store.change_stamp()]
        store.import_profiles([(code, ["single_parent"])])
        stamps.append(store.change_stamp())
        store.import_households([Composition(code=code, women=1, children_0_15=2)])
        stamps.append(store.change_stamp())
        store.purge("2021-01-01", "aggregate")
        stamps.append(store.change_stamp())
        store.erase_beneficiary(code)
        stamps.append(store.change_stamp())
        assert store.change_stamp() == stamps[-1]  # nothing changed: the same stamp
    finally:
        store.close()
    assert len(set(stamps)) == len(stamps), stamps
