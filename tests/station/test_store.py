"""The journal: durable appends, gap-free seq, hash chain, tamper detection, export."""

from __future__ import annotations

import csv
import io
import itertools
import json
import sqlite3
from pathlib import Path

import pytest

from station.store import FIELDS, Store, StoreError, record_hash


def _fill(store: Store, n: int) -> None:
    for i in range(n):
        store.append("weighing", net_mg=1000 * (i + 1), category="CAT-VET", stable=True)


def test_append_assigns_gap_free_seq_and_chains(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db", "st-1") as store:
        _fill(store, 5)
        rows = list(store.records())
        assert [r["seq"] for r in rows] == [1, 2, 3, 4, 5]
        assert len({r["uuid"] for r in rows}) == 5
        for prev, row in itertools.pairwise(rows):
            assert row["prev_hash"] == prev["hash"]
            assert row["hash"] == record_hash(row)
        assert store.verify().ok


def test_appends_inside_a_bulk_transaction_nest_as_savepoints(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db", "st-1") as store:
        with store.db.atomic():  # a bulk load (benchmarks, imports): one commit for all
            _fill(store, 3)
            with pytest.raises(ValueError):
                store.append("weighing", net_mg="heavy")  # refused: the others stay
        assert [r["seq"] for r in store.records()] == [1, 2, 3]
        assert store.verify().ok


def test_pragmas_are_durable(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db", "st-1") as store:
        assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_epoch_is_random_per_store_and_kept_on_reopen(tmp_path: Path) -> None:
    with Store(tmp_path / "a.db", "st-1") as a, Store(tmp_path / "b.db", "st-1") as b:
        assert a.epoch != b.epoch
        epoch = a.epoch
        _fill(a, 2)
    with Store(tmp_path / "a.db", "st-1") as again:
        assert again.epoch == epoch
        again.append("weighing", net_mg=5)
        assert again.last_seq == 3
        assert again.verify().ok


@pytest.mark.parametrize(
    ("sql", "problem"),
    [
        ("UPDATE records SET net_mg = 999 WHERE seq = 2", "seq 2: content altered"),
        ("DELETE FROM records WHERE seq = 2", "seq 2..2: missing"),
        ("DELETE FROM records WHERE seq = 4", "head: meta says last seq 4"),
        ("UPDATE records SET prev_hash = 'x', hash = 'y' WHERE seq = 3", "seq 3: chain broken"),
    ],
)
def test_verify_detects_tampering(tmp_path: Path, sql: str, problem: str) -> None:
    path = tmp_path / "s.db"
    with Store(path, "st-1") as store:
        _fill(store, 4)
    raw = sqlite3.connect(path)
    raw.execute(sql)
    raw.commit()
    raw.close()
    with Store(path, "st-1") as store:
        report = store.verify()
    assert not report.ok
    assert any(p.startswith(problem) for p in report.problems), report.problems


def test_rehashed_edit_still_breaks_the_chain(tmp_path: Path) -> None:
    """Someone who edits a record and recomputes its hash breaks the next record's link."""
    path = tmp_path / "s.db"
    with Store(path, "st-1") as store:
        _fill(store, 3)
        row = store.get(2)
    assert row is not None
    row["net_mg"] = 1
    row["hash"] = record_hash(row)
    raw = sqlite3.connect(path)
    raw.execute("UPDATE records SET net_mg = 1, hash = ? WHERE seq = 2", [row["hash"]])
    raw.commit()
    raw.close()
    with Store(path, "st-1") as store:
        problems = store.verify().problems
    assert any(p.startswith("seq 3: chain broken") for p in problems)


def test_rejects_unknown_kind_and_field(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db", "st-1") as store:
        with pytest.raises(ValueError):
            store.append("delete")
        with pytest.raises(ValueError):
            store.append("weighing", weight=3)
        assert store.last_seq == 0


def test_failed_commit_keeps_seq(tmp_path: Path) -> None:
    """A write that fails (here: a read-only store) leaves no hole and no half record."""
    path = tmp_path / "s.db"
    with Store(path, "st-1") as store:
        _fill(store, 2)
        store.db.execute("PRAGMA query_only = ON")
        with pytest.raises(StoreError):
            store.append("weighing", net_mg=3)
        store.db.execute("PRAGMA query_only = OFF")
        row = store.append("weighing", net_mg=4)
        assert row["seq"] == 3
        assert store.verify().ok


def test_open_missing_store_without_create(tmp_path: Path) -> None:
    with pytest.raises(StoreError):
        Store(tmp_path / "none.db", "st-1", create=False)


def test_corrupt_file_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError):
        Store(path, "st-1")


def test_export_jsonl_and_csv(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db", "st-1") as store:
        _fill(store, 3)
        out = io.StringIO()
        assert store.export(out, "jsonl", after=1) == 2
        lines = [json.loads(line) for line in out.getvalue().splitlines()]
        assert [r["seq"] for r in lines] == [2, 3]
        out = io.StringIO()
        assert store.export(out, "csv") == 3
        rows = list(csv.DictReader(io.StringIO(out.getvalue())))
        assert list(rows[0]) == list(FIELDS)
        assert rows[2]["net_mg"] == "3000"


def test_synced_through_only_moves_forward(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db", "st-1") as store:
        _fill(store, 5)
        store.mark_synced(3)
        store.mark_synced(2)
        assert store.synced_through == 3
        store.mark_synced(99)
        assert store.synced_through == 5
        assert store.summary()["backlog"] == 0


def test_append_refuses_what_the_wire_would_refuse(tmp_path: Path) -> None:
    """A record the ledger cannot accept would block the sync at its seq forever."""
    with Store(tmp_path / "s.db", "st-1") as store:
        with pytest.raises(ValueError):
            store.append("weighing", visit=123)  # SQLite would read it back as text
        with pytest.raises(ValueError):
            store.append("weighing", net_mg=1.5)
        with pytest.raises(StoreError):
            store.append("weighing", reason="x" * 5000)
        with pytest.raises(StoreError):
            store.append("weighing", net_mg=10**13)
        assert store.last_seq == 0
        store.append("weighing", stable=True, net_mg=1)
        assert store.verify().ok


def test_a_store_belongs_to_its_station(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db", "st-1") as store:
        store.append("weighing", net_mg=1)
    with pytest.raises(StoreError, match="belongs to station 'st-1'"):
        Store(tmp_path / "s.db", "st-2")


def test_pruning_keeps_an_anchor_and_verify_passes(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db", "st-1") as store:
        for i in range(10):
            store.append("weighing", net_mg=i + 1, recorded_at=f"2020-01-0{1 + i % 9}T00:00:00Z")
        store.append("weighing", net_mg=99)  # today
        assert store.prune("2030-01-01T00:00:00Z") == 0  # nothing synced: nothing pruned
        store.mark_synced(6)
        assert store.prune("2030-01-01T00:00:00Z", limit=4) == 4
        assert store.prune("2030-01-01T00:00:00Z") == 2  # up to synced_through only
        assert [r["seq"] for r in store.records()] == [7, 8, 9, 10, 11]
        report = store.verify()
        assert report.ok, report.problems
        store.mark_synced(11)
        assert store.prune("2030-01-01T00:00:00Z") == 4  # never the last record
        assert store.verify().ok
        assert store.append("weighing", net_mg=5)["seq"] == 12  # seq never reused
        assert store.verify().ok
    raw = sqlite3.connect(tmp_path / "s.db")
    raw.execute("DELETE FROM records WHERE seq = 11")
    raw.commit()
    raw.close()
    with Store(tmp_path / "s.db", "st-1") as store:
        assert not store.verify().ok  # pruning is not a licence to delete
