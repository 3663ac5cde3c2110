"""Month digests give every report the figures the records give, through every change."""

from __future__ import annotations

import random
import threading
from datetime import UTC, date, datetime
from typing import Any

import pytest

from ledger.reports import Period, Report, build_report, import_profiles, totals
from ledger.store import open_store
from sync.record import Record as WireRecord
from sync.wire import Batch, decode_batch, encode
from tests.support import ledger_dataset
from tests.support.ledger_dataset import Dataset

Store = Any

PERIODS = [
    Period.year(2025),
    Period.year(2026),
    Period.quarter(2026, 1),  # st-3's stale clock is repaired into January 2026
    Period.between(date(2026, 1, 1), date(2026, 6, 30)),  # records on both edges
    Period.parse(start="2025-03-15", end="2025-07-10"),  # partial months at both ends
    Period.parse(start="2026-02-03", end="2026-02-17"),  # inside one month
]
GROUPINGS = [
    (),
    ("month",),
    ("category",),
    ("station",),
    ("group",),
    ("referrer",),
    ("referrer_type",),
    ("profile",),
    ("station", "category"),
    ("profile", "referrer"),
    ("month", "referrer_type"),
]


class Records:
    """The store seen without its digests: every figure from the records (queries.py's SQL)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.dialect = store.dialect

    def fetch(self, sql: str, params: Any = ()) -> list[dict[str, Any]]:
        return self.store.fetch(sql, params)  # type: ignore[no-any-return]

    def registries(self) -> Any:
        return self.store.registries()


def _report(store: Any, period: Period, by: tuple[str, ...], ds: Dataset) -> Report:
    return build_report(store, period, by, groups=ds.groups, detail=True)


def same_figures(store: Store, ds: Dataset, periods: list[Period] = PERIODS) -> int:
    """Every report of ``periods`` × GROUPINGS, from the digests and from the records."""
    compared = 0
    for period in periods:
        for by in GROUPINGS:
            assert _report(store, period, by, ds) == _report(Records(store), period, by, ds), (
                period,
                by,
            )
            compared += 1
    assert totals(store, "category") == totals(Records(store), "category")  # every record
    return compared


def _batches(ds: Dataset, size: int, seed: int) -> list[Batch]:
    """Every journal cut into batches, dealt in a shuffled order (out of order per station:
    voids before the weighings they cancel, clocks repaired by records that come later)."""
    out = []
    for journal in ds.journals:
        recs = journal.records
        for i in range(0, len(recs), size):
            part = tuple(map(WireRecord.from_row, recs[i : i + size]))
            out.append(decode_batch(encode(Batch(journal.station, journal.epoch, part))))
    random.Random(seed).shuffle(out)
    return out


@pytest.fixture(scope="module")
def network() -> Dataset:
    return ledger_dataset.network(seed=11, persons=90, visits_per_station=150)


def test_reports_from_digests_match_the_records_through_every_change(
    ledger_url: str, network: Dataset
) -> None:
    store = open_store(ledger_url)
    try:
        batches = _batches(network, 40, seed=3)
        quarter = len(batches) // 4
        # reports between the parts build digests that the next part makes stale: a late void
        # of an earlier month, a clock repaired into another month, a scanned tag that moves a
        # profile fact back
        for k in range(4):
            for batch in batches[k * quarter : (k + 1) * quarter if k < 3 else None]:
                store.ingest(batch)
            if k == 0:
                store.set_registry(network.registry)
            same_figures(store, network, PERIODS[:3] if k < 3 else PERIODS)
        pending = store.fetch("SELECT count(*) AS n FROM digest_changes")[0]["n"]
        assert pending == 0  # every month read since was built and kept
        # another process reads the kept digests (and their cells, for two groupings)
        other = open_store(ledger_url)
        try:
            same_figures(other, network, PERIODS[:2])
        finally:
            other.close()

        import_profiles(store, network.profiles.items())
        same_figures(store, network)
        # a purge of the first half of 2025 (aggregates kept), then an erasure
        store.purge("2025-07-01", "aggregate")
        same_figures(
            store, network, [Period.year(2025), Period.parse(start="2025-06-10", end="2025-08-05")]
        )
        someone = next(r["beneficiary"] for r in network.records if r["beneficiary"])
        assert store.erase_beneficiary(someone)
        same_figures(store, network, [Period.year(2026), Period.year(2025)])
    finally:
        store.close()


def test_another_connection_reads_the_change(ledger_url: str) -> None:
    """The dashboard's own connection built its digests: a change the ledger process makes
    afterwards (here a late void of a weighing months earlier) is in its next report."""
    network = ledger_dataset.network(seed=11, persons=90, visits_per_station=150)
    writer, reader = open_store(ledger_url), open_store(ledger_url)
    try:
        ledger_dataset.ingest(writer, network)
        year = Period.year(2025)
        before = build_report(reader, year, ("category",))
        journal = network.journals[0]
        target = next(
            r
            for r in journal.records
            if r["kind"] == "weighing" and r["recorded_at"] < "2025-06" and not _voided(r, journal)
        )
        void = journal.append(
            "void", datetime(2026, 12, 1, tzinfo=UTC), voids=target["seq"], reason="late"
        )
        part = (WireRecord.from_row(void),)
        writer.ingest(decode_batch(encode(Batch(journal.station, journal.epoch, part))))
        after = build_report(reader, year, ("category",))
        assert after.total.items == before.total.items - 1
        assert after.total.net_mg == before.total.net_mg - int(target["net_mg"])
        assert after == build_report(Records(reader), year, ("category",))
    finally:
        writer.close()
        reader.close()


def _voided(record: dict[str, Any], journal: ledger_dataset.Journal) -> bool:
    return any(r["kind"] == "void" and r["voids"] == record["seq"] for r in journal.records)


def test_reports_while_two_workers_ingest(ledger_url: str, network: Dataset) -> None:
    """Builders racing writers: two connections report in a loop while two others ingest
    (bounded: every batch once, then the readers stop); a digest kept must never be one a
    change overtook. At the end, every month from its digest equals it from the records."""
    batches = _batches(network, 25, seed=5)
    writers = [open_store(ledger_url) for _ in range(2)]
    readers = [open_store(ledger_url) for _ in range(2)]
    done = threading.Event()
    errors: list[BaseException] = []

    def write(store: Store, mine: list[Batch]) -> None:
        try:
            for batch in mine:
                store.ingest(batch)
        except BaseException as exc:
            errors.append(exc)

    def read(store: Store) -> None:
        try:
            for _ in range(200):
                for period in (Period.year(2025), Period.year(2026)):
                    build_report(store, period, ("station",), compare=False, detail=True)
                if done.is_set():
                    return
        except BaseException as exc:
            errors.append(exc)

    try:
        writers[0].set_registry(network.registry)
        threads = [
            threading.Thread(target=write, args=(writers[i], batches[i::2])) for i in range(2)
        ]
        threads += [threading.Thread(target=read, args=(r,)) for r in readers]
        for t in threads:
            t.start()
        for t in threads[:2]:
            t.join(120)
        done.set()
        for t in threads[2:]:
            t.join(120)
        assert not errors, errors
        assert not any(t.is_alive() for t in threads)
        for reader in readers:
            for month in range(1, 13):
                for year in (2025, 2026):
                    period = Period.month(year, month)
                    assert build_report(reader, period, ("category",), compare=False) == (
                        build_report(Records(reader), period, ("category",), compare=False)
                    ), period
    finally:
        for store in (*writers, *readers):
            store.close()


def _send(store: Store, journal: ledger_dataset.Journal, records: list[dict[str, Any]]) -> None:
    part = tuple(map(WireRecord.from_row, records))
    result = store.ingest(decode_batch(encode(Batch(journal.station, journal.epoch, part))))
    assert not result.conflicts


def test_changes_that_move_figures_into_months_no_new_record_is_in(ledger_url: str) -> None:
    """A clock repaired by a January record takes weighings out of December; a tag scanned in
    a backlog from January moves a person's profile fact back over February: both months
    change though the batch that changes them holds no record of theirs."""
    rng = random.Random(1)
    a, b = ledger_dataset.Journal("st-a", rng), ledger_dataset.Journal("st-b", rng)
    person = "B-000001"
    tagged = '{"profile": ["famille"]}'

    def weigh(j: ledger_dataset.Journal, at: datetime, data: str | None = None) -> None:
        fields = dict(visit=f"v-{at:%m%d%H}", beneficiary=person, category="ALI")
        j.append("weighing", at, net_mg=2_000_000, referrer="CCAS", data=data, **fields)

    # st-a boots on 5 January with its clock 19 days behind (it says 17 December)
    a.new_boot(datetime(2026, 1, 5, 9, tzinfo=UTC), stale=ledger_dataset.timedelta(days=19))
    for hour in (9, 10, 11):
        weigh(a, datetime(2026, 1, 5, hour, tzinfo=UTC))
    weigh(a, datetime(2026, 2, 10, 9, tzinfo=UTC))  # still stale: says 22 January
    store = open_store(ledger_url)
    try:
        _send(store, a, a.records)
        months = Period.between(date(2025, 12, 1), date(2026, 3, 31))
        by_month = ("month",)
        assert build_report(store, months, by_month) == build_report(
            Records(store), months, by_month
        )
        a.synchronise()
        weigh(a, datetime(2026, 2, 10, 10, tzinfo=UTC))  # the same boot, its clock now right
        _send(store, a, a.records[-1:])
        assert build_report(store, months, by_month) == build_report(
            Records(store), months, by_month
        )
        assert build_report(store, Period.month(2025, 12)).total.items == 0

        # st-b: February untagged, March tagged; then st-b's backlog of January, tagged
        weigh(b, datetime(2026, 2, 12, 9, tzinfo=UTC))
        weigh(b, datetime(2026, 3, 12, 9, tzinfo=UTC), tagged)
        c = ledger_dataset.Journal("st-c", rng)
        weigh(c, datetime(2026, 1, 20, 9, tzinfo=UTC), tagged)
        _send(store, b, b.records)
        by_profile = ("profile",)
        february = Period.month(2026, 2)
        assert build_report(store, february, by_profile) == build_report(
            Records(store), february, by_profile
        )
        _send(store, c, c.records)
        report = build_report(store, february, by_profile)
        assert report == build_report(Records(store), february, by_profile)
        assert [r.key for r in report.rows] == [("famille",)]  # the fact now holds from January
    finally:
        store.close()


def test_ledger_db_migrate_builds_the_stale_digests(tmp_path: Any) -> None:
    """After an upgrade every month is stale: `ledger db migrate` builds them, in French."""
    from click.testing import CliRunner

    from ledger.cli import cli

    url = str(tmp_path / "ledger.db")
    store = open_store(url)
    ledger_dataset.ingest(store, ledger_dataset.network(seed=2, persons=30, visits_per_station=20))
    stale = store.fetch("SELECT count(DISTINCT month) AS n FROM digest_changes")[0]["n"]
    store.close()
    assert stale > 10
    config = tmp_path / "ledger.toml"
    config.write_text(f'[ledger]\ndatabase = "{url}"\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["--config", str(config), "db", "migrate"])
    assert result.exit_code == 0, result.output
    assert f"{stale} résumés mensuels construits pour les rapports" in result.output
    store = open_store(url)
    assert store.fetch("SELECT count(*) AS n FROM digest_changes")[0]["n"] == 0
    # the persons and funders pages' visit digests too, every month's
    assert store.fetch("SELECT count(*) AS n FROM visit_digests")[0]["n"] == stale
    assert store.refresh_digests() == 0  # nothing left to build
    store.close()


def test_ledger_run_keeps_the_digests_without_a_report(ledger_url: str, tmp_path: Any) -> None:
    """`ledger run` builds the months new records made stale on its own (no report asked, no
    broker even): the next report or dashboard view reads them instead of building them."""
    import subprocess
    import sys
    import time
    from pathlib import Path

    store = open_store(ledger_url)
    ledger_dataset.ingest(store, ledger_dataset.network(seed=4, persons=30, visits_per_station=20))
    assert store.fetch("SELECT count(*) AS n FROM digest_changes")[0]["n"] > 0
    config = Path(tmp_path) / "ledger.toml"
    config.write_text(
        f'[ledger]\ndatabase = "{ledger_url}"\n[mqtt]\nhost = "127.0.0.1"\nport = 1\n',
        encoding="utf-8",
    )  # no broker there: the ingest keeps retrying, the digests are kept all the same
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-m", "ledger", "--lang", "en", "--config", str(config), "run"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=root,
    )  # fmt: skip
    try:
        pending = -1
        for _ in range(600):  # 60 s at the most
            pending = store.fetch(  # month digests to build, then visit digests (their marks)
                "SELECT (SELECT count(*) FROM digest_changes) "
                "+ (SELECT count(*) FROM month_digests WHERE token IS NULL) "
                "+ (SELECT count(*) FROM month_digests) - (SELECT count(*) FROM visit_digests) "
                "AS n"
            )[0]["n"]
            if not pending or proc.poll() is not None:
                break
            time.sleep(0.1)
        assert pending == 0, proc.stderr.read() if proc.poll() is not None else pending
    finally:
        proc.terminate()
        _out, err = proc.communicate(timeout=30)
        store.close()
    assert proc.returncode == 0, err
    assert "Traceback" not in err


def test_records_added_to_a_kept_month_are_taken_in(ledger_url: str) -> None:
    """A month digested, then more weighings of that month (returning and new persons, a void
    of a weighing of the same batch): the kept digest takes them in, and every report — by one
    grouping, by two (the cells), in another process — is the records' own."""
    rng = random.Random(9)
    journal = ledger_dataset.Journal("st-x", rng)
    day = datetime(2026, 3, 2, 9, tzinfo=UTC)

    def visit(n: int, person: int, hours: int, void: bool = False) -> None:
        at = day + ledger_dataset.timedelta(hours=hours)
        referrer = f"R{person % 3}" if person < 12 else "R-new"  # a structure not seen yet
        fields = dict(visit=f"v-{n}", beneficiary=f"B-{person:06d}", referrer=referrer)
        last = None
        for k, category in enumerate(("ALI", "HYG", "VET")[: 1 + n % 3]):
            at += ledger_dataset.timedelta(minutes=1)
            last = journal.append(
                "weighing", at, net_mg=1_000_000 * (k + 1), category=category, **fields
            )
        if void and last is not None:
            journal.append("void", at + ledger_dataset.timedelta(seconds=5), voids=last["seq"])

    for n in range(12):
        visit(n, person=n, hours=n * 7)
    first = len(journal.records)
    for n in range(12, 24):  # six returning persons, six new; two voids in the batch
        visit(n, person=n - 6, hours=n * 7, void=n in (14, 20))
    store = open_store(ledger_url)
    march = Period.month(2026, 3)
    ways = [("category",), ("station", "referrer"), ("month",)]
    try:
        _send(store, journal, journal.records[:first])
        for by in ways:
            assert build_report(store, march, by) == build_report(Records(store), march, by)
        _send(store, journal, journal.records[first:])
        for by in ways:
            assert build_report(store, march, by) == build_report(Records(store), march, by)
        assert store.fetch("SELECT count(*) AS n FROM digest_changes")[0]["n"] == 0
        other = open_store(ledger_url)
        try:
            for by in ways:
                assert build_report(other, march, by) == build_report(Records(other), march, by)
        finally:
            other.close()
        assert build_report(store, march).total.beneficiaries == 18
    finally:
        store.close()
