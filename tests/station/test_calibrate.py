"""``station calibrate`` through the real CLI (a subprocess a robot technician answers) against
scale simulators on ptys that are out of adjustment by a known gain and offset; then the daemon's
weighings, the journal, the ledger, the due date and the amber start-up pattern."""

from __future__ import annotations

import itertools
import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from drivers.sim.scale import ScaleSimulator
from ledger.service import LedgerService
from station.calibration import CalibrationState, Correction, load_state, save_state
from station.cli import cli
from station.outcomes import Outcome
from station.sim import EXAMPLE_CONFIG, SimulatedCounter
from tests.support.broker import Broker
from tests.support.helpers import beneficiary, until

ROOT = Path(__file__).resolve().parents[2]
GAIN, OFFSET = Decimal("1.02"), 5_000  # the simulated scale shows 1.02 × load + 5 g
METROLOGY = {"e": "5 g"}  # class III, Max 15 kg: n = 3000, Min = 100 g


def _config(tmp_path: Path, protocol: str, url: str, extra: str = 'e = "5 g"') -> Path:
    """The example config on ``url`` with ``protocol``, its dirs under ``tmp_path``."""
    text = EXAMPLE_CONFIG.read_text(encoding="utf-8")
    text = text.replace('"/var/lib/pesee"', f'"{tmp_path / "data"}"')
    text = text.replace('"/run/pesee"', f'"{tmp_path / "run"}"')
    text = re.sub(r'(?m)^url = "/dev/pesee-scale".*$', f'url = "{url}"', text)
    text = re.sub(r'(?m)^protocol = "mt-sics".*$', f'protocol = "{protocol}"', text)
    text = re.sub(r"(?m)^(capacity = .*)$", lambda m: m.group(1) + "\n" + extra, text)
    path = tmp_path / "station.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def sma(tmp_path: Path) -> Iterator[ScaleSimulator]:
    """A scale with no adjustment command in its protocol (SMA), out of adjustment."""
    with ScaleSimulator("sma", gain=GAIN, offset_mg=OFFSET, stable_timeout_s=0.5) as sim:
        sim.start_pty(tmp_path / "scale")
        yield sim


class Technician:
    """Runs ``station calibrate …`` and does what its lines ask on the simulated pan."""

    def __init__(self, sim: ScaleSimulator, config: Path, *args: str, act: bool = True) -> None:
        self.sim = sim
        self.act = act
        self.lines: list[str] = []
        self.actions: list[str] = []
        # instruction fragment -> mass placed instead (None: leave the pan alone)
        self.overrides: dict[str, str | None] = {}
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        command = [sys.executable, "-m", "station", "--config", str(config), "--lang", "en"]
        self.proc = subprocess.Popen(
            [*command, "calibrate", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=env,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def _do(self, line: str) -> None:
        mass = re.search(r"(\d+\.\d{3}) kg", line)
        for fragment, instead in self.overrides.items():
            if fragment in line:
                if instead is not None:
                    self.sim.place(instead, settle_s=0.2)
                self.actions.append(f"{instead} (asked: {line})")
                return
        if line.startswith("Press the scale's ZERO key"):
            _press_zero(self.sim)
            self.actions.append("ZERO")
        elif line.startswith(("Empty the pan", "Take the load off", "The scale asks: take")):
            self.sim.place(0, settle_s=0.2)
            self.actions.append("0")
        elif mass and re.match(r"(Place|Repeatability|Eccentricity|The scale asks for)", line):
            self.sim.place(mass.group(1), settle_s=0.2)
            self.actions.append(mass.group(1))

    def finish(self, timeout: float = 60.0) -> tuple[int, str, str]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                self.proc.kill()
                raise AssertionError("calibrate did not finish: " + "\n".join(self.lines)) from None
            if line is None:
                break
            self.lines.append(line)
            if self.act:
                self._do(line)
        assert self.proc.stderr is not None
        err = self.proc.stderr.read()
        rc = self.proc.wait(10)
        return rc, "\n".join(self.lines), err


def _press_zero(sim: ScaleSimulator) -> None:
    """The scale's ZERO key (→0←), pressed again while the pan still moves (the scale says so)."""
    assert until(lambda: sim.zero() == "A", timeout=5), "the simulated scale would not zero"


def _run(sim: ScaleSimulator, config: Path, *args: str, **kw: Any) -> tuple[int, str, str]:
    return Technician(sim, config, *args, **kw).finish()


def _history(config: Path) -> list[dict[str, Any]]:
    result = CliRunner().invoke(
        cli, ["--config", str(config), "--lang", "en", "calibrate", "history", "--json"]
    )
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines()]


def _weigh(c: SimulatedCounter, mass: str) -> Any:
    c.scale.place(mass, settle_s=0.05)
    c.press()
    return c.next_result()


def test_span_corrects_a_scale_out_of_adjustment_and_reaches_the_ledger(
    tmp_path: Path, sma: ScaleSimulator, broker: Broker, ledger: LedgerService
) -> None:
    config = _config(tmp_path, "sma", sma.url)
    rc, out, err = _run(
        sma, config, "span", "--reference", "10kg", "--certificate", "CERT-2291",
        "--yes", "--technician", "Alice", "--wait", "15",
    )  # fmt: skip
    assert rc == 0, out + err
    state = load_state(tmp_path / "data")
    assert state.correction is not None
    assert (
        state.correction.gain == 10_000_000 / Decimal(10_200_000)
        or abs(float(state.correction.gain) - 1 / 1.02) < 1e-6
    )
    assert state.correction.offset_mg == 0  # the scale zeroed itself: the gain is corrected
    span = _history(config)[-1]
    assert span["uuid"] == state.in_force_id == state.verified_id
    assert span["operator"] == "Alice" and span["reason"] == "span"
    assert span["data"]["references"][0] == {
        "mass_mg": 10_000_000,
        "certificate": "CERT-2291",
        "class": None,
    }
    assert span["data"]["method"] == "station" and span["data"]["verdict"] == "pass"
    sma.stop()

    # the daemon on the same card, the scale still off by 2 %: weights come out right
    overrides = {
        "station": {"language": "en"},
        "scale": {"protocol": "sma", **METROLOGY},
        "sync": {"host": broker.host, "port": broker.port, "resend_after": 2},
    }
    with SimulatedCounter(tmp_path, overrides, protocol="sma") as c:
        c.scale.gain, c.scale.offset_mg = GAIN, OFFSET
        c.scale.zero()  # the scale's own zero at power-up
        c.scan(beneficiary(7))
        c.next_result()
        c.scan("CAT-VET")
        c.next_result()
        for true_g in (2_000, 7_500, 12_345):
            result = _weigh(c, f"{true_g} g")
            assert result.outcome is Outcome.RECORDED, result.text
            row = c.store.get(result.seq or 0)
            assert row is not None
            assert abs(row["net_mg"] - true_g * 1000) <= 5_000  # within e
            assert row["calibration_id"] == span["uuid"]
        # below Min (20 e = 100 g) and above Max: refused, each with its own words
        result = _weigh(c, "0.050")
        assert result.outcome is Outcome.BELOW_MIN_LOAD
        assert result.text == "Refused: below the minimum capacity (0.100 kg)"
        last = c.store.last_seq
        assert until(lambda: c.store.synced_through == last)
        calibrations = [
            r for r in ledger.store.records("ressourcerie-nord-1") if r["kind"] == "calibration"
        ]
        assert [r["uuid"] for r in calibrations] == [span["uuid"]]
        assert json.loads(calibrations[0]["data"])["technician"] == "Alice"
        fleet = ledger.store.fleet()
        assert until(lambda: ledger.store.fleet()[0]["calibration_age_days"] is not None)
        assert fleet


def test_above_capacity_is_refused(tmp_path: Path) -> None:
    overrides = {"station": {"language": "en"}, "scale": {"capacity": "10 kg", **METROLOGY}}
    with SimulatedCounter(tmp_path, overrides) as c:
        c.scan(beneficiary(8))
        c.next_result()
        c.scan("CAT-VET")
        c.next_result()
        result = _weigh(c, "12.000")
        assert result.outcome is Outcome.ABOVE_CAPACITY
        assert result.text == "Refused: above the maximum capacity (10.000 kg)"
        assert _weigh(c, "9.000").outcome is Outcome.RECORDED


def test_check_judges_each_point_against_its_band(tmp_path: Path) -> None:
    # 0.15 % too heavy: +3 g at 2 kg, +7.5 g at 5 kg pass; +15 g at 10 kg, +22.5 g at 15 kg fail
    sim = ScaleSimulator(
        "sma", gain=Decimal("1.0015"), capacity_mg=20_000_000, stable_timeout_s=0.5
    )
    with sim:
        config = _config(tmp_path, "sma", sim.start_pty(tmp_path / "scale"))
        rc, out, err = _run(
            sim, config, "check", "--loads", "0,2kg,5kg,10kg,15kg", "--repeat", "2",
            "--repeat-load", "5kg", "--eccentricity", "--eccentric-load", "5kg",
            "--rounding", "none", "--json", "--yes", "--technician", "Alice", "--wait", "15",
        )  # fmt: skip
    assert rc == 1, out + err  # a failed check exits 1
    result = json.loads(out.splitlines()[-1])
    assert result["verdict"] == "fail" and result["limits"] == "in-service"
    assert (result["rounding"], result["rounding_mg"]) == ("none", "0")
    assert result["coverage"]["missing"] == ["min"]  # 2 kg is within 20 % of 500 e = 2.5 kg
    cols = result["columns"]
    points = [dict(zip(cols, p, strict=True)) for p in result["points"]]
    assert [p["load_mg"] for p in points] == [0, 2_000_000, 5_000_000, 10_000_000, 15_000_000]
    assert [p["pass"] for p in points] == [True, True, True, False, False]
    assert [p["error_mg"] for p in points] == [0, 3_000, 8_000, 15_000, 22_000]
    assert [p["limit_mg"] for p in points] == ["5000", "5000", "10000", "10000", "15000"]
    assert result["repeatability"]["pass"] and result["repeatability"]["spread_mg"] == 0
    ecc = [dict(zip(cols, p, strict=True)) for p in result["eccentricity"]]
    assert [p["position"] for p in ecc][:2] == ["centre", "front left"]
    assert all(p["pass"] for p in ecc) and len(ecc) == 5
    check = _history(config)[-1]
    assert check["reason"] == "check" and check["data"]["verdict"] == "fail"
    assert load_state(tmp_path / "data").verified_id is None  # a failed check verifies nothing


def test_mtsics_span_uses_the_scales_own_adjustment(tmp_path: Path) -> None:
    with ScaleSimulator("mt-sics", gain=GAIN, offset_mg=OFFSET, stable_timeout_s=0.5) as sim:
        config = _config(tmp_path, "mt-sics", sim.start_pty(tmp_path / "scale"))
        rc, out, err = _run(
            sim, config, "span", "--reference", "10kg", "--yes", "--technician", "Alice",
            "--wait", "15",
        )  # fmt: skip
        assert rc == 0, out + err
        assert sim.adjustments == [10_000_000]  # C2 ran on the scale
        assert "The scale asks for 10.000 kg" in out
        sim.place("7.5", settle_s=0)
        assert sim.snapshot().net_mg == 7_500_000  # and it reads true now
    state = load_state(tmp_path / "data")
    assert state.correction is None  # nothing to correct on the station's side
    span = _history(config)[-1]
    assert span["uuid"] == state.in_force_id
    assert span["data"]["method"] == "scale" and span["data"]["command"] == "C2"
    assert span["scale_id"] == "mt-sics:1126493049"
    assert span["data"]["scale"]["model"].startswith("Pesee-Sim 15kg")


@pytest.mark.parametrize(
    ("placed", "message"),
    [
        # nothing placed: refused while waiting for the load, or (when the pan was still
        # settling from the zero as the wait began, on a loaded machine) by the gain's check
        (None, "the reading did not change"),
        ("16", "the scale is saturated"),
        ("8", "is outside 0.9…1.1"),
    ],
    ids=["unchanged", "saturated", "gain-far-from-1"],
)
def test_implausible_spans_are_refused(
    tmp_path: Path, sma: ScaleSimulator, placed: str | None, message: str
) -> None:
    config = _config(tmp_path, "sma", sma.url)
    tech = Technician(
        sma, config, "span", "--reference", "10kg", "--yes", "--technician", "Bob",
        "--wait", "2" if placed is None else "15",
    )  # fmt: skip
    tech.overrides = {"Place the reference": placed}
    rc, _out, err = tech.finish()
    assert rc == 1
    assert "Span refused, nothing changed" in err and message in err, err
    assert load_state(tmp_path / "data") == CalibrationState()  # nothing in force
    record = _history(config)[-1]
    assert record["data"]["verdict"] == "refused" and message in record["data"]["reason"]


def test_calibrate_refuses_while_the_daemon_runs(tmp_path: Path, sma: ScaleSimulator) -> None:
    config = _config(tmp_path, "sma", sma.url)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "status.json").write_text(json.dumps({"pid": os.getpid()}))
    result = CliRunner().invoke(
        cli,
        [
            "--config",
            str(config),
            "--lang",
            "en",
            "calibrate",
            "zero",
            "--yes",
            "--technician",
            "Bob",
        ],
    )
    assert result.exit_code == 75
    assert "stop the station first: sudo systemctl stop pesee-station" in result.output


def _rising(pin: Any) -> int:
    states = [s.state for s in pin.states]
    return sum(1 for a, b in itertools.pairwise(states) if b and not a)


def test_due_date_in_status_and_amber_at_start_up(tmp_path: Path) -> None:
    overrides = {"station": {"language": "en"}, "scale": METROLOGY}
    long_ago = (datetime.now(UTC) - timedelta(days=400)).isoformat().replace("+00:00", "Z")
    save_state(tmp_path / "data", CalibrationState(verified_at=long_ago, verified_step="check"))
    with SimulatedCounter(tmp_path, overrides) as c:
        amber = c.pin("amber")
        assert until(lambda: _rising(amber) >= 5)  # slow blinks, not the steady "no scale"
        config = _config(tmp_path, "mt-sics", str(tmp_path / "pesee-scale"))
        status = CliRunner().invoke(cli, ["--config", str(config), "--lang", "en", "status"])
        assert "OVERDUE" in status.output, status.output
        assert c.daemon._status().calibration_age_days == pytest.approx(400, abs=0.1)
    recent = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    save_state(tmp_path / "data", CalibrationState(verified_at=recent, verified_step="check"))
    with SimulatedCounter(tmp_path, overrides) as c:
        time.sleep(1.5)
        assert _rising(c.pin("amber")) <= 1
        status = CliRunner().invoke(
            cli, ["--config", str(config), "--lang", "en", "status", "--json"]
        )
        due = json.loads(status.output)["calibration"]
        assert not due["overdue"] and due["due"].startswith(
            (datetime.now(UTC) + timedelta(days=365)).date().isoformat()
        )


def test_check_covers_the_range_before_it_counts(tmp_path: Path) -> None:
    # a scale 5 % heavy: a check on the empty pan alone used to pass and renew the due date
    sim = ScaleSimulator("sma", gain=Decimal("1.05"), capacity_mg=20_000_000, stable_timeout_s=0.5)
    with sim:
        config = _config(tmp_path, "sma", sim.start_pty(tmp_path / "scale"))
        rc, out, err = _run(sim, config, "check", "--yes", "--technician", "Alice", "--wait", "15")
        assert rc == 1, out + err
        # no --loads: zero, Min, 500 e, 2 000 e and Max from the metrology (class III, e = 5 g)
        assert "Test loads from the scale's metrology" in out
        assert "0.000 kg, 0.100 kg, 2.500 kg, 10.000 kg, 15.000 kg" in out
        assert "Overall: FAIL" in out, out
        record = _history(config)[-1]["data"]
        assert record["verdict"] == "fail" and record["coverage"]["missing"] == []
        assert record["rounding"] == "half-d" and record["rounding_mg"] == "2500"
        assert load_state(tmp_path / "data").verified_at is None

        # the scale back in adjustment, but only the empty pan and 5 kg: every point passes,
        # and still the check is "incomplete", recorded, not a verification
        sim.gain = Decimal(1)
        rc, out, err = _run(
            sim, config, "check", "--loads", "0,5kg", "--yes", "--technician", "Alice",
            "--wait", "15",
        )  # fmt: skip
    assert rc == 1, out + err
    assert "Overall: INCOMPLETE" in out and "the due date is unchanged" in out, out
    assert "a load from 0.080 kg to 0.200 kg: near Min (0.100 kg)" in out
    assert "a load from 8.000 kg to 12.000 kg: where the mpe changes (2000 e = 10.000 kg)" in out
    assert "a load from 7.500 kg to 15.000 kg: the top of the range (Max 15.000 kg)" in out
    record = _history(config)[-1]["data"]
    assert record["verdict"] == "incomplete"
    assert record["coverage"]["missing"] == ["min", "500e", "2000e", "max"]
    assert load_state(tmp_path / "data").verified_at is None


def test_the_correction_keeps_the_scales_own_zero(tmp_path: Path) -> None:
    # continuous output: no zero command; 2 % heavy and 50 g on the empty pan at calibration
    sim = ScaleSimulator(
        "toledo-continuous", gain=GAIN, offset_mg=50_000, capacity_mg=20_000_000,
        stable_timeout_s=0.5,
    )  # fmt: skip
    with sim:
        config = _config(tmp_path, "toledo-continuous", sim.start_pty(tmp_path / "scale"))
        rc, out, err = _run(
            sim, config, "span", "--reference", "10kg", "--yes", "--technician", "Alice",
            "--wait", "15",
        )  # fmt: skip
        assert rc == 0, out + err
        assert "The empty pan reads 0.050 kg: press the scale's ZERO key" in out
        correction = load_state(tmp_path / "data").correction
        assert correction is not None and correction.offset_mg == 0  # the gain only
        assert correction.gain == Fraction(10_000_000, 10_200_000)

        # the scale zeros itself (power-on zero, or the ZERO key): weights stay right
        sim.place(0, settle_s=0)
        _press_zero(sim)
        rc, out, err = _run(sim, config, "check", "--yes", "--technician", "Alice", "--wait", "15")
        assert rc == 0 and "Overall: PASS" in out, out + err
        assert load_state(tmp_path / "data").verified_step == "check"

        # the zero drifts: `calibrate zero` has the technician press ZERO, stores no offset
        sim.offset_mg += 20_000
        rc, out, err = _run(sim, config, "zero", "--yes", "--technician", "Alice", "--wait", "15")
    assert rc == 0, out + err
    assert "Zero done: empty pan reads 0 g" in out
    record = _history(config)[-1]
    assert record["data"]["method"] == "scale key" and record["data"]["before_mg"] == 20_000
    assert load_state(tmp_path / "data").correction == correction


def test_a_stored_offset_still_loads_and_zero_drops_it(tmp_path: Path) -> None:
    """Corrections written with an offset by earlier versions: read as before; the next
    `calibrate zero` keeps their gain about the scale's own zero."""
    old = Correction.from_json({"offset_mg": "5000", "gain": "50/51", "step_mg": "5000"})
    save_state(tmp_path / "data", CalibrationState(in_force_id="x", correction=old))
    assert load_state(tmp_path / "data").applied().value(10_205_000) == 10_000_000
    # the empty pan reads 5 g until the ZERO key: earlier versions stored that as the offset
    with ScaleSimulator("toledo-continuous", offset_mg=5_000, stable_timeout_s=0.5) as sim:
        config = _config(tmp_path, "toledo-continuous", sim.start_pty(tmp_path / "scale"))
        rc, out, err = _run(sim, config, "zero", "--yes", "--technician", "Bob", "--wait", "15")
    assert rc == 0, out + err
    state = load_state(tmp_path / "data")
    assert state.correction == Correction(0, Fraction(50, 51), 5000)
    assert _history(config)[-1]["uuid"] == state.in_force_id


def test_a_span_reference_far_below_max_is_refused(tmp_path: Path) -> None:
    config = _config(tmp_path, "sma", str(tmp_path / "no-scale"))
    result = CliRunner().invoke(
        cli,
        ["--config", str(config), "--lang", "en", "calibrate", "span", "--reference", "100g",
         "--yes", "--technician", "Alice"],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert result.output.strip() == (
        "The reference 0.100 kg is too small to set the gain: use a mass of at least 5.000 kg "
        "(Max / 3), near the capacity is best."
    )
    assert not (tmp_path / "data" / "calibration.json").exists()


@pytest.mark.parametrize("step", ["span", "zero"])
def test_a_silent_scale_is_one_line_and_exit_69(tmp_path: Path, step: str) -> None:
    master, slave = os.openpty()  # a port with nothing behind it
    try:
        link = tmp_path / "scale"
        link.symlink_to(os.ttyname(slave))
        config = _config(tmp_path, "sma", str(link))
        args = ["--reference", "10kg"] if step == "span" else []
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        proc = subprocess.run(
            [sys.executable, "-m", "station", "--config", str(config), "--lang", "en",
             "calibrate", step, *args, "--yes", "--technician", "Alice", "--wait", "1"],
            capture_output=True, text=True, cwd=ROOT, env=env, timeout=60,
        )  # fmt: skip
    finally:
        os.close(master)
        os.close(slave)
    assert proc.returncode == 69, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "No stable weight" in proc.stderr


def test_attended_zero_through_the_prompts_and_an_abort(
    tmp_path: Path, sma: ScaleSimulator
) -> None:
    """The click console: the technician's name, Enter when ready, accept the reading; an
    abort at the first instruction records nothing."""
    config = _config(tmp_path, "sma", sma.url)
    args = ["--config", str(config), "--lang", "en", "calibrate", "zero", "--wait", "15"]
    result = CliRunner().invoke(cli, args, input="Alice\n\ny\n")
    assert result.exit_code == 0, result.output
    assert "Empty the pan. [Enter: ready, a: abort]" in result.output
    assert "Reading: 0.005 kg  stable. [Y: accept, n: take again, a: abort]" in result.output
    assert "Zero done: empty pan reads 0 g" in result.output
    record = _history(config)[-1]
    assert record["operator"] == "Alice" and record["data"]["method"] == "scale"
    result = CliRunner().invoke(cli, args, input="Alice\na\n")
    assert result.exit_code == 1, result.output
    assert result.output.rstrip().endswith("Aborted: nothing recorded.")
    assert len(_history(config)) == 1


def test_a_failed_check_shows_in_status_and_on_the_panel(tmp_path: Path) -> None:
    """Issue 17 item 5: a failed check makes the calibration due: `status` says it failed and
    the daemon's start-up blinks the amber calibration pattern, until a check passes."""
    sim = ScaleSimulator("sma", gain=Decimal("1.01"), stable_timeout_s=0.5)
    with sim:
        config = _config(tmp_path, "sma", sim.start_pty(tmp_path / "scale"))
        rc, out, err = _run(
            sim, config, "check", "--loads", "0,10kg", "--rounding", "none", "--yes",
            "--technician", "Alice", "--wait", "15",
        )  # fmt: skip
    assert rc == 1 and "Overall: FAIL" in out, out + err
    state = load_state(tmp_path / "data")
    assert state.failed and state.failed_id == _history(config)[-1]["uuid"]
    status = CliRunner().invoke(cli, ["--config", str(config), "--lang", "en", "status"])
    assert "calibration: the last check FAILED on" in status.output, status.output
    overrides = {"station": {"language": "en"}, "scale": METROLOGY}
    with SimulatedCounter(tmp_path, overrides) as c:
        assert until(lambda: _rising(c.pin("amber")) >= 5)  # slow blinks: calibration due


def test_a_heavy_scale_corrected_station_side_records_max(tmp_path: Path) -> None:
    """Issue 17 item 5: a scale 1.7 % heavy with the station-side gain in force records a true
    load at Max (15 kg shows 15.255 kg on the scale itself): it was refused as an overload."""
    gain = Fraction(1000, 1017)
    save_state(
        tmp_path / "data",
        CalibrationState(in_force_id="span-1", correction=Correction(0, gain, 5_000)),
    )
    overrides = {"station": {"language": "en"}, "scale": {"protocol": "sma", **METROLOGY}}
    with SimulatedCounter(tmp_path, overrides, protocol="sma") as c:
        c.scale.gain = Decimal("1.017")
        c.scan(beneficiary(9))
        c.next_result()
        c.scan("CAT-VET")
        c.next_result()
        result = _weigh(c, "15.000")
        assert result.outcome is Outcome.RECORDED, result.text
        row = c.store.get(result.seq or 0)
        assert row is not None and row["net_mg"] == 15_000_000
        assert row["calibration_id"] == "span-1"
