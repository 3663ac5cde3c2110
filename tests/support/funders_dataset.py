"""A vestiaire's records made to give the sentences its funders quote (issue 14), dated profiles.

"2016 : 25 t redistribuées à 1 482 personnes (124 par mois) orientées par 28 structures", "dont
332 femmes avec enfants (2,2 t) orientées par 4 hôpitaux, 1 CHU et 1 CASO", "215 femmes avec
enfants de janvier à avril 2017, +55 % par rapport à la même période de 2016" (139 from January to
April 2016), "2015 : 10,5 t, moyenne mensuelle 874,8 kg et 65 bénéficiaires".

The women with children hold their tag in every way a profile can: imported for always, imported
from a day (``since``) or up to a day (``until``), scanned at a 2016 visit (before the first
weighing, or in the middle of the visit), scanned only in 2017 (six women who also came in 2016,
one of them at a station whose clock was 400 days behind until NTP answered: the ledger must
date the scan by the repaired time), or imported from February 2017. Only the weighings made
while the person held the tag count in the subgroup. The generator knows which those are only
to share the masses out so that the quoted totals come exactly; the tests compute every figure
again from the records and the imported lines, on their own.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sync.wire import Registry
from tests.support.ledger_dataset import Dataset, Journal

__all__ = ["WOMEN", "FundersData", "vestiaire"]

WOMEN = "women_with_children"
STATIONS = ("vestiaire-1", "vestiaire-2")
CATEGORIES = ("VET", "CHA", "PUE", "JOU", "LIN")
HOSPITALS = [(f"H{i}", f"Hôpital {i}", "hospital") for i in range(1, 5)]
CHU = ("CHU1", "CHU Nord", "chu")
CASO = ("CASO1", "CASO Médecins du Monde", "caso")
OTHERS = [
    (f"S{i:02d}", f"Structure {i}", ("chrs", "ccas", "association", "social_services")[i % 4])
    for i in range(1, 23)
]
REFERRERS = [*HOSPITALS, CHU, CASO, *OTHERS]  # 28


@dataclass
class FundersData:
    """The records (``dataset``) and the office's profiles file, as lines to import."""

    dataset: Dataset
    profile_lines: list[tuple[str, list[str], str, str]]  # code, tags, since, until


# a visit as planned: time, station, person code, referrer, and per weighing (the mass pool it
# draws from, whether the weighing carries the scanned tag in its data)
Plan = tuple[datetime, str, str, str, list[tuple[str, bool]]]


def _day(rng: random.Random, first: date, last: date) -> datetime:
    day = first + timedelta(days=rng.randrange((last - first).days + 1))
    return datetime(day.year, day.month, day.day, rng.randint(9, 17), rng.randrange(60), tzinfo=UTC)


def _split(total_mg: int, n: int, rng: random.Random, low: int = 200_000) -> list[int]:
    """``n`` masses of at least ``low`` mg, whole grams, adding up to ``total_mg`` exactly."""
    spare = (total_mg - n * low) // 1000
    assert spare >= 0
    cuts = sorted(rng.randint(0, spare) for _ in range(n - 1))
    parts = [b - a for a, b in zip([0, *cuts], [*cuts, spare], strict=True)]
    out = [low + p * 1000 for p in parts]
    out[-1] += total_mg - sum(out)
    rng.shuffle(out)
    return out


def vestiaire(seed: int = 2017) -> FundersData:
    rng = random.Random(seed)
    d = date
    codes = iter(f"V{n:06d}" for n in range(1, 100_000))

    def people(n: int) -> list[str]:
        return [next(codes) for _ in range(n)]

    a, b, c, dd, e, late, others = (
        people(180),
        people(40),
        people(92),
        people(20),
        people(4),
        people(6),
        people(1140),
    )
    women = a + b + c + dd
    # women referred by the hospitals, the CHU and the CASO only (most by hospitals)
    hospital_like = [h[0] for h in HOSPITALS] * 7 + [CHU[0]] * 3 + [CASO[0]]
    referrer = {p: hospital_like[i % len(hospital_like)] for i, p in enumerate(women + e)}
    referrer.update({p: OTHERS[i % 3][0] for i, p in enumerate(late)})
    referrer.update({p: REFERRERS[i % len(REFERRERS)][0] for i, p in enumerate(others)})
    station = {p: STATIONS[i % 2] for i, p in enumerate([*women, *e, *late, *others])}

    plans: list[Plan] = []

    def visit(when: datetime, person: str, pool: str, n: int = 0, scan: str = "") -> None:
        """``scan``: '' none, 'all' every weighing carries the tag, 'mid' all but the first."""
        n = max(n or rng.randint(1, 3), 2 if scan == "mid" else 1)
        weighings = [(pool, scan == "all") for _ in range(n)]
        if scan == "mid":  # scanned after the first weighing: that one is not in the subgroup
            weighings = [(pool.rstrip("+"), False)] + [(pool, True)] * (n - 1)
        plans.append((when, station[person], person, referrer[person], weighings))

    jan_apr_16 = (d(2016, 1, 1), d(2016, 4, 30))
    may_dec_16 = (d(2016, 5, 1), d(2016, 12, 31))
    jan_apr_17 = (d(2017, 1, 1), d(2017, 4, 30))
    # "16+": a 2016 weighing while the person held the tag (the 2.2 t); "16": any other
    for i, p in enumerate(a):  # imported, always
        if i < 100:
            visit(_day(rng, d(2016, 2, 1), d(2016, 2, 29)), p, "16+")
            if i % 2:
                visit(_day(rng, *may_dec_16), p, "16+")
        else:
            visit(_day(rng, *may_dec_16), p, "16+")
        if i < 150:
            visit(_day(rng, *jan_apr_17), p, "17")
    for i, p in enumerate(b):  # imported since 2016-03-01
        visit(_day(rng, d(2016, 1, 4), d(2016, 2, 28)), p, "16")
        if i < 19:
            visit(_day(rng, d(2016, 4, 1), d(2016, 4, 30)), p, "16+")
        else:
            visit(_day(rng, d(2016, 6, 1), d(2016, 12, 31)), p, "16+")
        if i < 25:
            visit(_day(rng, *jan_apr_17), p, "17")
    for i, p in enumerate(c):  # scanned at a 2016 visit
        if i < 30:
            visit(_day(rng, *jan_apr_16), p, "16")
        visit(_day(rng, d(2016, 5, 1), d(2016, 8, 31)), p, "16+", scan="mid" if i < 10 else "all")
        if 30 <= i < 60:  # the tag holds at later visits, scanned or not
            visit(_day(rng, d(2016, 9, 1), d(2016, 12, 31)), p, "16+")
        if i < 30:
            visit(_day(rng, *jan_apr_17), p, "17")
    for i, p in enumerate(dd):  # imported until 2016-06-30
        visit(_day(rng, d(2016, 3, 1), d(2016, 3, 31)), p, "16+")
        visit(_day(rng, d(2016, 9, 1), d(2016, 12, 31)), p, "16")
        if i < 10:
            visit(_day(rng, *jan_apr_17), p, "17")
    for p in e:  # imported since 2017-02-01
        visit(_day(rng, d(2016, 10, 1), d(2016, 10, 31)), p, "16")
        visit(_day(rng, d(2017, 3, 1), d(2017, 3, 31)), p, "17")
    for i, p in enumerate(late):  # came in 2016, tag scanned in February 2017 only
        window = jan_apr_16 if i < 4 else (d(2016, 6, 1), d(2016, 6, 30))
        visit(_day(rng, *window), p, "16")
        visit(_day(rng, d(2017, 2, 6), d(2017, 2, 24)), p, "17", scan="all")
    for i, p in enumerate(others):
        visit(_day(rng, d(2016, 1, 1), d(2016, 12, 31)), p, "16")
        if i % 10 < 3:
            visit(_day(rng, d(2016, 1, 1), d(2016, 12, 31)), p, "16")
        if i < 300:
            visit(_day(rng, *jan_apr_17), p, "17")
    for p in women + others[:448]:  # 780 persons in 2015
        visit(_day(rng, d(2015, 1, 1), d(2015, 12, 31)), p, "15")

    # the masses, exact per pool: 2.2 t while tagged, 25 t in 2016, 10 497,6 kg in 2015
    totals = {
        "16+": 2_200_000_000,
        "16": 22_800_000_000,
        "15": 10_497_600_000,
        "17": 9_300_000_000,
    }
    wanted = {pool: sum(1 for plan in plans for w in plan[4] if w[0] == pool) for pool in totals}
    masses = {pool: _split(totals[pool], wanted[pool], rng) for pool in totals}

    journals = {s: Journal(s, rng) for s in STATIONS}
    true_times: dict[str, datetime] = {}
    plans.sort(key=lambda plan: (plan[0], plan[1], plan[2]))
    stale_person = late[0]
    for when, where, person, ref, weighings in plans:
        j = journals[where]
        stale = person == stale_person and when.year == 2017
        if stale:  # a power cut: the Pi starts 400 days behind, NTP answers after the visit
            j.new_boot(when - timedelta(minutes=5), stale=timedelta(days=400))
        visit_id = str(uuid.UUID(int=rng.getrandbits(128)))
        t = when
        for pool, carries in weighings:
            t += timedelta(seconds=rng.randint(5, 60))
            fields: dict[str, Any] = {
                "visit": visit_id,
                "beneficiary": person,
                "referrer": ref,
                "category": rng.choice(CATEGORIES),
                "net_mg": masses[pool].pop(),
                "operator": "op-1",
            }
            if carries:
                fields["data"] = json.dumps({"profile": [WOMEN]})
            if rng.random() < 0.03:
                fields["source"] = "manual"
                fields["stable"] = None
            rec = j.append("weighing", t, **fields)
            true_times[rec["uuid"]] = t
            if rng.random() < 0.03:  # weighed twice by mistake: the copy is voided
                t += timedelta(seconds=3)
                copy = j.append("weighing", t, **{**fields, "net_mg": 1_000_000})
                true_times[copy["uuid"]] = t
                t += timedelta(seconds=3)
                void = j.append("void", t, visit=visit_id, voids=copy["seq"], reason="twice")
                true_times[void["uuid"]] = t
        if stale:
            j.synchronise()
            t += timedelta(minutes=2)  # the first synchronised record anchors the repair
            rec = j.append("visit_close", t, visit=visit_id, beneficiary=person)
            true_times[rec["uuid"]] = t

    lines: list[tuple[str, list[str], str, str]] = []
    lines += [(p, [WOMEN], "", "") for p in a]
    lines += [(p, [WOMEN], "2016-03-01", "") for p in b]
    lines += [(p, [WOMEN], "", "2016-06-30") for p in dd]
    lines += [(p, [WOMEN], "2017-02-01", "") for p in e]
    lines += [(p, ["single_parent"], "", "") for p in others[:30]]
    lines += [(others[30], ["pregnant"], "", "")]
    registry = Registry(
        1,
        tuple({"code": code, "name": f"Catégorie {code}"} for code in CATEGORIES),
        tuple({"code": code, "name": name, "type": kind} for code, name, kind in REFERRERS),
        (),
        {
            "referrer_types": [
                {"code": "chu", "name": "CHU", "plural": "CHU", "gender": "m"},
                {"code": "caso", "name": "CASO", "plural": "CASO", "gender": "m"},
            ]
        },
    )
    dataset = Dataset(list(journals.values()), registry)
    anchored = {(r["station"], r["boot_id"]) for r in dataset.records if r["clock_synced"] == 1}
    for r in dataset.records:
        repaired = r["clock_synced"] == 0 and (r["station"], r["boot_id"]) in anchored
        at = true_times[r["uuid"]]
        dataset.effective_at[r["uuid"]] = (
            at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
            if repaired
            else r["recorded_at"]
        )
    return FundersData(dataset, lines)
