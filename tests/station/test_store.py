"""The journal: durable appends, gap-free seq, hash chain, tamper detection, export."""

from __future__ import annotations

import csv
import ctypes
import ctypes.util
import io
import itertools
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import sqlite_utils  # the ledger and the CLI still use it; the daemon no longer does

from station.store import (
    CACHE_KIB,
    FIELDS,
    RecordRefused,
    Store,
    StoreError,
    journal_info,
    journal_station,
    record_hash,
)


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


def _own(store: Store) -> sqlite3.Connection:
    """The store's own connection, for per-connection settings a test must see or change."""
    return store._conn


def test_appends_inside_a_transaction_nest_as_savepoints(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db", "st-1") as store:
        with store.transaction():  # a bulk load (benchmarks, imports): one commit for all
            _fill(store, 3)
            with pytest.raises(ValueError):
                store.append("weighing", net_mg="heavy")  # refused: the others stay
        assert [r["seq"] for r in store.records()] == [1, 2, 3]
        assert store.verify().ok


def test_a_transaction_is_all_or_nothing(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db", "st-1") as store:
        _fill(store, 1)
        with pytest.raises(RuntimeError), store.transaction():
            _fill(store, 3)
            raise RuntimeError("the fourth weight was refused")
        assert store.last_seq == 1  # the in-memory head went back with the rollback
        assert store.append("weighing", net_mg=7)["seq"] == 2
        assert store.verify().ok


def test_pragmas_are_durable(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db", "st-1") as store:
        assert _own(store).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert _own(store).execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_every_connection_has_a_bounded_page_cache_and_no_memory_map(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with Store(path, "st-1") as store, Store.reader(path) as reader:
        for conn in (_own(store), reader._db()):
            assert conn.execute("PRAGMA cache_size").fetchone()[0] == -CACHE_KIB
            assert conn.execute("PRAGMA mmap_size").fetchone()[0] == 0
    assert CACHE_KIB <= 512  # SQLite's default is 2000 KiB a connection


def test_a_large_journal_read_whole_keeps_sqlite_memory_bounded(tmp_path: Path) -> None:
    """The daemon's two connections (the loop's, the uploader's) read a journal of ~9 MiB,
    three times the default cache: SQLite's own memory grows by their caches' bound, not by
    2 MiB each as with SQLite's default (the idle daemon's RSS, bench/footprint.py)."""
    name = ctypes.util.find_library("sqlite3")
    if name is None:
        pytest.skip("no libsqlite3 to read SQLite's memory counter from")
    lib = ctypes.CDLL(name)
    lib.sqlite3_memory_used.restype = ctypes.c_int64
    path = tmp_path / "s.db"
    with Store(path, "st-1") as store:
        with store.transaction():
            for i in range(3000):
                store.append("weighing", net_mg=i + 1, data=f"{i:04d}" + "x" * 3000)
        store.checkpoint()
    assert path.stat().st_size > 8 * 2**20
    before = lib.sqlite3_memory_used()
    with Store(path, "st-1") as store, Store.reader(path) as reader:
        if lib.sqlite3_memory_used() == before:
            pytest.skip("Python's sqlite3 does not use this libsqlite3 (statically linked)")
        opened = lib.sqlite3_memory_used()
        assert sum(1 for _ in store.records()) == len(reader.records()) == 3000
        assert store.verify().ok and reader.verify().ok
        grown = lib.sqlite3_memory_used() - opened
    # two caches of CACHE_KIB pages' worth (plus SQLite's per-page headers and statements)
    assert grown < 2 * CACHE_KIB * 1024 * 1.5 + 256 * 1024, grown


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
        _own(store).execute("PRAGMA query_only = ON")
        with pytest.raises(StoreError):
            store.append("weighing", net_mg=3)
        _own(store).execute("PRAGMA query_only = OFF")
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
        with pytest.raises(RecordRefused, match="pieces out of range"):
            store.append("weighing", pieces=10**8)  # the uploader would never send it
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


# -- one owner of the journal's SQL: readers, locks, integrity, binding (issues 12, 13, 15) ---

_WRITER = """
import sys
from station.store import Store
with Store(sys.argv[1], "st-1") as store:
    print("ready", flush=True)
    for i in range(int(sys.argv[2])):
        store.append("weighing", net_mg=i + 1)
"""


def test_writes_wait_for_another_process_instead_of_failing(tmp_path: Path) -> None:
    """Another process appending (a technician's command) must not make the daemon's own
    writes fail with "database is locked": they take the write lock first and wait."""
    path = tmp_path / "s.db"
    with Store(path, "st-1") as store:
        _fill(store, 1)
        writer = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(path), "400"],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert writer.stdout is not None and writer.stdout.readline() == "ready\n"
            sessions = []
            while writer.poll() is None:
                sessions.append(store.next_session())
                store.mark_synced(store.synced_through + 1)
                store.set_piece_weight("CAT-VET", len(sessions))
        finally:
            writer.wait(60)
        assert writer.returncode == 0
        assert sessions == list(range(1, len(sessions) + 1))
        store.mark_synced(10**6)
        assert store.synced_through == store.last_seq == 401
        assert store.verify().ok


def test_a_reader_sees_commits_on_its_own_connection(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with Store(path, "st-1") as store, Store.reader(path) as reader:
        _fill(store, 2)
        assert reader.last_seq == 2
        store.mark_synced(1)
        assert reader.synced_through == 1
        assert [r["seq"] for r in reader.records(kind="weighing")] == [1, 2]
        compact = reader.read(after=1, limit=10)
        assert [r["seq"] for r in compact] == [2]
        assert "voids" not in compact[0]  # empty columns left out, as on the wire
        with pytest.raises(sqlite3.OperationalError):  # read-only: it can never write
            reader._db().execute("DELETE FROM records")
        assert store.count() == reader.count() == 2
        assert reader.verify().ok


def _index_page(path: Path, index: str) -> tuple[int, int]:
    raw = sqlite3.connect(path)
    try:
        page_size = raw.execute("PRAGMA page_size").fetchone()[0]
        root = raw.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", [index]).fetchone()
    finally:
        raw.close()
    return page_size, root[0]


def test_verify_finds_a_broken_index_and_says_what_to_do(tmp_path: Path) -> None:
    """One flipped byte in an index page: quick_check passed it while lookups by visit lost
    records; the full integrity check finds it, and the report says what to do."""
    path = tmp_path / "s.db"
    with Store(path, "st-1") as store:
        for i in range(50):
            store.append("weighing", net_mg=i + 1, visit=f"visit-{i % 5}")
        store.checkpoint()
    page_size, root = _index_page(path, "idx_records_visit")
    data = bytearray(path.read_bytes())
    end = root * page_size  # the cells sit at the end of the page: flip a key byte there
    data[end - 20] ^= 0x01
    copy = tmp_path / "copy.db"
    copy.write_bytes(bytes(data))
    with Store(copy, "st-1", create=False) as store:
        report = store.verify()
    assert not report.ok
    assert report.damage and all("index" in d for d in report.damage), report.damage
    assert report.problems[0].startswith("journal file damaged: ")
    assert "REINDEX" in report.advice and str(copy) in report.advice
    raw = sqlite3.connect(copy)
    assert raw.execute("PRAGMA quick_check").fetchone()[0] == "ok"  # what verify used to run
    raw.close()


def test_verify_advice_for_an_altered_chain(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with Store(path, "st-1") as store:
        _fill(store, 3)
    raw = sqlite3.connect(path)
    raw.execute("UPDATE records SET net_mg = 5 WHERE seq = 2")
    raw.commit()
    raw.close()
    with Store(path, "st-1") as store:
        report = store.verify()
    assert report.damage == ()
    assert "tell the office" in report.advice


def test_an_empty_journal_of_another_id_is_rebound_only_when_asked(tmp_path: Path) -> None:
    """A first start on the example config made an empty journal for the example's id."""
    path = tmp_path / "s.db"
    with Store(path, "ressourcerie-nord-1") as first:
        old_epoch = first.epoch
    assert journal_station(path) == "ressourcerie-nord-1"
    with pytest.raises(StoreError, match="starting the station binds it"):
        Store(path, "epicerie-sud-2")  # a command only reads: it does not rebind
    with Store(path, "epicerie-sud-2", rebind_empty=True) as store:
        assert store.epoch != old_epoch
        store.append("weighing", net_mg=1)
        assert store.verify().ok
    info = journal_info(path)
    assert info is not None
    assert (info.station, info.last_seq) == ("epicerie-sud-2", 1)


def test_a_journal_with_records_is_never_rebound(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with Store(path, "st-1") as store:
        _fill(store, 2)
    with pytest.raises(StoreError) as refused:
        Store(path, "st-2", rebind_empty=True)
    assert "holds 2 records" in str(refused.value)
    assert 'id = "st-1"' in str(refused.value)
    assert journal_station(path) == "st-1"


def test_journal_station_reads_without_creating(tmp_path: Path) -> None:
    assert journal_station(tmp_path / "none.db") is None
    assert not (tmp_path / "none.db").exists()
    (tmp_path / "junk.db").write_bytes(b"not a database" * 100)
    assert journal_info(tmp_path / "junk.db") is None


def _schema(path: Path) -> list[tuple[str, str, str | None]]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()
    conn.close()
    return rows


def test_the_schema_is_the_one_sqlite_utils_made(tmp_path: Path) -> None:
    """The store writes its DDL in plain SQL (the daemon no longer imports sqlite-utils): a
    journal made by older versions through sqlite-utils has its schema, opens, is brought up to
    date in place and takes records, and then has exactly the schema of a new journal."""
    with Store(tmp_path / "new.db", "st-1"):
        pass
    old = tmp_path / "old.db"
    db = sqlite_utils.Database(old)
    db.table("meta").create({"k": str, "v": str}, pk="k")
    records = db.table("records")
    records.create(
        FIELDS,
        pk="seq",
        not_null={"uuid", "epoch", "station", "kind", "recorded_at", "prev_hash", "hash"},
    )
    records.create_index(["uuid"], unique=True)
    records.create_index(["visit"])
    db.conn.close()
    # the same schema as sqlite-utils made, but the wire table, added to any journal at open
    assert _schema(old) == [t for t in _schema(tmp_path / "new.db") if t[1] != "wire"]
    with Store(old, "st-1") as store:  # no schema_version yet: migrated in place
        _fill(store, 2)
        assert store.verify().ok
    assert _schema(tmp_path / "new.db") == _schema(old)
