"""OIML R 76 arithmetic and the station-side correction: pure functions, exact numbers."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest

from drivers.base import Reading
from station import metrology
from station.calibration import CalibrationState, Correction, Implausible, minimum_reference_mg
from station.sim import example_config

E5 = 5_000  # e = 5 g


@pytest.mark.parametrize(
    ("load_kg", "initial_g", "in_service_g"),
    [  # the reference's worked example: class III, Max 15 kg, e = 5 g
        ("0", "2.5", "5"),
        ("2.5", "2.5", "5"),
        ("2.505", "5", "10"),
        ("10", "5", "10"),
        ("10.005", "7.5", "15"),
        ("15", "7.5", "15"),
    ],
)
def test_mpe_bands_class_iii(load_kg: str, initial_g: str, in_service_g: str) -> None:
    load = int(Decimal(load_kg) * 1_000_000)
    assert metrology.mpe_mg("III", E5, load) == Decimal(initial_g) * 1000
    assert metrology.mpe_mg("III", E5, load, in_service=True) == Decimal(in_service_g) * 1000


def test_mpe_bands_class_iiii() -> None:
    e = 10_000
    assert metrology.mpe_mg("IIII", e, 50 * e) == e // 2
    assert metrology.mpe_mg("IIII", e, 51 * e) == e
    assert metrology.mpe_mg("IIII", e, 201 * e) == Decimal(e) * 3 / 2


def test_min_load_per_class() -> None:
    assert metrology.min_load_mg("III", E5) == 100_000  # 20 e
    assert metrology.min_load_mg("IIII", 10_000) == 100_000  # 10 e


@pytest.mark.parametrize(
    ("cls", "max_mg", "e_mg", "d_mg", "fragment"),
    [
        ("III", 15_000_000, 3_000, 3_000, "1, 2 or 5"),
        ("III", 15_000_000, 5_000, 2_000, "must divide"),
        ("III", 15_000_000, 1_000, 1_000, "n = Max / e = 15000"),
        ("III", 30_000, 5_000, 5_000, "n = Max / e = 6"),
        ("IIII", 15_000_000, 1_000, 1_000, "not allowed in class IIII"),
        ("III", None, 5_000, 5_000, "capacity (Max) is needed"),
        ("III", 15_002_000, 5_000, 5_000, "not a whole number"),
    ],
)
def test_incoherent_scales_are_named(
    cls: metrology.AccuracyClass, max_mg: int | None, e_mg: int, d_mg: int, fragment: str
) -> None:
    problems = metrology.problems(cls, max_mg, e_mg, d_mg)
    assert any(fragment in p for p in problems), problems


def test_a_coherent_scale_has_no_problem() -> None:
    assert metrology.problems("III", 15_000_000, 5_000, 5_000) == []
    assert metrology.problems("III", 15_000_000, 5_000, 1_000) == []
    assert metrology.problems("IIII", 5_000_000, 10_000, 10_000) == []


def test_points_and_repeatability() -> None:
    inside = metrology.judge("III", E5, 10_000_000, 10_009_000)  # +9 g, in service ±10 g
    outside = metrology.judge("III", E5, 10_000_000, 10_011_000)
    initial = metrology.judge("III", E5, 10_000_000, 10_009_000, in_service=False)
    missing = metrology.judge("III", E5, 2_000_000, None)
    assert inside.passed and inside.error_mg == 9_000 and inside.limit_mg == 10_000
    assert not outside.passed
    assert not initial.passed and initial.limit_mg == 5_000
    assert not missing.passed and missing.error_mg is None
    rep = metrology.repeatability("III", E5, 5_000_000, [5_000_000, 5_004_000, 5_001_000])
    assert rep.spread_mg == 4_000 and rep.passed
    assert not metrology.repeatability("III", E5, 5_000_000, [5_000_000, 5_011_000]).passed
    assert not metrology.repeatability("III", E5, 5_000_000, [5_000_000, None]).passed


def test_rounding_is_judged_conservatively() -> None:
    half = metrology.rounding_mg("half-d", E5)
    assert half == 2_500 and metrology.rounding_mg("none", E5) == 0
    # +3 g at 2 kg, in service ±5 g: within as read, not once the rounding (±2.5 g) is added
    assert metrology.judge("III", E5, 2_000_000, 2_003_000).passed
    assert not metrology.judge("III", E5, 2_000_000, 2_003_000, rounding=half).passed
    assert metrology.judge("III", E5, 2_000_000, 2_000_000, rounding=half).passed
    assert metrology.judge("III", E5, 0, -2_000, rounding=half, in_service=False).passed is False
    with pytest.raises(ValueError):
        metrology.rounding_mg("round", E5)


def test_weighing_targets_cover_min_mpe_changes_and_max() -> None:
    targets = metrology.weighing_targets("III", E5, 15_000_000, 100_000)
    assert [(t.name, t.load_mg, t.low_mg, t.high_mg) for t in targets] == [
        ("min", 100_000, 80_000, 200_000),
        ("500e", 2_500_000, 2_000_000, 3_000_000),
        ("2000e", 10_000_000, 8_000_000, 12_000_000),
        ("max", 15_000_000, 7_500_000, 15_000_000),
    ]
    assert metrology.default_loads(targets) == [0, 100_000, 2_500_000, 10_000_000, 15_000_000]
    assert [t.name for t in metrology.missing(targets, [0])] == ["min", "500e", "2000e", "max"]
    assert metrology.missing(targets, [0, 200_000, 2_000_000, 12_000_000]) == []
    assert [t.name for t in metrology.missing(targets, [100_000, 5_000_000, 10_000_000])] == [
        "500e"
    ]
    # e = 1 g, Max 1.5 kg: 2 000 e is above Max, so not a target; Min from the config
    small = metrology.weighing_targets("III", 1_000, 1_500_000, 50_000)
    assert [(t.name, t.load_mg) for t in small] == [
        ("min", 50_000),
        ("500e", 500_000),
        ("max", 1_500_000),
    ]


def test_config_validates_metrology() -> None:
    cfg = example_config({"scale": {"e": "5 g"}})
    assert cfg.scale.division == E5 and cfg.scale.minimum_load == 100_000
    with pytest.raises(ValueError, match="n = Max / e"):
        example_config({"scale": {"e": "1 g"}})
    with pytest.raises(ValueError, match="below the class's minimum capacity"):
        example_config({"scale": {"e": "5 g", "min_load": "50 g"}})
    with pytest.raises(ValueError, match="need e"):
        example_config({"scale": {"d": "1 g"}})
    assert (
        example_config({"scale": {"e": "5 g", "min_load": "200 g"}}).scale.minimum_load == 200_000
    )


def test_correction_exact_and_rounded_to_d() -> None:
    # a scale showing 1.02 × load + 5 g: 5 g on the empty pan, 10.205 kg with 10 kg on it
    c = Correction.from_points(5_000, 10_205_000, 10_000_000, step_mg=1_000)
    assert c.gain == Fraction(10_000_000, 10_200_000)
    assert c.offset_mg == 0  # the gain only, about the scale's own zero
    # once the scale has zeroed itself (power-on, ZERO key) it shows 1.02 × load
    assert c.value(10_200_000) == 10_000_000
    assert c.value(0) == 0
    assert c.value(int(2_000_000 * 1.02)) == 2_000_000
    assert Correction.from_json(c.to_json()) == c
    tared = c.apply(
        Reading(net_mg=1_020_000, unit="kg", stable=True, tare_mg=510_000, gross_mg=1_530_000)
    )
    assert (tared.net_mg, tared.tare_mg, tared.gross_mg) == (1_000_000, 500_000, 1_500_000)


def test_a_stored_offset_still_applies() -> None:
    old = Correction.from_json({"offset_mg": "5000", "gain": "50/51", "step_mg": "1000"})
    assert old.value(10_205_000) == 10_000_000 and old.value(5_000) == 0


def test_span_reference_at_least_max_over_3_or_1000_d() -> None:
    assert minimum_reference_mg(15_000_000, 5_000) == 5_000_000
    assert minimum_reference_mg(10_000_000, 5_000) == 3_333_334  # rounded up
    assert minimum_reference_mg(None, 5_000) == 5_000_000  # 1000 d
    assert minimum_reference_mg(None, None) == 1_000_000  # d = 1 g when not set


def test_implausible_spans_are_refused() -> None:
    with pytest.raises(Implausible, match="did not change"):
        Correction.from_points(0, 3_000, 10_000_000)
    with pytest.raises(Implausible, match=r"outside 0\.9"):
        Correction.from_points(0, 8_000_000, 10_000_000)


def test_due_date_and_age() -> None:
    from datetime import UTC, datetime

    state = CalibrationState(verified_at="2026-01-10T08:00:00.000Z", verified_step="check")
    now = datetime(2026, 6, 10, 8, 0, tzinfo=UTC)
    assert state.due(365) is not None and state.due(365).date().isoformat() == "2027-01-10"  # type: ignore[union-attr]
    assert not state.overdue(365, now)
    assert state.overdue(30, now)
    assert state.age_days(now) == 151.0
    assert CalibrationState().overdue(365) and CalibrationState().age_days() is None
