"""Deterministic ledger datasets: real hash-chained station journals, ingested through the store.

Two shapes: :func:`network` (seeded, two years, several stations, voids, manual entries, pieces,
a boot with an unsynchronised clock, beneficiaries seen at two stations, profiles imported and
scanned) and :func:`issue_example` (built to give exactly the figures the office quoted: "25 t to
1482 persons (124 a month) referred by 28 structures", "332 women with children (2.2 t) referred
by 4 hospitals", "+55 % over the same period last year"). Both return the plain records, so the
tests compute what a report must say on their own, in Python, without the report's SQL.
"""

from __future__ import annotations

import hashlib
import json
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sync.record import Record as WireRecord
from sync.wire import (
    RECORD_FIELDS,
    Batch,
    Registry,
    decode_batch,
    encode,
    genesis_hash,
    record_hash,
)

__all__ = ["Dataset", "Journal", "ingest", "issue_example", "network"]

Record = dict[str, Any]


def _at(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Journal:
    """One station's append-only journal, as the station would send it (seq, chain, boots)."""

    def __init__(self, station: str, rng: random.Random) -> None:
        self.station = station
        self.rng = rng
        self.epoch = hashlib.sha256(f"epoch:{station}:{rng.random()}".encode()).hexdigest()[:32]
        self.records: list[Record] = []
        self.prev = genesis_hash(self.epoch)
        self.boot = ""
        self.boot_start = datetime(1970, 1, 1, tzinfo=UTC)
        self.stale: timedelta | None = None  # clock behind by this much until it synchronises

    def new_boot(self, at: datetime, stale: timedelta | None = None) -> None:
        self.boot = str(uuid.UUID(int=self.rng.getrandbits(128)))
        self.boot_start = at - timedelta(seconds=30)
        self.stale = stale

    def synchronise(self) -> None:
        self.stale = None

    def append(self, kind: str, true_at: datetime, **fields: Any) -> Record:
        """A record made at ``true_at``; its ``recorded_at`` is what the (maybe stale) clock said.
        ``effective_at`` is kept beside the record (not sent): the time the ledger must use."""
        if not self.boot or true_at < self.boot_start:
            self.new_boot(true_at)
        synced = self.stale is None
        shown = true_at if synced else true_at - (self.stale or timedelta())
        record: Record = dict.fromkeys(RECORD_FIELDS)
        record.update(
            seq=len(self.records) + 1,
            uuid=str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            epoch=self.epoch,
            station=self.station,
            kind=kind,
            recorded_at=_at(shown),
            mono_ns=(true_at - self.boot_start) // timedelta(milliseconds=1) * 1_000_000,
            boot_id=self.boot,
            clock_synced=int(synced),
            source="scale" if kind == "weighing" else None,
            stable=1 if kind == "weighing" else None,
            unit="kg" if kind == "weighing" else None,
        )
        record.update(fields)
        if record.get("net_mg") is not None and kind == "weighing":
            record["gross_mg"] = record["net_mg"]
            record["tare_mg"] = 0
        record["prev_hash"] = self.prev
        record["hash"] = record_hash(record)
        self.prev = record["hash"]
        self.records.append(record)
        return record


@dataclass
class Dataset:
    """Records as sent, what the ledger must make of their times, and the office's side."""

    journals: list[Journal]
    registry: Registry
    groups: dict[str, list[str]] = field(default_factory=dict)  # group -> stations
    profiles: dict[str, list[str]] = field(default_factory=dict)  # imported: code -> tags
    # uuid -> time the report must use: the true time where the ledger can repair the clock
    # (a later synchronised record of the same boot), else what the station's clock said
    effective_at: dict[str, str] = field(default_factory=dict)

    @property
    def records(self) -> list[Record]:
        return [r for j in self.journals for r in j.records]

    def referrer_types(self) -> dict[str, str]:
        return {r["code"]: r["type"] for r in self.registry.referrers if r.get("type")}

    def scanned_profiles(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for r in self.records:
            if r["data"] and r["beneficiary"]:
                tags = json.loads(r["data"]).get("profile") or []
                out.setdefault(r["beneficiary"], set()).update(tags)
        return out


def _finish(dataset: Dataset, true_times: dict[str, datetime]) -> Dataset:
    """Work out each record's effective time from the generator's knowledge of the truth."""
    anchored = {(r["station"], r["boot_id"]) for r in dataset.records if r["clock_synced"] == 1}
    for r in dataset.records:
        repaired = r["clock_synced"] == 0 and (r["station"], r["boot_id"]) in anchored
        dataset.effective_at[r["uuid"]] = (
            _at(true_times[r["uuid"]]) if repaired else r["recorded_at"]
        )
    return dataset


def ingest(store: Any, dataset: Dataset, batch_size: int = 300) -> None:
    """Send every journal through the wire codec and the real ledger store, in batches."""
    batches = []
    for journal in dataset.journals:
        recs = journal.records
        for i in range(0, len(recs), batch_size):
            batch = Batch(
                journal.station,
                journal.epoch,
                tuple(map(WireRecord.from_row, recs[i : i + batch_size])),
            )
            batches.append(decode_batch(encode(batch)))
    for batch in batches:
        result = store.ingest(batch)
        assert not result.conflicts, result.conflicts
    store.set_registry(dataset.registry)


def _split(total_mg: int, n: int, rng: random.Random, low: int = 200_000) -> list[int]:
    """``n`` masses (at least ``low`` mg, whole grams) that add up to ``total_mg`` exactly."""
    assert total_mg >= n * low
    spare = (total_mg - n * low) // 1000
    cuts = sorted(rng.randint(0, spare) for _ in range(n - 1))
    parts = [b - a for a, b in zip([0, *cuts], [*cuts, spare], strict=True)]
    out = [low + p * 1000 for p in parts]
    out[-1] += total_mg - sum(out)
    return out


def _code(n: int) -> str:
    return f"B{n:06d}"


# -- a seeded network over two years ---------------------------------------------------------------
CATEGORIES = ("FRU", "LEG", "EPI", "LAI", "HYG", "VET")
REFERRERS = (
    ("R01", "CHU Nord", "hospital"),
    ("R02", "Hôpital Sud", "hospital"),
    ("R03", "CHRS Les Lilas", "chrs"),
    ("R04", "CHRS Horizon", "chrs"),
    ("R05", "CCAS Ville", "ccas"),
    ("R06", "Maison des solidarités", "social_services"),
    ("R07", "Secours du quartier", "association"),
    ("R08", "Mission locale", "other"),
    ("R09", "Lycée Jean Moulin", "school"),
    ("R10", "Sans type", ""),
)
TAGS = ("single_parent", "pregnant", "worker", "retired", "no_rsa", "senior", "disabled")


def network(seed: int = 7, persons: int = 160, visits_per_station: int = 260) -> Dataset:
    rng = random.Random(seed)
    stations = [f"st-{i}" for i in range(1, 6)]
    journals = {s: Journal(s, rng) for s in stations}
    groups = {"assoc-a": ["st-1", "st-2"], "assoc-b": ["st-3", "st-4"]}  # st-5 in none
    home = {p: stations[p % len(stations)] for p in range(persons)}
    other = {p: stations[(p + 2) % len(stations)] for p in range(0, persons, 6)}  # two stations
    referrer = {p: REFERRERS[rng.randrange(len(REFERRERS))][0] for p in range(persons)}
    profiles = {_code(p): rng.sample(TAGS, rng.randint(1, 2)) for p in range(persons) if p % 3 == 0}
    scanned = {p: [rng.choice(TAGS)] for p in range(1, persons, 7)}
    true_times: dict[str, datetime] = {}

    plans: list[tuple[datetime, str, int]] = []
    start = datetime(2025, 1, 1, tzinfo=UTC)
    for station in stations:
        for _ in range(visits_per_station):
            day = start + timedelta(days=rng.randrange(730))
            at = day.replace(hour=rng.randint(8, 17), minute=rng.randrange(60))
            at += timedelta(milliseconds=rng.randrange(60_000))
            who = [p for p in range(persons) if home[p] == station or other.get(p) == station]
            plans.append((at, station, rng.choice(who)))
    # two records exactly on period edges: the first instant is in, the end instant is out
    plans.append((datetime(2026, 1, 1, tzinfo=UTC), "st-1", 0))
    plans.append((datetime(2026, 6, 30, 23, 59, 59, 999000, tzinfo=UTC), "st-1", 5))
    plans.sort()

    repaired_boot_done = False
    unsynced_boot_done = False
    stale_until = unsynced_until = start
    for at, station, person in plans:
        j = journals[station]
        # st-3 starts 2026 with a clock stuck in mid-December 2025; NTP comes back days later
        if station == "st-3" and not repaired_boot_done and at >= datetime(2026, 1, 2, tzinfo=UTC):
            j.new_boot(at, stale=timedelta(days=19, hours=3))
            repaired_boot_done = True
            stale_until = at + timedelta(days=3)
        elif station == "st-3" and j.stale is not None and at >= stale_until:
            j.synchronise()
        # st-4 has one boot in May 2025 that never gets its clock: nothing can repair it
        if station == "st-4" and not unsynced_boot_done and at >= datetime(2025, 5, 10, tzinfo=UTC):
            j.new_boot(at, stale=timedelta(days=40))
            unsynced_boot_done = True
            unsynced_until = at + timedelta(days=1)
        elif (
            station == "st-4"
            and j.stale is not None
            and unsynced_boot_done
            and at >= (unsynced_until)
        ):
            j.new_boot(at)  # a reboot with a good clock: the stale boot keeps its times
        visit = str(uuid.UUID(int=rng.getrandbits(128)))
        code = _code(person)
        data = json.dumps({"profile": scanned[person]}) if person in scanned else None
        rec = j.append("visit_open", at, visit=visit, beneficiary=code, data=data)
        true_times[rec["uuid"]] = at
        t = at
        for _item in range(rng.randint(1, 5)):
            t += timedelta(seconds=rng.randint(5, 90), milliseconds=rng.randrange(1000))
            category = rng.choice(CATEGORIES)
            fields: dict[str, Any] = {
                "visit": visit,
                "beneficiary": code,
                "referrer": referrer[person],
                "category": category,
                "net_mg": rng.randint(50, 25_000) * 1000,
                "operator": "op-1",
            }
            if category == "VET":  # a counting scale for clothes
                fields["pieces"] = rng.randint(1, 12)
            if rng.random() < 0.04:
                fields["source"] = "manual"
                fields["stable"] = None
            rec = j.append("weighing", t, **fields)
            true_times[rec["uuid"]] = t
            if rng.random() < 0.05:
                t += timedelta(seconds=3)
                void = j.append("void", t, visit=visit, voids=rec["seq"], reason="mistake")
                true_times[void["uuid"]] = t
        t += timedelta(seconds=20)
        rec = j.append("visit_close", t, visit=visit, beneficiary=code)
        true_times[rec["uuid"]] = t

    registry = Registry(
        1,
        tuple({"code": c, "name": f"Catégorie {c}"} for c in CATEGORIES),
        tuple({"code": c, "name": n, **({"type": t} if t else {})} for c, n, t in REFERRERS),
    )
    dataset = Dataset(list(journals.values()), registry, groups, profiles)
    return _finish(dataset, true_times)


# -- the office's quoted figures -------------------------------------------------------------------
def issue_example(seed: int = 2016) -> Dataset:
    """2016: 25 000 kg to 1482 persons referred by 28 structures (4 hospitals), of whom 332 women
    with children got 2 200 kg, all referred by hospitals; 2015: 16 100 kg (+55 %). Voided
    weighings (on top of those figures) and manual entries are mixed in."""
    rng = random.Random(seed)
    stations = ["epicerie-1", "epicerie-2"]
    journals = {s: Journal(s, rng) for s in stations}
    hospitals = [(f"H{i}", f"Hôpital {i}", "hospital") for i in range(1, 5)]
    others = [
        (f"S{i:02d}", f"Structure {i}", ("chrs", "ccas", "association")[i % 3])
        for i in range(1, 25)
    ]
    referrers = hospitals + others  # 28
    persons = 1482
    women = range(332)  # tagged women_with_children, referred by hospitals
    referrer_of = {}
    for p in range(persons):
        if p < 400:  # the 332 women, and 68 more hospital referrals, untagged
            referrer_of[p] = hospitals[p % 4][0]
        else:
            referrer_of[p] = others[p % 24][0]
    profiles = {_code(p): ["women_with_children"] for p in women}
    true_times: dict[str, datetime] = {}

    def serve(year: int, group: list[int], total_mg: int) -> None:
        # 1 to 3 items per person, weights exact to the milligram total
        counts = [rng.randint(1, 3) for _ in group]
        masses = _split(total_mg, sum(counts), rng)
        for person, n in zip(group, counts, strict=True):
            station = stations[0] if person % 5 else stations[1]
            day = datetime(year, 1, 1, tzinfo=UTC) + timedelta(days=rng.randrange(365))
            at = day.replace(hour=rng.randint(9, 17), minute=rng.randrange(60))
            items = [masses.pop() for _ in range(n)]
            if 400 <= person < 460 and n > 1:  # seen at both stations: still one person
                plans.append((at, stations[0], person, items[:1]))
                plans.append((at + timedelta(hours=1), stations[1], person, items[1:]))
            else:
                plans.append((at, station, person, items))

    plans: list[tuple[datetime, str, int, list[int]]] = []
    serve(2016, list(women), 2_200_000_000)
    serve(2016, list(range(332, persons)), 22_800_000_000)
    serve(2015, list(range(0, persons, 2)), 16_100_000_000)
    # visits where the only item was voided: these persons count for nothing there
    for person in range(400, 460):
        plans.append(
            (
                datetime(2016, 11, 3, 10, tzinfo=UTC) + timedelta(minutes=person),
                stations[1],
                person,
                [],
            )
        )
    plans.sort(key=lambda p: (p[0], p[1], p[2]))
    for at, station, person, items in plans:
        j = journals[station]
        visit = str(uuid.UUID(int=rng.getrandbits(128)))
        code = _code(person)
        t = at
        if not items:  # a visit where an item was weighed, then voided: nothing counts
            rec = j.append(
                "weighing",
                t,
                visit=visit,
                beneficiary=code,
                referrer=referrer_of[person],
                category="EPI",
                net_mg=1_500_000,
            )
            true_times[rec["uuid"]] = t
            t += timedelta(seconds=4)
            rec = j.append("void", t, visit=visit, voids=rec["seq"], reason="mistake")
            true_times[rec["uuid"]] = t
            continue
        for mass in items:
            t += timedelta(seconds=rng.randint(5, 60))
            manual = rng.random() < 0.03
            rec = j.append(
                "weighing",
                t,
                visit=visit,
                beneficiary=code,
                referrer=referrer_of[person],
                category=rng.choice(CATEGORIES[:5]),
                net_mg=mass,
                **({"source": "manual", "stable": None} if manual else {}),
            )
            true_times[rec["uuid"]] = t
            if rng.random() < 0.02:  # weighed twice by mistake: the copy is voided
                t += timedelta(seconds=3)
                copy = j.append(
                    "weighing",
                    t,
                    visit=visit,
                    beneficiary=code,
                    referrer=referrer_of[person],
                    category="EPI",
                    net_mg=mass,
                )
                true_times[copy["uuid"]] = t
                t += timedelta(seconds=3)
                rec = j.append("void", t, visit=visit, voids=copy["seq"], reason="twice")
                true_times[rec["uuid"]] = t
    registry = Registry(
        1,
        tuple({"code": c, "name": f"Catégorie {c}"} for c in CATEGORIES),
        tuple({"code": c, "name": n, "type": t} for c, n, t in referrers),
    )
    return _finish(Dataset(list(journals.values()), registry, {}, profiles), true_times)
