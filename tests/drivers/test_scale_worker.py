"""The scale reader thread on the simulator: polling, streaming, commands, unplug and replug."""

from __future__ import annotations

import os
import queue
import select
import time
import tty
from dataclasses import replace
from pathlib import Path

from drivers.base import Reading, ScaleError, ScaleTimeout
from drivers.scale import Ack, Command, Reply, ScaleProtocol, get_protocol
from drivers.scale.worker import ScaleWorker
from drivers.sim.scale import ScaleSimulator


class Recorder:
    def __init__(self) -> None:
        self.readings: queue.Queue[tuple[Reading, float]] = queue.Queue()
        self.states: queue.Queue[tuple[bool, str]] = queue.Queue()
        self.replies: queue.Queue[tuple[object, object]] = queue.Queue()

    def worker(self, url: str, protocol: str, **kw: object) -> ScaleWorker:
        return ScaleWorker(
            url,
            get_protocol(protocol),
            on_reading=lambda r, t: self.readings.put((r, t)),
            on_state=lambda ok, d: self.states.put((ok, d)),
            on_reply=lambda tok, out: self.replies.put((tok, out)),
            **kw,  # type: ignore[arg-type]
        )

    def state(self, timeout: float = 10) -> bool:
        return self.states.get(timeout=timeout)[0]

    def reading_where(self, pred: object, timeout: float = 10) -> Reading:
        deadline = time.monotonic() + timeout
        while True:
            reading, _ = self.readings.get(timeout=max(0.01, deadline - time.monotonic()))
            if pred(reading):  # type: ignore[operator]
                return reading


def test_polls_mt_sics_over_tcp_and_survives_a_converter_restart() -> None:
    rec = Recorder()
    with ScaleSimulator() as sim:
        host, port = sim.start_tcp()
        sim.place("2.500", settle_s=0)
        worker = rec.worker(f"socket://{host}:{port}", "mt-sics", poll_interval=0.05)
        worker.start()
        try:
            assert rec.state() is True
            r = rec.reading_where(lambda r: r.net_mg == 2_500_000 and r.stable)
            assert r.unit == "kg"
            sim.unplug()
            assert rec.state() is False
            sim.replug()
            assert rec.state(timeout=20) is True
            sim.place("0.750", settle_s=0)
            rec.reading_where(lambda r: r.net_mg == 750_000)
        finally:
            worker.stop()
        assert not worker.alive


def test_streams_toledo_continuous_on_a_pty(tmp_path: Path) -> None:
    rec = Recorder()
    with ScaleSimulator("toledo-continuous", rate_hz=20) as sim:
        url = sim.start_pty(tmp_path / "scale")
        sim.place("12.340", settle_s=0)
        worker = rec.worker(url, "toledo-continuous")
        worker.start()
        try:
            assert rec.state() is True
            r = rec.reading_where(lambda r: r.net_mg == 12_340_000 and r.stable)
            assert r.gross_mg == 12_340_000
            worker.submit(Command.TARE, "t")
            token, outcome = rec.replies.get(timeout=5)
            assert token == "t" and isinstance(outcome, ScaleError)  # no commands in this format
        finally:
            worker.stop()


def test_commands_get_their_own_reply(tmp_path: Path) -> None:
    rec = Recorder()
    with ScaleSimulator() as sim:
        url = sim.start_pty(tmp_path / "scale")
        sim.place("0.300", settle_s=0)
        worker = rec.worker(url, "mt-sics", poll_interval=0.02)
        worker.start()
        try:
            assert rec.state() is True
            worker.submit(Command.IDENTIFY, "id")
            worker.submit(Command.TARE, "tare")
            replies = dict(rec.replies.get(timeout=5) for _ in range(2))
            assert isinstance(replies["id"], Ack) and replies["id"].params == ("1126493049",)
            assert isinstance(replies["tare"], Ack) and replies["tare"].mass_mg == 300_000
            rec.reading_where(lambda r: r.net_mg == 0)
        finally:
            worker.stop()


def test_silent_scale_is_reported_and_stale_commands_are_dropped(tmp_path: Path) -> None:
    rec = Recorder()
    # a pty nobody answers on: the port opens, the scale never replies
    with ScaleSimulator("toledo-continuous", rate_hz=1000) as sim:
        url = sim.start_pty(tmp_path / "scale")
        sim.unplug()
        sim.replug()
        worker = rec.worker(url, "mt-sics", reply_timeout=0.1, poll_interval=0.05)
        worker.start()
        try:
            assert rec.state() is True  # the port opened
            assert rec.state() is False  # … but no MT-SICS reply comes back
            worker.submit(Command.ZERO, "z")
            token, outcome = rec.replies.get(timeout=5)
            assert token == "z" and isinstance(outcome, ScaleTimeout)
        finally:
            worker.stop()


def test_a_stream_opened_mid_line_never_yields_the_fragment(tmp_path: Path) -> None:
    """Opening a streaming scale mid-line: "-  3.250 kg" must not come out as +3.250 kg."""
    from drivers.scale.ascii import make_protocol
    from drivers.sim.scanner import ScannerSimulator  # a raw byte source on a pty

    readings: list[Reading] = []
    states: queue.Queue[bool] = queue.Queue()
    protocol = make_protocol(None, b"\r\n", r"(?P<sign>[+-])?\s*(?P<weight>[0-9.]+) (?P<unit>kg)")
    with ScannerSimulator() as line:
        url = line.start_pty(tmp_path / "scale")
        worker = ScaleWorker(
            url,
            protocol,
            on_reading=lambda r, t: readings.append(r),
            on_state=lambda ok, d: states.put(ok),
        )
        worker.start()
        try:
            assert states.get(timeout=10) is True
            assert line.wait_reader(10)
            line.send_raw(b"  3.250 kg\r\n")  # the tail of "-  3.250 kg", as the port opens
            line.send_raw(b"-  3.250 kg\r\n")
            deadline = time.monotonic() + 10
            while not readings and time.monotonic() < deadline:
                time.sleep(0.01)
        finally:
            worker.stop()
    assert readings and all(r.net_mg == -3_250_000 for r in readings)


def _buggy(protocol: ScaleProtocol, failures: int) -> tuple[ScaleProtocol, list[bytes]]:
    """``protocol`` whose decoder crashes (IndexError, not a FrameError) on its first frames."""
    crashed: list[bytes] = []

    def decode(frame: bytes) -> Reply:
        if len(crashed) < failures:
            crashed.append(frame)
            raise IndexError("codec bug")
        return protocol.decode(frame)

    return replace(protocol, decode=decode), crashed


def test_a_codec_crash_while_polling_is_a_garbage_frame_not_a_reader_restart(
    tmp_path: Path,
) -> None:
    """Issue 12: a codec exception other than FrameError counted as a rejected frame."""
    rec = Recorder()
    # two crashes: each costs a reply timeout, below the three misses that mean "silent"
    protocol, crashed = _buggy(get_protocol("mt-sics"), failures=2)
    with ScaleSimulator() as sim:
        url = sim.start_pty(tmp_path / "scale")
        sim.place("1.500", settle_s=0)
        worker = ScaleWorker(
            url,
            protocol,
            on_reading=lambda r, t: rec.readings.put((r, t)),
            on_state=lambda ok, d: rec.states.put((ok, d)),
            poll_interval=0.02,
        )
        worker.start()
        try:
            assert rec.state() is True
            rec.reading_where(lambda r: r.net_mg == 1_500_000)
        finally:
            worker.stop()
    assert len(crashed) == 2
    assert worker.garbage_frames >= 2
    assert rec.states.empty()  # no "reader restarted", no port reopened


def test_a_codec_crash_while_streaming_is_a_garbage_frame_not_a_reader_restart(
    tmp_path: Path,
) -> None:
    rec = Recorder()
    protocol, crashed = _buggy(get_protocol("toledo-continuous"), failures=3)
    with ScaleSimulator("toledo-continuous", rate_hz=20) as sim:
        url = sim.start_pty(tmp_path / "scale")
        sim.place("2.000", settle_s=0)
        worker = ScaleWorker(
            url,
            protocol,
            on_reading=lambda r, t: rec.readings.put((r, t)),
            on_state=lambda ok, d: rec.states.put((ok, d)),
        )
        worker.start()
        try:
            assert rec.state() is True
            rec.reading_where(lambda r: r.net_mg == 2_000_000)
        finally:
            worker.stop()
    assert len(crashed) == 3
    assert worker.garbage_frames >= 3
    assert rec.states.empty()


def _turns(worker: ScaleWorker, n: int) -> None:
    """Wait until the reader thread has turned ``n`` more times (it waits 1 s a turn at most)."""
    for _ in range(n):
        seen = worker.heartbeat
        deadline = time.monotonic() + 10
        while worker.heartbeat == seen:
            assert time.monotonic() < deadline, "the reader thread stopped turning"
            time.sleep(0.01)


def _drain(rec: Recorder) -> list[Reading]:
    out = []
    while True:
        try:
            out.append(rec.readings.get_nowait()[0])
        except queue.Empty:
            return out


def test_a_settled_load_is_not_polled_again_until_the_press(tmp_path: Path) -> None:
    """settled_hold: once an idle poll finds a new load settled, no idle exchange is started
    (a press would wait behind it); the press asks afresh and sees what is on the pan now."""
    rec = Recorder()
    with ScaleSimulator() as sim:
        url = sim.start_pty(tmp_path / "scale")
        sim.place("1.250", settle_s=0)
        worker = rec.worker(url, "mt-sics", poll_interval=0.02, settled_hold=60)
        worker.start()
        try:
            assert rec.state() is True
            rec.reading_where(lambda r: r.net_mg == 1_250_000 and r.stable)
            sim.place("2.000", settle_s=0)  # swapped while held: only the press may see it
            _turns(worker, 3)
            assert [r.net_mg for r in _drain(rec)] in ([], [1_250_000])  # one already in flight
            pressed = time.monotonic()
            worker.poll_now(pressed + 5)
            reading, t = rec.readings.get(timeout=5)
            assert reading.net_mg == 2_000_000 and t >= pressed
            worker.relax()  # the press answered: idle polling again, the same load not held
            for _ in range(3):
                reading, t = rec.readings.get(timeout=5)
                assert reading.net_mg == 2_000_000
        finally:
            worker.stop()


def test_a_command_ends_the_hold(tmp_path: Path) -> None:
    rec = Recorder()
    with ScaleSimulator() as sim:
        url = sim.start_pty(tmp_path / "scale")
        sim.place("0.300", settle_s=0)
        worker = rec.worker(url, "mt-sics", poll_interval=0.02, settled_hold=60)
        worker.start()
        try:
            assert rec.state() is True
            rec.reading_where(lambda r: r.net_mg == 300_000 and r.stable)
            worker.submit(Command.TARE, "tare")
            assert rec.replies.get(timeout=5)[0] == "tare"
            rec.reading_where(lambda r: r.net_mg == 0)  # polled again, no press needed
        finally:
            worker.stop()


def test_without_settled_hold_idle_polling_never_pauses(tmp_path: Path) -> None:
    rec = Recorder()
    with ScaleSimulator() as sim:
        url = sim.start_pty(tmp_path / "scale")
        sim.place("1.250", settle_s=0)
        worker = rec.worker(url, "mt-sics", poll_interval=0.02)
        worker.start()
        try:
            assert rec.state() is True
            rec.reading_where(lambda r: r.net_mg == 1_250_000 and r.stable)
            sim.place("2.000", settle_s=0)
            rec.reading_where(lambda r: r.net_mg == 2_000_000)
        finally:
            worker.stop()


def test_an_empty_pan_is_not_held(tmp_path: Path) -> None:
    """Nothing to weigh on a settled empty pan: idle polling goes on, and the load put on it
    is seen without a press."""
    rec = Recorder()
    with ScaleSimulator() as sim:
        url = sim.start_pty(tmp_path / "scale")
        sim.place("0.000", settle_s=0)
        worker = rec.worker(url, "mt-sics", poll_interval=0.02, settled_hold=60)
        worker.start()
        try:
            assert rec.state() is True
            rec.reading_where(lambda r: r.net_mg == 0 and r.stable)
            sim.place("1.250", settle_s=0)
            rec.reading_where(lambda r: r.net_mg == 1_250_000 and r.stable)
        finally:
            worker.stop()


class _ScriptedScale:
    """An MT-SICS scale on a pty whose every reply the test writes itself, when it chooses."""

    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.url = os.ttyname(self.slave)
        self._buffer = b""

    def request(self, timeout: float = 10.0) -> bytes | None:
        """The next request line (None: none came within ``timeout``)."""
        deadline = time.monotonic() + timeout
        while b"\r\n" not in self._buffer:
            left = max(0.0, deadline - time.monotonic())
            if not select.select([self.master], [], [], left)[0]:
                return None
            self._buffer += os.read(self.master, 256)
        line, self._buffer = self._buffer.split(b"\r\n", 1)
        return line

    def weigh(self, kg: str) -> None:
        os.write(self.master, f"S S {kg:>10} kg\r\n".encode("ascii"))

    def close(self) -> None:
        os.close(self.master)
        os.close(self.slave)


def test_a_new_load_read_by_the_poll_after_the_press_is_held() -> None:
    """The fast poll that goes out after the recorded reading and is answered once the press is
    over (relax) counts as an idle one: a new load it finds is held. Before, it was not, and
    the idle polls then found that load "unchanged" and went on, so the next press could land
    behind one of them."""
    scale = _ScriptedScale()
    rec = Recorder()
    worker = rec.worker(scale.url, "mt-sics", poll_interval=0.02, settled_hold=60)
    worker.start()
    try:
        assert rec.state() is True
        assert scale.request() == b"SI"
        scale.weigh("1.250")  # idle: a new load settled, held
        rec.reading_where(lambda r: r.net_mg == 1_250_000)
        worker.poll_now(time.monotonic() + 30)  # the press
        assert scale.request() == b"SI"
        scale.weigh("1.250")  # the recorded reading
        rec.reading_where(lambda r: r.net_mg == 1_250_000)
        assert scale.request() == b"SI"  # asked again before the press is over …
        worker.relax()  # … which it is now (the record made)
        scale.weigh("2.000")  # the next item, already on the pan
        rec.reading_where(lambda r: r.net_mg == 2_000_000)
        _turns(worker, 2)
        assert scale.request(timeout=0) is None  # held: no idle poll in front of the next press
    finally:
        worker.stop()
        scale.close()
