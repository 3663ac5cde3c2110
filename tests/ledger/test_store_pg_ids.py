"""The store's bulk operations give the same answers whichever way a dialect runs them: visit and
person ids (PostgreSQL reads first or inserts first, and takes what a concurrent worker committed
meanwhile), and voids marked with the earliest void winning."""

from __future__ import annotations

import threading
from typing import Any

import psycopg
import pytest

from ledger.store import PostgresLedgerStore, open_store
from ledger.store.pg import PostgresDialect
from tests.support.helpers import until


def _dialect(url: str) -> PostgresDialect:
    store = open_store(url)
    assert isinstance(store, PostgresLedgerStore)
    assert isinstance(store.sql, PostgresDialect)
    return store.sql


@pytest.mark.pg
def test_ids_are_the_same_whether_read_first_or_inserted_first(pg_url: str) -> None:
    db = _dialect(pg_url)
    first = db.atomic(lambda: db.number("person_ids", ("beneficiary",), [("a",), ("b",)]))
    assert sorted(first.values()) == [1, 2]
    # the keys came new: the next call inserts first; two known and one new
    keys = [("a",), ("b",), ("c",)]
    assert db._mostly_new["person_ids"] is True
    second = db.atomic(lambda: db.number("person_ids", ("beneficiary",), keys))
    assert {k: second[k] for k in first} == first and second[("c",)] not in first.values()
    # most were known: the next call reads first, then inserts what is missing
    assert db._mostly_new["person_ids"] is False
    third = db.atomic(lambda: db.number("person_ids", ("beneficiary",), [*keys, ("d",)]))
    assert {k: third[k] for k in second} == second
    assert len(set(third.values())) == 4
    rows = db.exec("SELECT n, beneficiary FROM person_ids ORDER BY n")
    assert {(b,): n for n, b in rows} == third  # one row per key, no id lost or doubled
    # two columns, as visit ids are numbered
    visits = [("st-1", "v1"), ("st-2", "v1")]
    got = db.atomic(lambda: db.number("visit_ids", ("station", "visit"), visits))
    assert set(got) == set(visits) and len(set(got.values())) == 2
    db.close()


@pytest.mark.pg
def test_a_key_another_worker_commits_meanwhile_is_read_not_lost(pg_url: str) -> None:
    """Reading first finds "z" missing; another transaction holds a new "z" uncommitted, so the
    insert waits on it and skips it once it commits: the id is read again in a statement of its
    own, which sees that commit (without it, "z" has no id and the ingest fails)."""
    db = _dialect(pg_url)
    db.atomic(lambda: db.number("person_ids", ("beneficiary",), [("a",), ("b",), ("c",)]))
    db.atomic(lambda: db.number("person_ids", ("beneficiary",), [("a",), ("b",), ("c",)]))
    assert db._mostly_new["person_ids"] is False  # the next call reads first
    other = psycopg.connect(pg_url)
    other.execute("INSERT INTO person_ids (beneficiary) VALUES ('z')")
    (theirs,) = other.execute("SELECT n FROM person_ids WHERE beneficiary = 'z'").fetchall()[0]
    result: dict[str, Any] = {}

    def work() -> None:
        try:
            result["ids"] = db.atomic(
                lambda: db.number("person_ids", ("beneficiary",), [("a",), ("z",)])
            )
        except Exception as exc:  # the assertion below shows it
            result["error"] = exc

    worker = threading.Thread(target=work)
    worker.start()
    watcher = psycopg.connect(pg_url, autocommit=True)
    assert until(
        lambda: bool(
            watcher.execute(
                "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND query LIKE 'INSERT INTO person_ids%'"
            ).fetchall()
        )
    )
    other.commit()
    worker.join()
    assert "error" not in result, result
    assert result["ids"][("z",)] == theirs
    assert db.exec("SELECT count(*) FROM person_ids WHERE beneficiary = 'z'") == [(1,)]
    for conn in (other, watcher):
        conn.close()
    db.close()


def test_voids_mark_the_earliest_void(ledger_url: str) -> None:
    store = open_store(ledger_url)
    db = store.sql

    def put() -> None:
        db.exec(
            "INSERT INTO heads (station, epoch, acked_through, received_through) "
            "VALUES ('st', 'e', 0, 0)"
        )
        for seq in range(1, 10):
            db.exec(
                "INSERT INTO records (station, epoch, seq, kind) VALUES ('st', 'e', ?, ?)",
                (seq, "weighing" if seq < 5 else "void"),
            )

    db.atomic(put)

    def voided() -> dict[int, int | None]:
        rows = db.exec("SELECT seq, voided_by FROM records WHERE seq < 5 ORDER BY seq")
        return {int(s): (None if v is None else int(v)) for s, v in rows}

    db.atomic(lambda: db.set_voided("st", "e", [(1, 9), (1, 7), (2, 8), (4, 6)]))
    assert voided() == {1: 7, 2: 8, 3: None, 4: 6}
    db.atomic(lambda: db.set_voided("st", "e", [(1, 5), (2, 9), (3, 9)]))
    assert voided() == {1: 5, 2: 8, 3: 9, 4: 6}
    db.atomic(lambda: db.set_voided("other", "e", [(4, 5)]))  # another station's: untouched
    assert voided()[4] == 6
    store.close()
