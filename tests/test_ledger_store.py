"""The ledger store: idempotent ingest, gaps, and clock repair of unsynchronised boots."""

from __future__ import annotations

from pathlib import Path

from ledger.store import SQLiteLedgerStore
from station.store import Store
from sync.wire import Batch, decode_batch, encode

Row = dict[str, object]


def _records(path: Path, specs: list[tuple[str, int, int, str]]) -> tuple[str, list[Row]]:
    """(boot, mono_ns, clock_synced, recorded_at) per record, in a real station journal."""
    with Store(path, "st-1") as store:
        for boot, mono, synced, at in specs:
            store.append(
                "weighing",
                net_mg=1000,
                boot_id=boot,
                mono_ns=mono,
                clock_synced=synced,
                recorded_at=at,
            )
        return store.epoch, list(store.records())


def _batch(epoch: str, rows: list[Row]) -> Batch:
    return decode_batch(encode(Batch("st-1", epoch, tuple(rows))))


def test_ingest_is_idempotent_and_acks_only_up_to_a_gap(tmp_path: Path) -> None:
    spec = [("b", i, 1, f"2026-11-21T10:00:0{i}.000Z") for i in range(6)]
    epoch, rows = _records(tmp_path / "s.db", spec)
    ledger = SQLiteLedgerStore(tmp_path / "l.db")
    later = ledger.ingest(_batch(epoch, rows[3:]))  # 4..6 before 1..3: a gap
    assert (later.acked_through, later.received_through, later.inserted) == (0, 6, 3)
    first = ledger.ingest(_batch(epoch, rows[:3]))
    assert (first.acked_through, first.inserted) == (6, 3)  # the gap filled: all acked
    again = ledger.ingest(_batch(epoch, rows[:3]))
    assert (again.acked_through, again.inserted, again.duplicates) == (6, 0, 3)
    assert not again.conflicts


def test_unsynchronised_times_are_repaired_from_the_same_boot(tmp_path: Path) -> None:
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
    ledger = SQLiteLedgerStore(tmp_path / "l.db")
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


def test_ledger_stations_and_totals_commands(tmp_path: Path) -> None:
    import subprocess
    import sys

    from sync.wire import StationStatus

    spec = [("b", i, 1, f"2026-11-21T10:00:0{i}.000Z") for i in range(3)]
    epoch, rows = _records(tmp_path / "s.db", spec)
    ledger = SQLiteLedgerStore(tmp_path / "l.db")
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
        ),
        retained=True,
    )
    ledger.close()
    config = tmp_path / "ledger.toml"
    config.write_text(f'[ledger]\ndatabase = "{tmp_path / "l.db"}"\n')

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
    assert lines[1].split()[-4:] == ["3", "0", "ok", "lost"]  # records, conflicts, clock, scale
    totals = ledger_cli("totals", "--by", "station", "--format", "csv").splitlines()
    assert totals[1].startswith("st-1,3,3000,")
