"""A retention purge on PostgreSQL against an ingest in flight: the id of a returning person,
numbered by the ingest before it stores the records that use it, is never deleted by the purge's
clean-up of unused ids (its records would then point at nothing)."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime

import psycopg

from ledger.store import open_store
from sync.wire import Registry
from tests.support import ledger_dataset
from tests.support.helpers import beneficiary
from tests.support.ledger_dataset import Dataset, Journal


def test_a_purge_waits_for_an_ingest_reusing_a_persons_id(pg_url: str) -> None:
    code = beneficiary(77)
    journal = Journal("st-race", random.Random(9))
    journal.append(
        "weighing",
        datetime(2020, 5, 4, 10, tzinfo=UTC),
        category="CAT-VET",
        net_mg=900_000,
        beneficiary=code,
    )
    store = open_store(pg_url)
    try:
        ledger_dataset.ingest(store, Dataset([journal], Registry(1)))
    finally:
        store.close()

    # "an ingest" in its own transaction, as ledger/store/ingest.py does it: the person's id
    # numbered first (INSERT … ON CONFLICT DO NOTHING), the record that uses it stored later
    ingest = psycopg.connect(pg_url)
    with ingest.cursor() as cur:
        cur.execute(
            "INSERT INTO person_ids (beneficiary) VALUES (%s) ON CONFLICT DO NOTHING", (code,)
        )
        cur.execute("SELECT n FROM person_ids WHERE beneficiary = %s", (code,))
        row = cur.fetchone()
        assert row is not None
        person = row[0]
        cur.execute("SELECT * FROM records WHERE person_n = %s", (person,))
        names = [d.name for d in cur.description or ()]
        old = cur.fetchone()
        assert old is not None

        purger = open_store(pg_url)
        done = threading.Event()

        def purge() -> None:
            try:
                purger.purge("2021-01-01", "delete")  # the person's only record is older
            finally:
                done.set()

        thread = threading.Thread(target=purge)
        thread.start()
        try:
            # the purge waits for the ingest's lock (or, unguarded, is already through)
            with psycopg.connect(pg_url, autocommit=True) as watch:
                for _ in range(500):
                    waiting = watch.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
                    if done.wait(0.01) or (waiting.fetchone() or (0,))[0]:
                        break
            # the ingest stores the person's new record (a copy of the old one, 2022)
            new = dict(zip(names, old, strict=True))
            new.update(seq=2, occurred_at="2022-05-04T10:00:00.000Z", hash="h2", uuid="u2")
            new.pop("id", None)
            cur.execute(
                f"INSERT INTO records ({', '.join(new)}) VALUES ({', '.join(['%s'] * len(new))})",
                list(new.values()),
            )
            ingest.commit()
        finally:
            thread.join(30)
            purger.close()
            ingest.close()
    assert done.is_set()

    with psycopg.connect(pg_url) as check:
        kept = check.execute(
            "SELECT count(*) FROM records r JOIN person_ids p ON p.n = r.person_n "
            "WHERE p.beneficiary = %s",
            (code,),
        ).fetchone()
    assert kept == (1,)  # the 2022 record, still tied to its person
