"""Typed read rows of the ledger store (fleet, conflicts, quarantine, heads) on SQLite and
PostgreSQL: NULL columns are ``None`` on the type, the rows still read as mappings; conflicts
listed after an erasure (issue 12); statuses ordered by journal, then session (issue 15 item 7)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ledger.store import ConflictRow, FleetRow, HeadRow, QuarantineRow, open_store
from station.store import Store
from sync.wire import Batch, StationStatus, decode_batch, encode, record_hash
from tests.support.helpers import beneficiary

ERASED = beneficiary(21)
OTHER = beneficiary(22)


def _journal(path: Path, station: str = "st-1", n: int = 4) -> tuple[str, list[dict[str, Any]]]:
    with Store(path, station) as store:
        for i in range(n):
            store.append(
                "weighing",
                net_mg=(i + 1) * 1000,
                beneficiary=ERASED if i % 2 else OTHER,
                recorded_at=f"2026-11-21T10:00:0{i}.000Z",
            )
        return store.epoch, list(store.records())


def _batch(station: str, epoch: str, rows: list[dict[str, Any]]) -> Batch:
    return decode_batch(encode(Batch(station, epoch, tuple(rows))))


def test_conflicts_of_an_erased_person_list_with_no_hashes(tmp_path: Path, ledger_url: str) -> None:
    epoch, rows = _journal(tmp_path / "s.db")
    store = open_store(ledger_url)
    store.ingest(_batch("st-1", epoch, rows))
    forged = {**rows[1], "net_mg": 5}  # seq 2 (the erased person's) again, another mass
    forged["hash"] = record_hash(forged)
    assert store.ingest(_batch("st-1", epoch, [forged])).conflicts
    assert store.erase_beneficiary(ERASED) == 2
    [conflict] = store.conflicts()
    assert isinstance(conflict, ConflictRow)
    assert (conflict.seq, conflict.kind) == (2, "content")
    # the erasure emptied the hashes that named the person: NULL, visible on the type
    assert (conflict.existing_hash, conflict.new_hash) == (None, None)
    assert ERASED not in conflict.record and json.loads(conflict.record)["hash"] is None
    assert conflict["existing_hash"] is None  # the mapping view says the same
    store.close()


def test_ledger_conflicts_after_an_erasure_prints_no_traceback(tmp_path: Path) -> None:
    """The defect as staff met it: ``ledger conflicts`` sliced a NULL hash."""
    db = tmp_path / "ledger.db"
    epoch, rows = _journal(tmp_path / "s.db")
    store = open_store(str(db))
    store.ingest(_batch("st-1", epoch, rows))
    forged = {**rows[1], "net_mg": 5}
    forged["hash"] = record_hash(forged)
    store.ingest(_batch("st-1", epoch, [forged]))
    store.erase_beneficiary(ERASED)
    store.close()
    config = tmp_path / "ledger.toml"
    config.write_text(f'[ledger]\ndatabase = "{db}"\n')
    done = subprocess.run(
        [sys.executable, "-m", "ledger", "--lang", "en", "--config", str(config), "conflicts"],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ),
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "seq 2: content" in done.stdout and "1 conflict(s)" in done.stderr


def test_rows_are_typed_and_read_as_mappings(tmp_path: Path, ledger_url: str) -> None:
    epoch, rows = _journal(tmp_path / "s.db", n=2)
    store = open_store(ledger_url)
    store.ingest(_batch("st-1", epoch, rows))
    store.update_status(StationStatus("st-2", True, 1, backlog=3), retained=False)
    store.quarantine("pesee/v1/stations/x/records", b"not json", "not JSON")
    st1, st2 = store.fleet()
    assert isinstance(st1, FleetRow)
    # st-1 is known only by its records: every status column NULL
    assert (st1.station, st1.online, st1.last_seen, st1.records, st1.conflicts) == (
        "st-1",
        None,
        None,
        2,
        0,
    )
    assert (st2.station, st2.online, st2.backlog, st2.records) == ("st-2", 1, 3, None)
    assert st2["backlog"] == 3 and st2.get("nothing") is None and "online" in st2
    with pytest.raises(KeyError):
        st2["nothing"]
    plain = dict(st2)
    assert plain == st2.as_dict() and plain["station"] == "st-2"
    assert json.loads(json.dumps(plain))["backlog"] == 3
    [head] = store.heads()
    assert isinstance(head, HeadRow)
    assert (head.station, head.epoch, head.acked_through, head.received_through) == (
        "st-1",
        epoch,
        2,
        2,
    )
    assert head.last_hash == rows[-1]["hash"]
    [kept] = store.quarantined()
    assert isinstance(kept, QuarantineRow)
    assert (kept.topic, kept.reason, kept.size) == ("pesee/v1/stations/x/records", "not JSON", 8)
    assert kept.sha256 is not None and len(kept.sha256) == 64
    store.close()


def test_a_reflashed_station_is_not_ignored_as_stale(tmp_path: Path, ledger_url: str) -> None:
    """Statuses are ordered by journal (epoch) first: a re-flashed station counts its sessions
    from 1 again, in a new journal; a late status of its former journal stays ignored."""
    old_epoch, old_rows = _journal(tmp_path / "old.db", n=1)
    new_epoch, new_rows = _journal(tmp_path / "new.db", n=1)
    store = open_store(ledger_url)
    store.ingest(_batch("st-1", old_epoch, old_rows))

    def status(epoch: str, session: int, backlog: int) -> StationStatus:
        return StationStatus("st-1", True, session, epoch=epoch, backlog=backlog)

    assert store.update_status(status(old_epoch, 57, 1), retained=False)
    assert not store.update_status(status(old_epoch, 56, 9), retained=False)  # same journal
    # re-flashed: a new journal, session 1, before its first batch
    assert store.update_status(status(new_epoch, 1, 2), retained=False)
    assert store.fleet()[0].backlog == 2
    assert not store.update_status(status(old_epoch, 58, 9), retained=False)  # the old journal
    assert store.update_status(status(new_epoch, 2, 3), retained=False)
    store.ingest(_batch("st-1", new_epoch, new_rows))  # the new journal's records arrive
    assert not store.update_status(status(old_epoch, 99, 9), retained=False)
    assert store.update_status(status(new_epoch, 3, 0), retained=False)
    assert store.fleet()[0].backlog == 0
    store.close()
