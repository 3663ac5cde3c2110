"""Privacy at the ledger: pseudonymised codes, access and erasure requests, retention purge."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ledger.store import PseudonymMismatch, SqlLedgerStore, open_store
from station.store import Store
from sync.wire import Batch, decode_batch, encode, genesis_hash, record_hash
from tests.support.helpers import beneficiary

KEY = b"a-long-secret-of-the-office-0123"
CODES = [beneficiary(n) for n in (11, 12, 13, 14)]


def _journal(path: Path) -> tuple[str, list[dict[str, Any]]]:
    """Ten weighings by four persons, one voided."""
    with Store(path, "st-1") as store:
        for i in range(10):
            store.append(
                "weighing",
                net_mg=(i + 1) * 1000,
                beneficiary=CODES[i % 4],
                category="CAT-VET",
                recorded_at=f"2026-0{1 + i % 3}-10T10:00:00.000Z",
            )
        store.append("void", voids=3, beneficiary=CODES[2], recorded_at="2026-03-10T10:00:00.000Z")
        return store.epoch, list(store.records())


def _batch(epoch: str, rows: list[dict[str, Any]]) -> Batch:
    return decode_batch(encode(Batch("st-1", epoch, tuple(rows))))


def _everything(store: SqlLedgerStore, url: str, files: bool = True) -> str:
    """Every value of every table as text (and the SQLite file's raw bytes)."""
    if store.dialect == "sqlite":
        tables = [
            r["name"] for r in store.fetch("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
    else:
        tables = [
            r["table_name"]
            for r in store.fetch(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            )
        ]
    text = []
    for table in tables:
        for row in store.fetch(f"SELECT * FROM {table}"):
            for value in row.values():
                text.append(
                    bytes(value).decode("latin-1")
                    if isinstance(value, bytes | memoryview)
                    else str(value)
                )
    if store.dialect == "sqlite" and files:
        for suffix in ("", "-wal"):
            path = Path(url + suffix)
            if path.exists():
                text.append(path.read_bytes().decode("latin-1"))
    return "\n".join(text)


def test_pseudonymised_storage_holds_no_raw_code(tmp_path: Path, ledger_url: str) -> None:
    epoch, rows = _journal(tmp_path / "s.db")
    store = open_store(ledger_url, pseudonym_key=KEY)
    assert store.pseudonymised
    store.ingest(_batch(epoch, rows[:6]))
    store.ingest(_batch(epoch, rows[6:]))
    # a conflicting record and a quarantined batch carry codes too
    forged = {**rows[1], "net_mg": 1}
    forged["hash"] = record_hash(forged)
    assert store.ingest(_batch(epoch, [forged])).conflicts
    store.quarantine(
        "pesee/v1/stations/st-1/records", encode(Batch("st-1", epoch, tuple(rows))), "bad signature"
    )
    expected = {
        code: "h:" + hmac.new(KEY, code.encode(), hashlib.sha256).hexdigest()[:32] for code in CODES
    }
    assert {c: store.pseudonym(c) for c in CODES} == expected
    stored = {r["beneficiary"] for r in store.records() if r["kind"] == "weighing"}
    assert stored == set(expected.values())
    # the station's hashes are kept keyed: HMAC(key, hash), compared in that form
    keyed = [hmac.new(KEY, r["hash"].encode(), hashlib.sha256).hexdigest() for r in rows]
    assert [r["hash"] for r in store.records()] == keyed
    store.close()
    store = open_store(ledger_url, pseudonym_key=KEY)
    dump = _everything(store, ledger_url)
    assert "h:" in dump and "B001" not in dump
    for code in CODES:
        assert code not in dump
    # the same people: unique counts unchanged; the office finds a person by the code shown
    persons = store.fetch(
        "SELECT count(DISTINCT beneficiary) AS n FROM records WHERE kind = 'weighing' "
        "AND voided_by IS NULL"
    )
    assert persons == [{"n": len(CODES)}]
    assert [r["net_mg"] for r in store.beneficiary_records(CODES[0])] == [1000, 5000, 9000]
    store.close()


def test_erasure_keeps_the_totals_and_cuts_the_link(tmp_path: Path, ledger_url: str) -> None:
    epoch, rows = _journal(tmp_path / "s.db")
    store = open_store(ledger_url)  # not pseudonymised: erasure works on raw codes too
    store.ingest(_batch(epoch, rows))
    totals = "SELECT sum(net_mg) AS kg, count(DISTINCT beneficiary) AS n FROM records"
    before = store.fetch(totals)
    assert store.erase_beneficiary(CODES[1]) == 3
    assert store.beneficiary_records(CODES[1]) == []
    assert store.fetch(totals) == before  # the same kg, the same number of persons
    tomb = {r["beneficiary"] for r in store.records() if r["beneficiary"] not in CODES}
    assert len(tomb) == 1 and next(iter(tomb)).startswith("x:")
    assert CODES[1] not in _everything(store, ledger_url)  # SQLite: not in free pages either
    store.close()


def _ledger(
    config: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ledger", "--lang", "en", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def test_cli_refuses_a_missing_secret_and_answers_requests(tmp_path: Path) -> None:
    epoch, rows = _journal(tmp_path / "s.db")
    db = tmp_path / "l.db"
    config = tmp_path / "ledger.toml"
    config.write_text(
        f'[ledger]\ndatabase = "{db}"\npseudonymise = true\n'
        'pseudonym_key = "env:PESEE_TEST_PSEUDONYM_KEY"\nretention_years = 2\n'
    )
    env = {k: v for k, v in os.environ.items() if k != "PESEE_TEST_PSEUDONYM_KEY"}
    done = subprocess.run(
        [sys.executable, "-m", "ledger", "--lang", "en", "--config", str(config), "run"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 78
    assert "PESEE_TEST_PSEUDONYM_KEY is not set" in done.stderr and "Traceback" not in done.stderr
    key = {"PESEE_TEST_PSEUDONYM_KEY": KEY.decode()}
    store = open_store(str(db), pseudonym_key=KEY)
    store.ingest(_batch(epoch, rows))
    store.close()
    shown = _ledger(config, "beneficiary", "show", CODES[0], "--format", "json", env=key)
    assert shown.returncode == 0, shown.stderr
    assert [r["net_mg"] for r in json.loads(shown.stdout)] == [1000, 5000, 9000]
    dry = _ledger(config, "purge", "--dry-run", "--before", "2026-02-01", env=key)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith("Would remove: 4 record(s) before 2026-02-01")
    assert "1 monthly total(s) kept" in dry.stdout
    erased = _ledger(config, "beneficiary", "erase", CODES[0], "--yes", env=key)
    assert erased.stdout.strip() == f"3 record(s) no longer linked to {CODES[0]}"
    migrated = _ledger(config, "db", "migrate", env=key)
    assert migrated.stdout.startswith(f"Database {db}: schema version ")
    bad = _ledger(config, "purge", "--before", "last year", env=key)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    raw = sqlite3.connect(db).execute("SELECT count(*) FROM records").fetchone()
    assert raw == (11,)


def test_the_database_refuses_another_key_or_mode(tmp_path: Path, ledger_url: str) -> None:
    epoch, rows = _journal(tmp_path / "s.db")
    store = open_store(ledger_url, pseudonym_key=KEY)
    store.ingest(_batch(epoch, rows[:3]))
    store.close()
    with pytest.raises(PseudonymMismatch, match="pseudonym_key is not the key"):
        open_store(ledger_url, pseudonym_key=b"another-key-of-16-chars-or-more")
    # no key: a reader (the dashboard) reads; a writer is refused with one line
    reader = open_store(ledger_url)
    assert len(list(reader.records())) == 3
    with pytest.raises(PseudonymMismatch, match="pseudonymise = true"):
        reader.ingest(_batch(epoch, rows[3:]))
    with pytest.raises(PseudonymMismatch):
        reader.quarantine("t", b"x", "bad")
    assert len(list(reader.records())) == 3
    reader.close()
    # a database of raw codes is not opened pseudonymised
    raw_url = str(tmp_path / "raw.db") if store.dialect == "sqlite" else None
    if raw_url is not None:
        raw = open_store(raw_url)
        raw.ingest(_batch(epoch, rows[:1]))
        raw.close()
        with pytest.raises(PseudonymMismatch, match="stores raw beneficiary codes"):
            open_store(raw_url, pseudonym_key=KEY)


def test_cli_names_the_mismatched_setting(tmp_path: Path) -> None:
    db = tmp_path / "l.db"
    open_store(str(db), pseudonym_key=KEY).close()
    config = tmp_path / "ledger.toml"
    config.write_text(f'[ledger]\ndatabase = "{db}"\n')
    done = _ledger(config, "stations")
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert "pseudonymise = true" in done.stderr


def test_no_stored_hash_lets_a_code_be_checked(tmp_path: Path, ledger_url: str) -> None:
    """A station hash is SHA-256 of the record with its raw code: stored as such, a guessed
    code re-hashed with the row's other fields would be confirmed (or found by brute force)."""
    epoch, rows = _journal(tmp_path / "s.db")
    store = open_store(ledger_url, pseudonym_key=KEY)
    store.ingest(_batch(epoch, rows[:6]))
    store.ingest(_batch(epoch, rows[6:]))  # the chain continues across batches, keyed
    assert store.head("st-1", epoch) == (11, 11)
    again = store.ingest(_batch(epoch, rows[3:8]))  # a re-sent batch: acked, nothing new
    assert (again.inserted, again.duplicates, again.conflicts) == (0, 5, ())
    forged = {**rows[1], "net_mg": 1}
    forged["hash"] = record_hash(forged)
    assert store.ingest(_batch(epoch, [forged])).conflicts  # other content: a conflict
    assert store.ingest(_batch(epoch, [forged])).conflicts  # the same again: still refused
    assert len(store.conflicts()) == 1

    # every hash computable from a stored row with its raw code, and the station's own
    station_hashes = {r["hash"] for r in rows} | {forged["hash"], genesis_hash(epoch)}
    by_pseudonym = {store.pseudonym(c): c for c in CODES}
    for row in store.records():
        raw = {k: row[k] for k in rows[0]}
        raw["beneficiary"] = by_pseudonym.get(row["beneficiary"], row["beneficiary"])
        station_hashes.add(record_hash(raw))
    assert station_hashes >= {r["hash"] for r in rows}  # the recomputation is the station's
    dump = _everything(store, ledger_url)
    assert not [h for h in station_hashes if h in dump]

    # erasure: the person's hashes go, so even the key cannot confirm their code any more
    theirs = [r for r in rows if r["beneficiary"] == CODES[1]]
    assert store.erase_beneficiary(CODES[1]) == len(theirs)
    keyed = {store.kept_hash(r["hash"]) for r in theirs}
    dump = _everything(store, ledger_url)
    assert not [h for h in keyed if h and h in dump]
    # the chain still holds: duplicates acked, the next records chained past the erased ones
    again = store.ingest(_batch(epoch, rows))
    assert (again.acked_through, again.inserted, again.conflicts) == (11, 0, ())
    store.close()


def test_hashes_stored_raw_by_an_older_ledger_are_keyed_at_open(
    tmp_path: Path, ledger_url: str
) -> None:
    epoch, rows = _journal(tmp_path / "s.db")
    store = open_store(ledger_url, pseudonym_key=KEY)
    store.ingest(_batch(epoch, rows[:6]))
    # what a ledger before schema step 6 left: the station's hashes as sent
    store.sql.many(
        "UPDATE records SET hash = ?, prev_hash = ? WHERE seq = ?",
        [(r["hash"], r["prev_hash"], r["seq"]) for r in rows[:6]],
    )
    store.sql.exec("UPDATE heads SET last_hash = ?", (rows[5]["hash"],))
    store.sql.exec("DELETE FROM ledger_meta WHERE name = 'station_hashes'")
    store.close()
    store = open_store(ledger_url, pseudonym_key=KEY)
    assert [r["hash"] for r in store.records()] == [store.kept_hash(r["hash"]) for r in rows[:6]]
    more = store.ingest(_batch(epoch, rows[6:]))  # chained to the keyed head
    assert (more.acked_through, more.conflicts) == (11, ())
    store.close()


def test_quarantine_keeps_no_code_and_erasure_scrubs_it(tmp_path: Path, ledger_url: str) -> None:
    epoch, rows = _journal(tmp_path / "s.db")
    store = open_store(ledger_url, pseudonym_key=KEY)
    topic = "pesee/v1/stations/st-1/records"
    whole = encode(_batch(epoch, rows))
    odd = json.dumps({"records": [{"beneficiary": 16543217}, {"beneficiary": [CODES[3]]}]})
    store.quarantine(topic, whole, "bad signature")  # JSON: kept redacted
    store.quarantine(topic, odd.encode(), "bad record")  # codes that are not strings
    store.quarantine(topic, whole[: len(whole) // 2], "truncated")  # not JSON: no bytes kept
    kept = store.fetch("SELECT payload, size, sha256 FROM quarantine ORDER BY id")
    assert [r["size"] for r in kept] == [len(whole), len(odd.encode()), len(whole) // 2]
    assert kept[2]["payload"] is None
    assert kept[0]["sha256"] == hashlib.sha256(whole).hexdigest()
    dump = _everything(store, ledger_url)
    for secret in [*CODES, "16543217", *(r["hash"] for r in rows)]:
        assert secret not in dump
    assert str(store.pseudonym(CODES[0])) in dump
    # erasure: the redacted copies naming the person lose their bytes, the rest stays
    store.erase_beneficiary(CODES[0])
    kept = store.fetch("SELECT payload, reason, size FROM quarantine ORDER BY id")
    assert [r["payload"] is None for r in kept] == [True, False, True]
    assert [r["reason"] for r in kept] == ["bad signature", "bad record", "truncated"]
    assert str(store.pseudonym(CODES[0])) not in _everything(store, ledger_url)
    store.close()


def test_erasure_reaches_profiles_ids_and_reports_a_busy_wal(
    tmp_path: Path, ledger_url: str
) -> None:
    from ledger.reports import import_profiles

    epoch, rows = _journal(tmp_path / "s.db")
    store = open_store(ledger_url)
    store.ingest(_batch(epoch, rows))
    import_profiles(store, [(CODES[1], ["single_parent"])])
    store.quarantine("pesee/v1/stations/st-1/records", b'{"b": "' + CODES[1].encode(), "cut")
    reader = None
    if store.dialect == "sqlite":  # a reader in the middle of a query keeps the WAL busy
        reader = sqlite3.connect(ledger_url)
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM records").fetchone()
    assert store.erase_beneficiary(CODES[1]) == 3
    assert store.wal_pending == (reader is not None)
    if reader is not None:
        reader.close()
        assert store.erase_beneficiary(CODES[1]) == 0  # run again: the WAL is emptied
        assert not store.wal_pending
    assert store.fetch("SELECT count(*) AS n FROM profiles WHERE tag = 'single_parent'") == [
        {"n": 1}
    ]
    assert CODES[1] not in _everything(store, ledger_url)
    store.close()
