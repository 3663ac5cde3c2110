"""The ledger store on SQLite and PostgreSQL alike: ingest once, gaps, conflicts, clock repair,
voids, fleet, registry, quarantine, retention and schema migrations."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.store import SqlLedgerStore, open_store
from ledger.store.ingest import WAITING_FOR_REPAIR
from station.store import Store
from sync.wire import Batch, decode_batch, encode

Row = dict[str, object]


def _records(path: Path, specs: list[tuple[str, int, int, str]]) -> tuple[str, list[Row]]:
    """(boot, mono_ns, clock_synced, recorded_at) per record, in a real station journal (an
    empty boot: a record without a boot id)."""
    with Store(path, "st-1") as store:
        for boot, mono, synced, at in specs:
            store.append(
                "weighing",
                net_mg=1000,
                boot_id=boot or None,
                mono_ns=mono,
                clock_synced=synced,
                recorded_at=at,
            )
        return store.epoch, list(store.records())


def _batch(epoch: str, rows: list[Row]) -> Batch:
    return decode_batch(encode(Batch("st-1", epoch, tuple(rows))))


def test_ingest_is_idempotent_and_acks_only_up_to_a_gap(tmp_path: Path, ledger_url: str) -> None:
    spec = [("b", i, 1, f"2026-11-21T10:00:0{i}.000Z") for i in range(6)]
    epoch, rows = _records(tmp_path / "s.db", spec)
    ledger = open_store(ledger_url)
    later = ledger.ingest(_batch(epoch, rows[3:]))  # 4..6 before 1..3: a gap
    assert (later.acked_through, later.received_through, later.inserted) == (0, 6, 3)
    first = ledger.ingest(_batch(epoch, rows[:3]))
    assert (first.acked_through, first.inserted) == (6, 3)  # the gap filled: all acked
    again = ledger.ingest(_batch(epoch, rows[:3]))
    assert (again.acked_through, again.inserted, again.duplicates) == (6, 0, 3)
    assert not again.conflicts


def test_unsynchronised_times_are_repaired_from_the_same_boot(
    tmp_path: Path, ledger_url: str
) -> None:
    second = 1_000_000_000
    spec = [
        # a boot with a stale clock (the last saved time, days behind), then NTP arrives
        ("boot-1", 100 * second, 0, "2026-11-18T08:00:00.000Z"),
        ("boot-1", 160 * second, 0, "2026-11-18T08:01:00.000Z"),
        ("boot-1", 400 * second, 1, "2026-11-21T09:00:00.000Z"),
        # another boot that never got synchronised: nothing to repair it with
        ("boot-2", 5 * second, 0, "2026-11-21T09:10:00.000Z"),
    ]
    epoch, rows = _records(tmp_path / "s.db", spec)
    ledger = open_store(ledger_url)
    ledger.ingest(_batch(epoch, rows[:2]))  # the anchor has not arrived yet
    stored = {r["seq"]: r for r in ledger.records("st-1")}
    assert stored[1]["corrected_at"] is None
    ledger.ingest(_batch(epoch, rows[2:]))
    stored = {r["seq"]: r for r in ledger.records("st-1")}
    assert stored[1]["corrected_at"] == "2026-11-21T08:55:00.000Z"  # 300 s before the anchor
    assert stored[2]["corrected_at"] == "2026-11-21T08:56:00.000Z"
    assert stored[1]["recorded_at"] == "2026-11-18T08:00:00.000Z"  # the original is kept
    assert stored[3]["corrected_at"] is None  # synchronised: nothing to repair
    assert stored[4]["corrected_at"] is None  # no anchor in boot-2


@pytest.mark.parametrize("order", ["together", "waiting first", "one by one, backwards"])
def test_a_clock_lost_later_in_a_boot_is_repaired_from_its_first_synchronised_record(
    tmp_path: Path, ledger_url: str, order: str
) -> None:
    second = 1_000_000_000
    spec = [("boot-0", 50 * second, 1, "2026-11-20T07:00:00.000Z")]  # the boot before
    # boot-1: synchronised for 40 records (more than one read of the walk back), a record
    # without a boot id, then the clock lost (a wrong step back), never found again
    spec += [("boot-1", (10 + i) * second, 1, f"2026-11-21T08:00:{i:02d}.000Z") for i in range(40)]
    spec += [("", 0, 1, "2026-11-21T08:00:45.000Z")]
    spec += [
        ("boot-1", 100 * second, 0, "2026-11-21T07:00:00.000Z"),
        ("boot-1", 160 * second, 0, "2026-11-21T07:01:00.000Z"),
        ("boot-2", 5 * second, 0, "2026-11-21T09:10:00.000Z"),  # never synchronised
    ]
    epoch, rows = _records(tmp_path / "s.db", spec)
    ledger = open_store(ledger_url)
    if order == "together":
        ledger.ingest(_batch(epoch, rows))
    elif order == "waiting first":  # nothing to repair them with yet, then the boot's start
        ledger.ingest(_batch(epoch, rows[-3:]))
        assert {r["corrected_at"] for r in ledger.records("st-1")} == {None}
        ledger.ingest(_batch(epoch, rows[:-3]))
    else:
        for row in reversed(rows):
            ledger.ingest(_batch(epoch, [row]))
    stored = {r["seq"]: r for r in ledger.records("st-1")}
    # the anchor: boot-1's first synchronised record (seq 2: 08:00:00 at 10 s)
    assert stored[43]["corrected_at"] == "2026-11-21T08:01:30.000Z"
    assert stored[44]["corrected_at"] == "2026-11-21T08:02:30.000Z"
    assert stored[44]["occurred_at"] == "2026-11-21T08:02:30.000Z"
    assert stored[45]["corrected_at"] is None  # boot-2 has no anchor
    assert all(stored[seq]["corrected_at"] is None for seq in range(1, 43))


def test_an_anchor_that_fills_a_gap_repairs_its_boot(tmp_path: Path, ledger_url: str) -> None:
    """The anchor arrives last, between two records waiting (batches out of order): the
    ledger's memory of where it stopped looking must not hide it."""
    second = 1_000_000_000
    spec = [
        ("boot-1", 10 * second, 0, "2026-11-18T08:00:00.000Z"),
        ("boot-1", 20 * second, 1, "2026-11-21T09:00:00.000Z"),
        ("boot-1", 30 * second, 0, "2026-11-18T08:00:20.000Z"),
    ]
    epoch, rows = _records(tmp_path / "s.db", spec)
    ledger = open_store(ledger_url)
    for i in (0, 2, 1):
        ledger.ingest(_batch(epoch, [rows[i]]))
    stored = {r["seq"]: r for r in ledger.records("st-1")}
    assert stored[1]["corrected_at"] == "2026-11-21T08:59:50.000Z"
    assert stored[3]["corrected_at"] == "2026-11-21T09:00:10.000Z"


def test_an_earlier_synchronised_record_arriving_late_becomes_the_anchor(
    tmp_path: Path, ledger_url: str
) -> None:
    """What the ledger remembers of a boot's anchor gives way to an earlier synchronised
    record that arrives later, as the boot's first synchronised record is the anchor."""
    second = 1_000_000_000
    spec = [
        ("boot-1", 10 * second, 1, "2026-11-21T09:00:00.000Z"),
        ("boot-1", 20 * second, 1, "2026-11-21T09:00:30.000Z"),  # NTP stepped the clock 20 s
        ("boot-1", 30 * second, 0, "2026-11-18T08:00:00.000Z"),
        ("boot-1", 40 * second, 0, "2026-11-18T08:00:10.000Z"),
    ]
    epoch, rows = _records(tmp_path / "s.db", spec)
    ledger = open_store(ledger_url)
    ledger.ingest(_batch(epoch, rows[1:3]))  # the anchor then: seq 2
    ledger.ingest(_batch(epoch, rows[:1]))  # seq 1 arrives: the boot's first
    ledger.ingest(_batch(epoch, rows[3:]))
    stored = {r["seq"]: r for r in ledger.records("st-1")}
    assert stored[3]["corrected_at"] == "2026-11-21T09:00:40.000Z"  # from seq 2, as it was
    assert stored[4]["corrected_at"] == "2026-11-21T09:00:30.000Z"  # from seq 1


def test_two_workers_repair_a_boot_as_one_would(tmp_path: Path) -> None:
    """Two ledger processes on one database (docs/scaling.md), each given some of a boot's
    batches: the anchor is the database's, so each repairs from the boot's first
    synchronised record whoever stored it."""
    second = 1_000_000_000
    spec = [
        ("boot-1", 10 * second, 0, "2026-11-18T08:00:00.000Z"),
        ("boot-1", 20 * second, 0, "2026-11-18T08:00:10.000Z"),
        ("boot-1", 30 * second, 1, "2026-11-21T09:00:00.000Z"),  # the anchor
        ("boot-1", 40 * second, 0, "2026-11-18T08:00:30.000Z"),
        ("boot-2", 10 * second, 1, "2026-11-21T10:00:00.000Z"),
        ("boot-2", 20 * second, 1, "2026-11-21T10:00:30.000Z"),  # NTP stepped 20 s
        ("boot-2", 30 * second, 0, "2026-11-18T08:00:00.000Z"),
        ("boot-2", 40 * second, 0, "2026-11-18T08:00:10.000Z"),
    ]
    epoch, rows = _records(tmp_path / "s.db", spec)
    path = str(tmp_path / "ledger.db")
    one, two = open_store(path), open_store(path)
    for worker, i in [(one, 3), (two, 2), (one, 0), (one, 1)]:  # boot-1
        worker.ingest(_batch(epoch, [rows[i]]))
    for worker, i in [(one, 5), (one, 6), (two, 4), (one, 7)]:  # boot-2
        worker.ingest(_batch(epoch, [rows[i]]))
    stored = {r["seq"]: r["corrected_at"] for r in one.records("st-1")}
    assert stored[1] == "2026-11-21T08:59:40.000Z"
    assert stored[2] == "2026-11-21T08:59:50.000Z"
    assert stored[4] == "2026-11-21T09:00:10.000Z"
    assert stored[7] == "2026-11-21T10:00:40.000Z"  # from seq 6, the first stored then
    assert stored[8] == "2026-11-21T10:00:30.000Z"  # from seq 5, the boot's first


def test_a_purged_anchor_gives_way_to_the_next_synchronised_record(tmp_path: Path) -> None:
    second = 1_000_000_000
    spec = [
        ("boot-1", 10 * second, 1, "2020-12-31T23:59:50.000Z"),  # purged below
        ("boot-1", 20 * second, 1, "2021-01-01T00:00:30.000Z"),  # NTP stepped 20 s
        ("boot-1", 30 * second, 0, "2019-01-01T00:00:00.000Z"),
    ]
    epoch, rows = _records(tmp_path / "s.db", spec)
    ledger = open_store(str(tmp_path / "ledger.db"))
    ledger.ingest(_batch(epoch, rows[:2]))
    ledger.purge("2021-01-01", "delete")
    assert [r["seq"] for r in ledger.records("st-1")] == [2]
    ledger.ingest(_batch(epoch, rows[2:]))
    stored = {r["seq"]: r["corrected_at"] for r in ledger.records("st-1")}
    assert stored[3] == "2021-01-01T00:00:40.000Z"  # from seq 2, as the records now say


def test_step_16_finds_the_anchors_of_the_records_already_stored(
    tmp_path: Path, ledger_url: str
) -> None:
    """A ledger upgraded to schema step 16 holds records but no boot_anchors yet: the step
    fills them from the records, so a record waiting that comes next is repaired."""
    second = 1_000_000_000
    spec = [
        ("boot-1", 10 * second, 0, "2026-11-18T08:00:00.000Z"),  # no anchor: never repaired
        ("boot-1", 20 * second, 1, "2026-11-21T09:00:00.000Z"),
        ("boot-1", 30 * second, 1, "2026-11-21T09:00:20.000Z"),
        ("", 40 * second, 1, "2026-11-21T09:00:30.000Z"),  # no boot id: never an anchor
        ("boot-2", 5 * second, 0, "2026-11-18T08:00:00.000Z"),
        ("boot-1", 50 * second, 0, "2026-11-18T08:00:40.000Z"),
    ]
    epoch, rows = _records(tmp_path / "s.db", spec)
    ledger = open_store(ledger_url)
    ledger.ingest(_batch(epoch, rows[:5]))

    def back_to_step_15() -> None:
        ledger.sql.exec("DELETE FROM boot_anchors")
        ledger.sql.exec("DELETE FROM schema_version WHERE version = 16")

    ledger.sql.atomic(back_to_step_15)
    ledger.close()
    ledger = open_store(ledger_url)
    assert ledger.fetch("SELECT boot_id, seq FROM boot_anchors") == [
        {"boot_id": "boot-1", "seq": 2}
    ]
    ledger.ingest(_batch(epoch, rows[5:]))
    stored = {r["seq"]: r["corrected_at"] for r in ledger.records("st-1")}
    assert stored[6] == "2026-11-21T09:00:30.000Z"  # 30 s after seq 2
    assert stored[1] == "2026-11-21T08:59:50.000Z"  # repaired when seq 2 came, as before
    ledger.close()


def test_the_clock_repair_reads_only_records_waiting_for_it(tmp_path: Path) -> None:
    """Every insert paid for an index on boot ids; the repair's lookups now use a partial
    index of the records waiting (a synchronised record adds nothing to it)."""
    spec = [("b", i, 1, f"2026-11-21T10:00:0{i}.000Z") for i in range(3)]
    epoch, rows = _records(tmp_path / "s.db", spec)
    ledger = open_store(str(tmp_path / "l.db"))
    ledger.ingest(_batch(epoch, rows))
    plan = " ".join(
        str(r[-1])
        for r in ledger.sql.exec("EXPLAIN QUERY PLAN " + WAITING_FOR_REPAIR, ("st-1", epoch, "b"))
    )
    assert "idx_records_unsynced" in plan
    indexes = {str(r[0]) for r in ledger.sql.exec("SELECT name FROM sqlite_master")}
    assert "idx_records_station_epoch_boot_id_clock_synced" not in indexes
    (waiting,) = ledger.sql.exec(
        "SELECT count(*) FROM records INDEXED BY idx_records_unsynced "
        "WHERE clock_synced = 0 AND corrected_at IS NULL"
    )[0]
    assert waiting == 0


def test_ledger_stations_and_totals_commands(tmp_path: Path, ledger_url: str) -> None:
    import subprocess
    import sys

    from sync.wire import StationStatus

    spec = [("b", i, 1, f"2026-11-21T10:00:0{i}.000Z") for i in range(3)]
    epoch, rows = _records(tmp_path / "s.db", spec)
    ledger = open_store(ledger_url)
    ledger.ingest(_batch(epoch, rows))
    ledger.update_status(
        StationStatus(
            "st-1",
            True,
            3,
            epoch=epoch,
            last_seq=3,
            synced_through=3,
            backlog=0,
            clock_synced=True,
            scale_ok=False,
            calibration_age_days=400.5,
        ),
        retained=True,
    )
    ledger.close()
    config = tmp_path / "ledger.toml"
    config.write_text(f'[ledger]\ndatabase = "{ledger_url}"\n')

    def ledger_cli(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "ledger", "--lang", "en", "--config", str(config), *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    lines = ledger_cli("stations").splitlines()
    assert lines[0].split()[:2] == ["station", "state"]
    assert lines[1].split()[:2] == ["st-1", "online"]
    # records, conflicts, clock, scale, calibration (400 days > the default 365: due)
    assert lines[1].split()[-7:] == ["3", "0", "ok", "lost", "400", "d", "due"]
    totals = ledger_cli("totals", "--by", "station", "--format", "csv").splitlines()
    assert totals[1].startswith("st-1,3,3000,")


def _forged(row: Row, **changes: object) -> Row:
    """A record changed after the fact, with a hash that matches its new content."""
    from sync.wire import record_hash

    out = {**row, **changes}
    out["hash"] = record_hash(out)
    return out


def test_same_key_other_content_and_broken_chains_are_kept_as_conflicts(
    tmp_path: Path, ledger_url: str
) -> None:
    spec = [("b", i, 1, f"2026-11-21T10:00:0{i}.000Z") for i in range(4)]
    epoch, rows = _records(tmp_path / "s.db", spec)
    ledger = open_store(ledger_url)
    assert ledger.ingest(_batch(epoch, rows[:3])).acked_through == 3
    other = _forged(rows[1], net_mg=999_000)  # seq 2 again, another mass
    result = ledger.ingest(_batch(epoch, [other]))
    assert result.conflicts == ("seq 2: same key, other content",)
    assert (result.acked_through, result.inserted) == (3, 0)
    ledger.ingest(_batch(epoch, [other]))  # re-sent: the conflict is kept once
    unchained = _forged(rows[3], prev_hash="0" * 64)
    result = ledger.ingest(_batch(epoch, [unchained]))
    assert result.conflicts == ("seq 4: not chained to seq 3",)
    assert result.acked_through == 3  # never acked past a broken chain
    kept = ledger.conflicts()
    assert [(c["seq"], c["kind"]) for c in kept] == [(2, "content"), (4, "chain")]
    assert kept[0]["existing_hash"] == rows[1]["hash"]
    assert kept[0]["new_hash"] == other["hash"]
    stored = {r["seq"]: r for r in ledger.records("st-1")}
    assert stored[2]["net_mg"] == 1000  # the first content stays
    assert ledger.fleet()[0]["conflicts"] == 2
    ledger.close()


def test_voids_mark_their_target_whichever_arrives_first(tmp_path: Path, ledger_url: str) -> None:
    with Store(tmp_path / "s.db", "st-1") as store:
        for mass in (1000, 2000, 3000):
            store.append("weighing", net_mg=mass, recorded_at="2026-11-21T10:00:00.000Z")
        store.append("void", voids=2, recorded_at="2026-11-21T10:00:05.000Z")
        store.append("void", voids=4, recorded_at="2026-11-21T10:00:06.000Z")  # the void voided
        store.append("weighing", net_mg=5000, recorded_at="2026-11-21T10:00:07.000Z")
        store.append("void", voids=6, recorded_at="2026-11-21T10:00:08.000Z")
        epoch, rows = store.epoch, list(store.records())
    ledger = open_store(ledger_url)
    ledger.ingest(_batch(epoch, rows[6:]))  # the last void before its weighing
    ledger.ingest(_batch(epoch, rows[:6]))
    voided = {r["seq"]: r["voided_by"] for r in ledger.records("st-1")}
    assert voided == {1: None, 2: 4, 3: None, 4: 5, 5: None, 6: 7, 7: None}
    live = ledger.fetch(
        "SELECT sum(net_mg) AS kg FROM records WHERE kind = 'weighing' AND voided_by IS NULL"
    )
    assert live == [{"kg": 4000}]
    ledger.close()


def test_fleet_keeps_the_newest_session_and_a_will_keeps_the_figures(ledger_url: str) -> None:
    from sync.wire import StationStatus

    ledger = open_store(ledger_url)
    live = StationStatus("st-1", True, 5, version="1.0", backlog=7, clock_synced=True)
    assert ledger.update_status(live, retained=False)
    assert not ledger.update_status(StationStatus("st-1", False, 4), retained=True)  # stale Will
    assert ledger.fleet()[0]["online"] == 1
    assert ledger.update_status(StationStatus("st-1", False, 5), retained=True)
    row = ledger.fleet()[0]
    assert (row["station"], row["online"], row["backlog"], row["version"]) == ("st-1", 0, 7, "1.0")
    assert ledger.update_status(StationStatus("st-1", True, 6, backlog=0), retained=False)
    assert ledger.fleet()[0]["backlog"] == 0
    # a station's own goodbye is newer than its last status: its final figures count…
    t = "2026-11-21T10:00:0{}+00:00".format
    assert ledger.update_status(StationStatus("st-1", True, 7, backlog=4, ts=t(1)), False)
    assert ledger.update_status(StationStatus("st-1", False, 7, backlog=0, ts=t(2)), True)
    assert (ledger.fleet()[0]["online"], ledger.fleet()[0]["backlog"]) == (0, 0)
    # …while a Will, written when the link started, is older than the last status: figures kept
    assert ledger.update_status(StationStatus("st-1", True, 8, backlog=2, ts=t(5)), False)
    assert ledger.update_status(StationStatus("st-1", False, 8, backlog=9, ts=t(3)), True)
    assert (ledger.fleet()[0]["online"], ledger.fleet()[0]["backlog"]) == (0, 2)
    ledger.close()


def test_registry_quarantine_and_heads(tmp_path: Path, ledger_url: str) -> None:
    from sync.wire import Registry

    ledger = open_store(ledger_url)
    assert ledger.registry_version() == 0
    ledger.set_registry(Registry(1, categories=({"code": "CAT-A", "name": "A"},)))
    ledger.set_registry(Registry(2, referrers=({"code": "001", "name": "CCAS"},), extra={"x": 1}))
    ledger.set_registry(Registry(3), station="st-9")
    got = ledger.registries()
    assert ledger.registry_version() == 3
    assert got["all"].version == 2 and got["all"].referrers[0]["name"] == "CCAS"
    assert got["all"].categories == () and got["all"].extra == {"x": 1}
    assert got["st-9"].version == 3
    ledger.quarantine("pesee/v1/stations/x/records", b"\x00not json", "not JSON")
    assert [(q["topic"], q["reason"]) for q in ledger.quarantined()] == [
        ("pesee/v1/stations/x/records", "not JSON")
    ]
    payload = ledger.fetch("SELECT payload FROM quarantine")[0]["payload"]
    assert bytes(payload) == b"\x00not json"
    epoch, rows = _records(tmp_path / "s.db", [("b", 1, 1, "2026-11-21T10:00:00.000Z")])
    ledger.ingest(_batch(epoch, rows))
    assert [(h["station"], h["acked_through"]) for h in ledger.heads()] == [("st-1", 1)]
    assert ledger.head("st-1", epoch) == (1, 1) and ledger.head("st-1", "0" * 32) == (0, 0)
    ledger.close()


def test_retention_aggregates_old_months_and_never_takes_them_back(
    tmp_path: Path, ledger_url: str
) -> None:
    with Store(tmp_path / "s.db", "st-1") as store:
        for i, (at, mass, visit) in enumerate(
            [
                ("2020-03-02T10:00:00.000Z", 1000, "v1"),
                ("2020-03-02T10:01:00.000Z", 2000, "v1"),
                ("2020-03-09T10:00:00.000Z", 4000, "v2"),
                ("2020-04-01T10:00:00.000Z", 8000, "v3"),
                ("2026-01-05T10:00:00.000Z", 16000, "v4"),
            ]
        ):
            store.append(
                "weighing",
                net_mg=mass,
                visit=f"00000000-0000-4000-8000-00000000000{i}"[:-1] + visit[-1],
                category="CAT-VET",
                beneficiary="B0010000011",
                recorded_at=at,
            )
        store.append("void", voids=4, recorded_at="2020-04-01T10:05:00.000Z")
        epoch, rows = store.epoch, list(store.records())
    ledger = open_store(ledger_url)
    ledger.ingest(_batch(epoch, rows))
    dry = ledger.purge("2024-01-01", "aggregate", dry_run=True)
    assert (dry.records, dry.aggregated_rows, dry.dry_run) == (5, 1, True)
    assert len(list(ledger.records())) == 6
    done = ledger.purge("2024-01-01", "aggregate")
    assert done.records == 5
    assert [r["seq"] for r in ledger.records()] == [5]
    aggregates = ledger.fetch(
        "SELECT month, station, category, referrer, net_mg, items, visits FROM aggregates "
        "ORDER BY month"
    )
    assert aggregates == [
        {
            "month": "2020-03",
            "station": "st-1",
            "category": "CAT-VET",
            "referrer": "",
            "net_mg": 7000,
            "items": 3,
            "visits": 2,
        }
    ]  # April's only weighing was voided: nothing to keep
    again = ledger.ingest(_batch(epoch, rows[:3]))  # a station re-sending purged records
    assert (again.inserted, again.duplicates, again.conflicts) == (0, 3, ())
    assert [r["seq"] for r in ledger.records()] == [5]
    ledger.close()
    other = open_store(str(tmp_path / "d.db") if "://" not in ledger_url else ledger_url)
    if other.dialect == "sqlite":
        other.ingest(_batch(epoch, rows))
    other.purge("2030-01-01", "delete")
    assert list(other.records()) == []
    other.close()


def _open_together(url: str, n: int = 3) -> tuple[list[SqlLedgerStore], list[BaseException]]:
    """``n`` workers opening the store at ``url`` at the same moment: the stores opened and
    what the others raised."""
    import threading

    stores: list[SqlLedgerStore] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            stores.append(open_store(url))
        except BaseException as exc:  # reported by the caller
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return stores, errors


def test_schema_is_migrated_once_even_by_two_workers_starting_together(ledger_url: str) -> None:
    from ledger.store.migrations import LATEST

    stores, errors = _open_together(ledger_url)
    assert not errors and len(stores) == 3
    versions = stores[0].fetch("SELECT version FROM schema_version ORDER BY version")
    assert [v["version"] for v in versions] == list(range(1, LATEST + 1))
    assert all(s.schema_version() == LATEST for s in stores)
    for s in stores:
        s.close()


def test_workers_opening_a_new_sqlite_file_together_never_find_it_locked(tmp_path: Path) -> None:
    """The switch to WAL of one opener made another's fail at once with "database is locked"
    (SQLite does not wait on its busy timeout there): 3-5 % of such starts. Many new files,
    three openers each, so that the race shows if it comes back."""
    errors: list[BaseException] = []
    for n in range(25):
        stores, failed = _open_together(str(tmp_path / f"ledger-{n}.db"))
        errors += failed
        for store in stores:
            store.close()
    assert errors == []


def test_a_ledger_file_of_the_first_version_is_migrated(tmp_path: Path) -> None:
    import sqlite3

    from ledger.store.migrations import LATEST, MIGRATIONS

    spec = [("b", i, 1, f"2026-11-21T10:00:0{i}.000Z") for i in range(2)]
    _epoch, rows = _records(tmp_path / "s.db", spec)
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    for sql in MIGRATIONS[0].steps("sqlite"):  # the tables as the first ledger made them
        db.execute(sql)
    db.execute(
        f"INSERT INTO records ({', '.join(rows[0])}, received_at, corrected_at) "
        f"VALUES ({', '.join('?' * len(rows[0]))}, ?, ?)",
        [*rows[0].values(), "2026-11-21T10:00:00.000Z", "2026-11-21T09:59:00.000Z"],
    )
    db.commit()
    db.close()
    ledger = open_store(str(path))
    assert ledger.schema_version() == LATEST
    assert ledger.fetch("SELECT occurred_at FROM records") == [
        {"occurred_at": "2026-11-21T09:59:00.000Z"}
    ]
    ledger.close()


@pytest.mark.pg
def test_postgresql_restart_reconnects_and_never_quarantines_a_batch(tmp_path: Path) -> None:
    """A restarted server cuts the writer's connection: the next batch is stored all the same;
    while the server is down, batches are left unacked (the station resends), not quarantined."""
    from ledger.config import LedgerConfig
    from ledger.service import LedgerService, Message
    from ledger.store import PostgresLedgerStore
    from tests.support.pg import PostgresServer

    spec = [("b", i, 1, f"2026-11-21T10:00:0{i}.000Z") for i in range(6)]
    epoch, rows = _records(tmp_path / "s.db", spec)
    config = LedgerConfig()
    topic = config.topics.records("st-1")

    def message(part: list[Row]) -> Message:
        return Message(topic, encode(Batch("st-1", epoch, tuple(part))), False)

    with PostgresServer() as server:
        store = open_store(server.create_database())
        assert isinstance(store, PostgresLedgerStore)
        store.reconnect_tries = 3  # 0.25 + 0.5 + 1 s before giving up while it is down
        service = LedgerService(config, store)
        service.handle_group([message(rows[:2])])
        server.restart()
        service.handle_group([message(rows[2:4])])
        assert store.head("st-1", epoch) == (4, 4)
        server.halt()
        service.handle_group([message(rows[4:])])  # down: nothing stored, nothing acked
        server.restart()
        assert store.head("st-1", epoch) == (4, 4)
        service.handle_group([message(rows[4:])])  # the station's resend
        assert store.head("st-1", epoch) == (6, 6)
        assert (service.quarantined, store.quarantined()) == (0, [])
        store.close()
