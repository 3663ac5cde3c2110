"""One contract for every scale protocol: the real ScaleWorker against each simulated personality.

Parametrised over every protocol that has a simulator personality (and a codec), so a new
personality is tested by adding it. With ``PESEE_TEST_SCALE_URL`` and
``PESEE_TEST_SCALE_PROTOCOL`` set (and optionally ``PESEE_TEST_SCALE_LINK=9600,7,E,1``), the parts
that need no human run against that real scale too; without them that parametrisation is absent.
"""

from __future__ import annotations

import os
import queue
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest

from drivers.base import MG_PER_UNIT, Reading, ScaleError, ScaleRefused
from drivers.scale import PROTOCOLS, Ack, Command, ScaleProtocol, get_protocol
from drivers.scale.worker import ScaleWorker
from drivers.serialio import LinkSettings
from drivers.sim.personalities import Personality
from drivers.sim.scale import ScaleSimulator

pytestmark = pytest.mark.timeout(120)

SIMULATED = sorted(PROTOCOLS)  # every codec: test_codec_contract asserts each has a personality
REAL = "real-scale"
REAL_SKIP = (
    "no real scale: set PESEE_TEST_SCALE_URL (e.g. /dev/serial/by-id/…) and "
    "PESEE_TEST_SCALE_PROTOCOL (e.g. mt-sics) to run this contract against one"
)
KG = 1_000_000


@dataclass
class Rig:
    """A worker reading one scale (simulated or real), with queues for what it reports."""

    protocol: ScaleProtocol
    sim: ScaleSimulator | None
    worker: ScaleWorker | None = None
    readings: queue.Queue[tuple[Reading, float]] = field(default_factory=queue.Queue)
    states: queue.Queue[tuple[bool, str]] = field(default_factory=queue.Queue)
    replies: queue.Queue[tuple[object, object]] = field(default_factory=queue.Queue)

    def start(self, url: str, settings: LinkSettings | None = None) -> None:
        self.worker = ScaleWorker(
            url,
            self.protocol,
            on_reading=lambda r, t: self.readings.put((r, t)),
            on_state=lambda ok, d: self.states.put((ok, d)),
            on_reply=lambda token, outcome: self.replies.put((token, outcome)),
            settings=settings,
            poll_interval=0.02,
        )
        self.worker.start()

    @property
    def scale(self) -> ScaleSimulator:
        assert self.sim is not None
        return self.sim

    def state(self, timeout: float = 20) -> tuple[bool, str]:
        return self.states.get(timeout=timeout)

    def reading(self, pred: Callable[[Reading], bool] = bool, timeout: float = 10) -> Reading:
        """The first reading asked for (or received) from now on that satisfies ``pred``."""
        mark = time.monotonic()
        deadline = mark + timeout
        seen: list[Reading] = []
        while (left := deadline - time.monotonic()) > 0:
            try:
                reading, t = self.readings.get(timeout=left)
            except queue.Empty:
                break
            if t >= mark:
                if pred(reading):
                    return reading
                seen.append(reading)
        raise AssertionError(f"no matching reading in {timeout} s; last seen: {seen[-3:]}")

    def command(self, command: Command, timeout: float = 10) -> object:
        assert self.worker is not None
        token = object()
        self.worker.submit(command, token)
        deadline = time.monotonic() + timeout
        while True:
            got, outcome = self.replies.get(timeout=max(0.01, deadline - time.monotonic()))
            if got is token:
                return outcome

    def supports(self, command: Command) -> bool:
        try:
            self.protocol.encode(command)
        except ScaleError:
            return False
        return True


def _link(text: str) -> LinkSettings:
    baud, bits, parity, stop = text.split(",")
    return LinkSettings(int(baud), int(bits), parity.upper(), float(stop))


def _start_real(request: pytest.FixtureRequest) -> Rig:
    url = os.environ.get("PESEE_TEST_SCALE_URL")
    name = os.environ.get("PESEE_TEST_SCALE_PROTOCOL")
    if not url or not name:
        pytest.skip(REAL_SKIP)
    rig = Rig(get_protocol(name), None)
    link = os.environ.get("PESEE_TEST_SCALE_LINK")
    rig.start(url, _link(link) if link else None)
    return rig


def _start_sim(name: str, tmp_path: Path) -> Rig:
    sim = ScaleSimulator(name, rate_hz=25, seed=11, stable_timeout_s=0.5)
    rig = Rig(get_protocol(name), sim)
    rig.start(sim.start_pty(tmp_path / "scale"))  # a link, as udev's by-id names
    return rig


def _stop(rig: Rig) -> None:
    if rig.worker is not None:
        rig.worker.stop()
        assert not rig.worker.alive
    if rig.sim is not None:
        rig.sim.stop()


# the real scale joins the parameters only when one is configured: without it there is nothing
# to run, and a skip per test would hide nothing but clutter every report
_REAL_CONFIGURED = bool(
    os.environ.get("PESEE_TEST_SCALE_URL") and os.environ.get("PESEE_TEST_SCALE_PROTOCOL")
)


@pytest.fixture(params=[*SIMULATED, REAL] if _REAL_CONFIGURED else SIMULATED)
def rig(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Rig]:
    """Every target: the simulators and, when configured, the real scale."""
    started = _start_real(request) if request.param == REAL else _start_sim(request.param, tmp_path)
    try:
        assert started.state()[0] is True
        yield started
    finally:
        _stop(started)


@pytest.fixture(params=SIMULATED)
def sim_rig(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Rig]:
    """Simulators only: the parts of the contract that need someone at the scale."""
    started = _start_sim(request.param, tmp_path)
    try:
        assert started.state()[0] is True
        yield started
    finally:
        _stop(started)


def settled(rig: Rig, mass: str) -> Reading:
    """Put ``mass`` (kg) on the pan, settled at once, and wait until the station sees it."""
    rig.scale.place(mass, settle_s=0)
    mg = int(MG_PER_UNIT["kg"] * Decimal(mass))
    return rig.reading(lambda r: r.stable and r.net_mg == mg)


def personality(rig: Rig) -> type[Personality]:
    return type(rig.scale.personality)


# -- every target ----------------------------------------------------------------------------


def test_readings_arrive_and_decode(rig: Rig) -> None:
    reading = rig.reading()
    assert reading.raw
    assert reading.unit.lower() in {*MG_PER_UNIT, "pc", "l/o", "lb:oz", ""}
    assert rig.worker is not None and rig.worker.garbage_frames <= 1  # at most a first fragment


def test_a_stable_reading_comes(rig: Rig) -> None:
    if rig.sim is not None:
        rig.scale.place("1.250", settle_s=0.3)
    reading = rig.reading(lambda r: r.stable, timeout=30)
    if rig.sim is not None:
        assert reading.net_mg == 1_250 * 1000 and reading.in_range
        assert reading.gross_mg in (None, 1_250_000)


def test_commands_answer_or_refuse_clearly(rig: Rig) -> None:
    for command in (Command.IDENTIFY, Command.RESET, Command.READ_STABLE):
        if not rig.supports(command):
            outcome = rig.command(command)
            assert isinstance(outcome, ScaleError) and "not supported" in str(outcome)
    if rig.supports(Command.IDENTIFY):
        outcome = rig.command(Command.IDENTIFY)
        assert isinstance(outcome, Ack) and outcome.params and outcome.params[0]
        if rig.sim is not None:
            assert outcome.params[0] == rig.scale.serial_number


def test_tare_then_clear_restores_the_weight(rig: Rig) -> None:
    if not (rig.supports(Command.TARE) and rig.supports(Command.CLEAR_TARE)):
        for command in (Command.TARE, Command.CLEAR_TARE):
            if not rig.supports(command):
                outcome = rig.command(command)
                assert isinstance(outcome, ScaleError) and "not supported" in str(outcome)
        return
    before = settled(rig, "0.600") if rig.sim is not None else rig.reading(lambda r: r.stable)
    assert not isinstance(rig.command(Command.TARE), ScaleError)
    assert rig.reading(lambda r: r.stable).net_mg == 0
    assert not isinstance(rig.command(Command.CLEAR_TARE), ScaleError)
    assert rig.reading(lambda r: r.stable).net_mg == before.net_mg


# -- simulators: someone at the scale ------------------------------------------------------------


def test_stable_read(sim_rig: Rig) -> None:
    reading = settled(sim_rig, "1.250")
    assert (reading.net_mg, reading.in_range, reading.pieces) == (1_250_000, True, None)
    assert reading.unit.lower() == "kg"
    assert not (reading.overload or reading.underload)


def test_motion_then_settle(sim_rig: Rig) -> None:
    sim = sim_rig.scale
    sim.place("2.000", settle_s=float("inf"))
    moving = sim_rig.reading(lambda r: not r.stable)
    if moving.net_mg is not None:  # a value while moving is near the load (wobble, approach)
        assert -10 * sim.division_mg <= moving.net_mg <= 2 * KG + 10 * sim.division_mg
    sim.place("2.000", settle_s=0.3)
    assert sim_rig.reading(lambda r: r.stable).net_mg == 2 * KG  # never a stable wrong value


def test_overload(sim_rig: Rig) -> None:
    sim = sim_rig.scale
    sim.set_overload()
    reading = sim_rig.reading(lambda r: r.overload)
    assert reading.net_mg is None and not reading.in_range and not reading.underload
    sim.set_overload(False)
    sim.place(sim.capacity_mg + 10 * sim.division_mg, settle_s=0)  # past Max + 9 e
    assert sim_rig.reading(lambda r: r.overload).net_mg is None
    sim.place(sim.capacity_mg, settle_s=0)  # exactly Max is fine
    assert sim_rig.reading(lambda r: r.in_range).net_mg == sim.capacity_mg


def test_underload(sim_rig: Rig) -> None:
    sim = sim_rig.scale
    sim.set_underload()
    reading = sim_rig.reading(lambda r: not r.in_range)
    assert reading.net_mg is None
    if personality(sim_rig).tells_underload:
        assert reading.underload and not reading.overload
    else:  # e.g. Toledo continuous: one "out of range" bit for both
        assert reading.overload
    sim.set_underload(False)
    assert sim_rig.reading(lambda r: r.in_range).net_mg == 0


def test_negative(sim_rig: Rig) -> None:
    sim = sim_rig.scale
    settled(sim_rig, "0.500")
    assert sim.zero() == "A"  # the zero key, with the load on
    sim.remove(settle_s=0)
    if personality(sim_rig).shows_negative:
        reading = sim_rig.reading(lambda r: r.stable and r.net_mg != 0)
        assert reading.net_mg == -500_000 and reading.in_range
    else:  # the protocol says "under zero" instead of a negative value
        reading = sim_rig.reading(lambda r: not r.in_range)
        assert reading.underload and reading.net_mg is None


def test_tare(sim_rig: Rig) -> None:
    sim = sim_rig.scale
    settled(sim_rig, "1.200")
    if sim_rig.supports(Command.TARE):
        outcome = sim_rig.command(Command.TARE)
        assert not isinstance(outcome, ScaleError), outcome
    else:
        outcome = sim_rig.command(Command.TARE)
        assert isinstance(outcome, ScaleError) and "not supported" in str(outcome)
        assert sim.tare()[0] == "A"  # the tare key: the protocol still reports the net
    assert sim.snapshot().tare_mg == 1_200_000
    assert sim_rig.reading(lambda r: r.stable).net_mg == 0
    sim.place("2.000", settle_s=0)
    reading = sim_rig.reading(lambda r: r.stable and r.net_mg != 0)
    assert reading.net_mg == 800_000
    assert reading.gross_mg in (None, 2 * KG)  # a gross shown here would be wrong
    if sim_rig.supports(Command.CLEAR_TARE):
        assert not isinstance(sim_rig.command(Command.CLEAR_TARE), ScaleError)
    else:
        outcome = sim_rig.command(Command.CLEAR_TARE)
        assert isinstance(outcome, ScaleError) and "not supported" in str(outcome)
        sim.clear_tare()
    assert sim_rig.reading(lambda r: r.stable and r.net_mg != 800_000).net_mg == 2 * KG


def test_tare_in_motion_is_refused_visibly(sim_rig: Rig) -> None:
    if not sim_rig.supports(Command.TARE):
        return  # no tare command: nothing to refuse (test_tare checks the clear error)
    sim = sim_rig.scale
    sim.place("1.000", settle_s=float("inf"))
    sim_rig.reading(lambda r: not r.stable)
    outcome = sim_rig.command(Command.TARE)
    # refused, or (no acknowledgement in the protocol) a reply that shows the motion
    assert isinstance(outcome, ScaleRefused) or (
        isinstance(outcome, Reading) and not outcome.stable
    ), outcome
    assert sim.snapshot().tare_mg == 0


def test_zero(sim_rig: Rig) -> None:
    sim = sim_rig.scale
    settled(sim_rig, "0.300")
    if not sim_rig.supports(Command.ZERO):
        outcome = sim_rig.command(Command.ZERO)
        assert isinstance(outcome, ScaleError) and "not supported" in str(outcome)
        assert sim.zero() == "A"  # the zero key
    else:
        outcome = sim_rig.command(Command.ZERO)
        assert not isinstance(outcome, ScaleError), outcome
        assert sim.snapshot().zero_mg == 300_000
    assert sim_rig.reading(lambda r: r.stable).net_mg == 0
    sim.place("1.300", settle_s=0)
    assert sim_rig.reading(lambda r: r.stable and r.net_mg != 0).net_mg == KG


def test_zero_in_motion_is_refused_visibly(sim_rig: Rig) -> None:
    if not sim_rig.supports(Command.ZERO):
        return  # no zero command: test_zero checks the clear error
    sim = sim_rig.scale
    sim.place("0.100", settle_s=float("inf"))
    sim_rig.reading(lambda r: not r.stable)
    outcome = sim_rig.command(Command.ZERO)
    shows_motion = (isinstance(outcome, Reading) and not outcome.stable) or (
        isinstance(outcome, Ack) and "motion" in outcome.params
    )
    assert isinstance(outcome, ScaleRefused) or shows_motion, outcome
    assert sim.snapshot().zero_mg == 0


def test_counting(sim_rig: Rig) -> None:
    sim = sim_rig.scale
    sim.set_piece_weight(10_000)  # 10 g a piece
    sim.place("1.250", settle_s=0)
    if personality(sim_rig).counts:
        reading = sim_rig.reading(lambda r: r.stable and r.pieces is not None)
        assert reading.pieces == 125
        assert reading.unit_weight_mg in (None, 10_000)
    else:  # no pieces on this wire: the weight comes, the station counts from its sample
        reading = sim_rig.reading(lambda r: r.stable and r.net_mg == 1_250_000)
        assert reading.pieces is None
    sim.set_piece_weight(None)
    assert sim_rig.reading(lambda r: r.stable).pieces is None


def test_reconnect_after_unplug(sim_rig: Rig, tmp_path: Path) -> None:
    sim = sim_rig.scale
    settled(sim_rig, "0.420")
    sim.unplug()
    assert sim_rig.state()[0] is False
    assert not os.path.lexists(tmp_path / "scale")
    sim.place("0.750", settle_s=0)
    assert sim.replug() == str(tmp_path / "scale")  # a new pty behind the same name
    assert sim_rig.state()[0] is True
    assert sim_rig.reading(lambda r: r.stable and r.net_mg == 750_000).in_range
    assert sim_rig.worker is not None and sim_rig.worker.alive
