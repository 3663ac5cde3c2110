"""The journal keeps each record's wire bytes: the upgrade of an old journal, the uploader's read,
old and new rows on the wire, and verify's check of the bytes."""

from __future__ import annotations

import logging
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest

from common.i18n import speaking
from ledger.service import LedgerService
from station.config import load_config
from station.journal_sql import unseal_wire
from station.loop import QUIET_S, Station
from station.outbox import JournalOutbox
from station.sim import example_config
from station.store import JournalReader, Store
from sync.record import Record, genesis_hash, record_hash
from sync.topics import Topics
from sync.uploader import Uploader
from sync.wire import decode_batch, encode_parts, encode_records
from tests.support.helpers import Collector, until

STATION = "st-1"
# The journal of schema 1, as sqlite-utils made it and this software did until schema 2: written
# out here, not taken from station/, so that the upgrade is tested from the real old file.
V1_SQL = """
CREATE TABLE "meta" (
   "k" TEXT PRIMARY KEY,
   "v" TEXT
);
CREATE TABLE "records" (
   "seq" INTEGER PRIMARY KEY,
   "uuid" TEXT NOT NULL,
   "epoch" TEXT NOT NULL,
   "station" TEXT NOT NULL,
   "kind" TEXT NOT NULL,
   "recorded_at" TEXT NOT NULL,
   "mono_ns" INTEGER,
   "boot_id" TEXT,
   "clock_synced" INTEGER,
   "visit" TEXT,
   "beneficiary" TEXT,
   "referrer" TEXT,
   "category" TEXT,
   "operator" TEXT,
   "source" TEXT,
   "stable" INTEGER,
   "gross_mg" INTEGER,
   "tare_mg" INTEGER,
   "net_mg" INTEGER,
   "unit" TEXT,
   "pieces" INTEGER,
   "unit_weight_mg" INTEGER,
   "pieces_computed" INTEGER,
   "scale_id" TEXT,
   "calibration_id" TEXT,
   "raw" TEXT,
   "voids" INTEGER,
   "reason" TEXT,
   "data" TEXT,
   "prev_hash" TEXT NOT NULL,
   "hash" TEXT NOT NULL
);
CREATE UNIQUE INDEX "idx_records_uuid"
    ON "records" ("uuid");
CREATE INDEX "idx_records_visit"
    ON "records" ("visit");
"""


def v1_journal(path: Path, fields: Sequence[dict[str, Any]]) -> str:
    """A journal of schema 1 holding one weighing per item of ``fields`` (sealed and chained
    as the old Store.append did, written with the old INSERT); returns its epoch."""
    epoch = uuid.uuid4().hex
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=wal")  # as the old Store left it
    conn.executescript(V1_SQL)
    prev = genesis_hash(epoch)
    for seq, extra in enumerate(fields, 1):
        content = {
            "seq": seq,
            "uuid": str(uuid.uuid4()),
            "epoch": epoch,
            "station": STATION,
            "kind": "weighing",
            "recorded_at": f"2026-03-14T09:{seq:02d}:00.000Z",
            "stable": 1,
            "unit": "kg",
            "prev_hash": prev,
            **extra,
        }
        content["hash"] = prev = record_hash(content)  # sealed by hand: it may break a rule
        names = ", ".join(content)
        conn.execute(
            f"INSERT INTO records ({names}) VALUES ({', '.join('?' * len(content))})",
            list(content.values()),
        )
    meta = {
        "epoch": epoch,
        "station": STATION,
        "created_at": "2026-03-14T09:00:00.000Z",
        "last_seq": str(len(fields)),
        "last_hash": prev,
        "synced_through": "0",
        "schema_version": "1",
    }
    conn.executemany("INSERT INTO meta VALUES (?, ?)", list(meta.items()))
    conn.commit()
    conn.close()
    return epoch


def _sql(path: Path, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(query, params).fetchall()
        conn.commit()
    finally:
        conn.close()
    return rows


def _schema(path: Path) -> list[tuple[Any, ...]]:
    return _sql(path, "SELECT type, name, sql FROM sqlite_master ORDER BY name")


def _weights(*grams: int) -> list[dict[str, Any]]:
    return [{"net_mg": g * 1000, "category": "CAT-VET"} for g in grams]


class ReaderOutbox:
    """The uploader's outbox over a JournalReader, by its wire read only (station/outbox.py's
    JournalOutbox is the daemon's: this one checks that the uploader takes the new read)."""

    def __init__(self, path: Path) -> None:
        self.reader = JournalReader(path)
        self.station, self.epoch = self.reader.station, self.reader.epoch
        self.reads = 0

    def last_seq(self) -> int:
        return self.reader.last_seq

    def read(self, after: int, limit: int) -> list[dict[str, Any]]:
        raise AssertionError("an outbox with read_wire is read by read_wire")

    def read_wire(self, after: int, limit: int) -> list[tuple[int, bytes | dict[str, Any]]]:
        self.reads += 1
        return self.reader.read_wire(after, limit)


# -- the upgrade -----------------------------------------------------------------------------
def test_an_old_journal_is_upgraded_in_place_and_new_records_keep_their_bytes(
    tmp_path: Path,
) -> None:
    old = tmp_path / "old.db"
    v1_journal(old, _weights(1, 2, 3))
    with Store(old, STATION) as store:
        assert store.append("weighing", net_mg=4000, stable=True)["seq"] == 4
        row5 = store.append("weighing", net_mg=5000, data={"note": "Vêtements d'été"})
        assert store.verify().ok
        assert [r["seq"] for r in store.records()] == [1, 2, 3, 4, 5]
        assert "wire" not in row5 and all("wire" not in r for r in store.records())
    # no new schema version: an older version, after a rollback, opens the file as it was
    assert _sql(old, "SELECT v FROM meta WHERE k = 'schema_version'") == [("1",)]
    v1_journal(tmp_path / "v1.db", [])
    records_sql = "SELECT sql FROM sqlite_master WHERE name = 'records'"
    assert _sql(old, records_sql) == _sql(tmp_path / "v1.db", records_sql)
    wires = dict(_sql(old, "SELECT r.seq, w.cell FROM records r LEFT JOIN wire w USING (seq)"))
    assert [wires[s] is None for s in range(1, 6)] == [True, True, True, False, False]
    # the bytes a batch carries for the record, to the byte
    assert unseal_wire(wires[5]) == orjson.dumps(Record.from_row(row5).to_wire())
    assert b"\\u" not in wires[5] and "Vêtements".encode() in wires[5]  # UTF-8, as on the wire
    # one schema, whatever the journal's history
    with Store(tmp_path / "new.db", STATION):
        pass
    assert _schema(old) == _schema(tmp_path / "new.db")


def test_the_bytes_of_acked_records_leave_the_journal(tmp_path: Path) -> None:
    """Kept only until the ledger acks their record (deleted at the loop's quiet times, a
    bounded number at a time): the journal does not grow by them."""
    path = tmp_path / "s.db"
    with Store(path, STATION) as store:
        for grams in range(1, 7):
            store.append("weighing", net_mg=grams * 1000)
        store.mark_synced(4)
        assert store.forget_sent(limit=3) == 3 and store.forget_sent() == 1
        assert store.forget_sent() == 0
        assert [s for (s,) in _sql(path, "SELECT seq FROM wire ORDER BY seq")] == [5, 6]
        with JournalReader(path) as reader:
            assert [type(p) for _s, p in reader.read_wire(4, 10)] == [bytes, bytes]
        store.mark_synced(6)
        assert store.forget_sent() == 2
        assert _sql(path, "SELECT count(*) FROM wire") == [(0,)]
        assert store.verify().ok


def test_a_journal_never_upgraded_is_still_read_and_verified(tmp_path: Path) -> None:
    """A read-only reader (a status page, an older backup) never upgrades a file: its rows
    come for the old way of sending, and verify passes."""
    path = tmp_path / "old.db"
    v1_journal(path, _weights(1, 2))
    with JournalReader(path) as reader:
        parts = reader.read_wire(0, 10)
        assert parts == [(r["seq"], r) for r in reader.read(0, 10)]
        assert all(isinstance(p, dict) for _seq, p in parts)
        report = reader.verify()
        assert report.ok and report.records == 2, report.problems
    assert _sql(path, "SELECT v FROM meta WHERE k = 'schema_version'") == [("1",)]


_FULL_CARD = """
set -e
mount -t tmpfs -o size=1m tmpfs "$DATA"
cp "$OLD" "$DATA/station.db"
dd if=/dev/zero of="$DATA/filler" bs=4096 2>/dev/null || true
"$PY" -c "$OPEN" "$DATA/station.db"
rm "$DATA/filler"
"$PY" -c "$OPEN" "$DATA/station.db"
"""
_OPEN = """
import sqlite3, sys
from station.store import Store
from station.journal_sql import has_wire
with Store(sys.argv[1], "st-1", exclusive=True) as store:
    print("opened", has_wire(store._conn), store.last_seq, store.verify().ok, flush=True)
"""


def _namespaces_work() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = ["unshare", "--user", "--map-root-user", "--mount", "true"]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


@pytest.mark.skipif(not _namespaces_work(), reason="needs unshare (user and mount namespaces)")
def test_an_old_journal_on_a_full_card_opens_as_it_is_and_is_upgraded_later(
    tmp_path: Path,
) -> None:
    """The upgrade writes; on a card with no room left it cannot: the journal opens as it was
    (the station runs, as tests/system/test_full_card.py requires), and the next start with
    room upgrades it. A real full file system: a 1 MiB tmpfs in a private mount namespace."""
    data = tmp_path / "data"
    data.mkdir()
    v1_journal(tmp_path / "old.db", _weights(1, 2))
    env = {
        **os.environ,
        "DATA": str(data),
        "PY": sys.executable,
        "OLD": str(tmp_path / "old.db"),
        "OPEN": _OPEN,
        "PESEE_LANG": "en",
    }
    done = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", _FULL_CARD],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["opened False 2 True", "opened True 2 True"], done.stderr
    assert "journal " in done.stderr and "not upgraded this time" in done.stderr
    assert "Traceback" not in done.stderr


# -- the uploader's read -----------------------------------------------------------------------
def test_read_wire_gives_bytes_or_the_old_row_and_the_batch_is_the_old_one(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    v1_journal(path, _weights(1, 2, 3))
    with Store(path, STATION) as store:
        store.append("weighing", net_mg=4000, visit="v-1", raw="S S  4.000 kg\r\n")
        store.append("void", voids=4, reason="button_hold", visit="v-1")
        epoch = store.epoch
    with JournalReader(path) as reader:
        rows = reader.read(0, 10)
        for after in range(5):
            parts = reader.read_wire(after, 3)
            assert [s for s, _p in parts] == [r["seq"] for r in rows[after : after + 3]]
            for (seq, part), row in zip(parts, rows[after:], strict=False):
                # the old rows as read() gives them, the new ones as the bytes of their record
                assert part == (row if seq <= 3 else orjson.dumps(Record.from_row(row).to_wire()))
        for key in (b"", b"station key"):
            for max_bytes in (0, 700, 1500, 4000):
                new = encode_parts(
                    STATION,
                    epoch,
                    reader.read_wire(0, 10),
                    sent_at="t",
                    key=key,
                    max_bytes=max_bytes,
                )
                old = encode_records(
                    STATION, epoch, rows, sent_at="t", key=key, max_bytes=max_bytes
                )
                assert new == old
                assert decode_batch(new[0], key=key or None).last_seq == new[1]


def test_the_daemons_outbox_sends_the_journals_bytes(tmp_path: Path) -> None:
    """station/daemon.py hands the uploader a JournalOutbox: it must offer the bytes, or every
    record would go the old way (read, checked, encoded again)."""
    path = tmp_path / "s.db"
    with Store(path, STATION) as store:
        for grams in (1, 2, 3):
            store.append("weighing", net_mg=grams * 1000)
        epoch = store.epoch
    outbox = JournalOutbox(path, STATION, epoch)
    try:
        parts = outbox.read_wire(1, 10)
        rows = outbox.read(1, 10)
    finally:
        outbox.close()
    assert [p for _s, p in parts] == [orjson.dumps(Record.from_row(r).to_wire()) for r in rows]
    assert [s for s, _p in parts] == [2, 3]


def _upload(outbox: ReaderOutbox, publisher: Any, **options: Any) -> Uploader:
    uploader = Uploader(
        outbox,
        publisher,
        Topics().records(STATION),
        acked_through=0,
        on_acked=lambda _n: None,
        **options,
    )
    uploader.start()
    uploader.connected(True)
    return uploader


def test_old_and_new_rows_reach_a_real_ledger_with_the_same_hashes(
    tmp_path: Path, ledger: LedgerService
) -> None:
    """An upgraded journal: the rows written before the upgrade go the old way (read, checked,
    encoded), the new ones as their bytes, in mixed batches; the ledger takes all of them."""
    path = tmp_path / "s.db"
    v1_journal(path, _weights(*range(1, 6)))
    with Store(path, STATION) as store:
        for grams in range(6, 11):
            store.append("weighing", net_mg=grams * 1000, stable=True, category="CAT-HYG")
        local = {r["seq"]: r["hash"] for r in store.records()}
        epoch = store.epoch

    class ToLedger(Collector):
        def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> bool:
            super().publish(topic, payload)
            ledger.handle(topic, payload)
            return True

    outbox, sent = ReaderOutbox(path), ToLedger()
    uploader = _upload(outbox, sent, max_records=3)
    try:
        assert until(lambda: ledger.store.head(STATION, epoch)[0] == 10)
    finally:
        uploader.stop()
        outbox.reader.close()
    stored = {r["seq"]: r["hash"] for r in ledger.store.records(STATION)}
    assert stored == local
    assert ledger.store.quarantined() == []
    # the new records went as the journal keeps them, byte for byte
    wires = dict(_sql(path, "SELECT seq, cell FROM wire"))
    assert sorted(wires) == [6, 7, 8, 9, 10]
    assert all(
        any(bytes(unseal_wire(w) or b"-") in p for p in sent.payloads) for w in wires.values()
    )


@pytest.mark.parametrize("key", [b"", b"a station key of 16+ bytes"])
def test_a_damaged_cell_is_sent_from_its_columns(
    tmp_path: Path, ledger: LedgerService, key: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    """A card flips a byte of seq 3's cell, not of its columns: that record goes from its
    columns, the others as their bytes, and the ledger takes every one (before the checksum:
    the batch refused at every resend, or, signed, never sent)."""
    path = tmp_path / "s.db"
    with Store(path, STATION) as store:
        for grams in range(1, 6):
            store.append("weighing", net_mg=grams * 1000, stable=True, category="CAT-HYG")
        local = {r["seq"]: r["hash"] for r in store.records()}
        epoch = store.epoch
    _sql(
        path,
        "UPDATE wire SET cell = substr(cell, 1, 20) || 'X' || substr(cell, 22) WHERE seq = 3",
    )
    with JournalReader(path) as reader:
        assert [type(p) for _s, p in reader.read_wire(0, 10)] == [bytes, bytes, dict, bytes, bytes]
    if key:
        ledger.config.signing.keys[STATION] = key.decode()

    class ToLedger(Collector):
        def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> bool:
            ledger.handle(topic, payload)
            return True

    outbox = ReaderOutbox(path)
    with caplog.at_level(logging.WARNING, logger="station"):
        uploader = _upload(outbox, ToLedger(), key=key)
        try:
            assert until(lambda: ledger.store.head(STATION, epoch)[0] == 5)
        finally:
            uploader.stop()
            outbox.reader.close()
    assert {r["seq"]: r["hash"] for r in ledger.store.records(STATION)} == local
    assert ledger.store.quarantined() == []
    assert "seq 3: the bytes kept for sending are damaged" in caplog.text


def test_a_refused_row_without_bytes_still_stops_sending_before_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A row written before the upgrade that is not a valid record (an older version let it
    in) would get its batch quarantined: the records before it are sent, it is not, nor the
    records after it that have their bytes, and the log says why, once."""
    path = tmp_path / "s.db"
    v1_journal(path, [*_weights(1, 2), {"net_mg": 3000, "pieces": 2**62}])
    with Store(path, STATION) as store:
        store.append("weighing", net_mg=4000)
    outbox, sent = ReaderOutbox(path), Collector()
    with caplog.at_level(logging.ERROR, logger="sync.uploader"):
        uploader = _upload(outbox, sent)
        try:
            assert until(lambda: bool(sent.payloads) and outbox.reads >= 5)
            state = uploader.state()
        finally:
            uploader.stop()
            outbox.reader.close()
    assert {(b.first_seq, b.last_seq) for b in map(decode_batch, sent.payloads)} == {(1, 2)}
    assert state.refused == "seq 3: record pieces out of range"
    assert state.sent_through == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors == ["the journal cannot be sent from seq 3: record pieces out of range"]


# -- verify ------------------------------------------------------------------------------------
def _journal(path: Path, n: int = 3, station: str = STATION) -> None:
    with Store(path, station) as store:
        for i in range(n):
            store.append("weighing", net_mg=1000 * (i + 1), stable=True, category="CAT-VET")


@pytest.mark.parametrize(
    "wire",
    [
        pytest.param("replace(cell, '\"net_mg\":2000', '\"net_mg\":2001')", id="a-value"),
        pytest.param("replace(cell, '\"stable\":1', '\"stable\":true')", id="a-type"),
        pytest.param("replace(cell, '\"category\":\"CAT-VET\",', '')", id="a-field-left-out"),
        pytest.param("substr(cell, 1, 40)", id="not-json"),
        pytest.param("(SELECT cell FROM wire WHERE seq = 1)", id="another-record"),
        pytest.param("'not even bytes'", id="text"),
    ],
)
def test_verify_finds_wire_bytes_that_are_not_their_record(tmp_path: Path, wire: str) -> None:
    path = tmp_path / "s.db"
    _journal(path)
    _sql(path, f"UPDATE wire SET cell = CAST({wire} AS BLOB) WHERE seq = 2")
    if wire.startswith("'"):
        _sql(path, f"UPDATE wire SET cell = {wire} WHERE seq = 2")
    with Store(path, STATION) as store:
        report = store.verify()
    assert report.problems == ("seq 2: the bytes kept for sending are not this record",)
    assert "tell the office" in report.advice


def test_verify_reports_an_altered_column_once_and_in_french(tmp_path: Path) -> None:
    """The columns no longer match their hash: that is the finding (the bytes cannot be
    judged against altered columns), as before the journal kept bytes; in the staff's
    language, as the other findings."""
    path = tmp_path / "s.db"
    _journal(path)
    _sql(path, "UPDATE records SET net_mg = 1 WHERE seq = 2")
    with Store(path, STATION) as store:
        assert store.verify().problems == ("seq 2: content altered (hash does not match)",)
    _journal(tmp_path / "b.db")
    _sql(tmp_path / "b.db", "UPDATE wire SET cell = CAST('{}' AS BLOB) WHERE seq = 3")
    with Store(tmp_path / "b.db", STATION) as store, speaking("fr"):
        (problem,) = store.verify().problems
    assert problem == "n° 3 : les octets gardés pour l'envoi ne sont pas cet enregistrement"


def test_station_db_verify_reports_tampered_bytes(config_file: Path) -> None:
    cfg = load_config(config_file)
    _journal(cfg.store_path, 4, cfg.station.id)
    _sql(
        cfg.store_path,
        "UPDATE wire SET cell = (SELECT cell FROM wire WHERE seq = 1) WHERE seq = 4",
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "station",
            "--lang",
            "en",
            "--config",
            str(config_file),
            "db",
            "verify",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert re.search(r"seq 4: the bytes kept for sending are not this record", done.stderr)
    assert "Traceback" not in done.stderr


def test_the_loop_forgets_the_bytes_of_acked_records_when_the_counter_is_quiet(
    tmp_path: Path,
) -> None:
    config = example_config(
        {"station": {"data_dir": str(tmp_path / "data"), "runtime_dir": str(tmp_path / "run")}}
    )
    with Store(config.store_path, config.station.id) as store:
        for grams in (1, 2, 3):
            store.append("weighing", net_mg=grams * 1000)
        store.mark_synced(2)
        loop = Station(config, store)
        started = time.monotonic()
        loop._housekeeping(started + 1)  # staff just acted: not now
        assert len(_sql(config.store_path, "SELECT seq FROM wire")) == 3
        loop._housekeeping(started + QUIET_S + 1)  # a quiet minute
        assert _sql(config.store_path, "SELECT seq FROM wire") == [(3,)]
