"""``station scale …`` against the real scale simulators on ptys and TCP ports."""

from __future__ import annotations

import errno
import json
import os
import pty
import queue
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import serial
from click.testing import CliRunner

import drivers.sim.scale as sim_module
from drivers.base import PortError
from drivers.scale import PROTOCOLS, Command
from drivers.scale.probe import port_problem
from drivers.scale.toledo_continuous import encode_frame
from drivers.sim.scale import ScaleSimulator
from station.cli import cli
from station.cli.scale_probe import set_scale_keys
from tests.support.scale_cli import nothing_behind, start, station, with_scale

pytestmark = pytest.mark.timeout(120)

REPO = Path(__file__).resolve().parents[2]
STATION = [sys.executable, "-m", "station", "--lang", "en", "--config", "/nonexistent.toml"]
SIM_PROTOCOLS = [
    p for p in getattr(sim_module, "PROTOCOLS", ("mt-sics", "toledo-continuous")) if p in PROTOCOLS
]


def station_process(*args: str, **kw: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*STATION, "scale", *args],
        cwd=REPO,
        text=True,
        **kw,
    )


def jsonl(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


@pytest.fixture
def bare_pty() -> Iterator[str]:
    with nothing_behind() as port:
        yield port


# -- protocols -------------------------------------------------------------------------------


def test_protocols_lists_every_registry_entry_sorted() -> None:
    result = station("protocols")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert [line.split()[0] for line in lines] == sorted(PROTOCOLS)
    for line in lines:
        name, rest = line.split(maxsplit=1)
        description, span = rest.rsplit("  [", 1)
        assert description and description in PROTOCOLS[name].description
        assert "\n" not in description
        # how calibrate span adjusts it (issue 17 item 5)
        own = {"mt-sics": "C2", "a-and-d": "CAL", "kern-kcp": "JZ JG JS"}
        if name in own:
            assert span == f"span: the scale's own ({own[name]})]"
        else:
            assert span == "span: station-side gain]"


def test_unknown_protocol_is_a_usage_error_listing_the_known_ones() -> None:
    result = station("read", "--url", "/dev/null", "--protocol", "nope")
    assert result.exit_code == 2
    assert "unknown protocol 'nope'" in result.output
    assert "mt-sics" in result.output


# -- read ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["pty", "tcp"])
@pytest.mark.parametrize("protocol", SIM_PROTOCOLS)
def test_read_every_simulator(protocol: str, kind: str, tmp_path: Path) -> None:
    # Linux ptys may refuse 7-bit framings (EINVAL); the simulator ignores framing anyway
    link = ["--framing", "8N1"] if kind == "pty" else []
    with ScaleSimulator(protocol, seed=1) as sim:
        sim.place("1.250", settle_s=0)
        url = start(sim, kind, tmp_path)
        result = station("read", "--url", url, "--protocol", protocol, "--json", *link)
        assert result.exit_code == 0, result.output
        reading = json.loads(result.output)
        assert reading["weight_mg"] == 1_250_000
        assert reading["stable"] is True
        assert (reading["protocol"], reading["url"], reading["error"]) == (protocol, url, None)
        human = station("read", "--url", url, "--protocol", protocol, *link)
        assert human.exit_code == 0, human.output
        assert human.output.startswith("1.250 kg")
        assert "stable" in human.output


def test_read_in_french_uses_a_decimal_comma(tmp_path: Path) -> None:
    with ScaleSimulator(seed=1) as sim:
        sim.place("12.345", settle_s=0)
        url = start(sim, "pty", tmp_path)
        result = station("read", "--url", url, "--protocol", "mt-sics", lang="fr")
        assert result.exit_code == 0, result.output
        assert result.output.startswith("12,345 kg")


def test_read_toledo_net_and_tare(tmp_path: Path) -> None:
    with ScaleSimulator("toledo-continuous", seed=1) as sim:
        sim.place("0.500", settle_s=0)
        assert sim.tare() == ("A", 500_000)
        sim.place("2.000", settle_s=0)
        url = start(sim, "tcp", tmp_path)
        result = station("read", "--url", url, "--protocol", "toledo-continuous", "--json")
        assert result.exit_code == 0, result.output
        reading = json.loads(result.output)
        assert (reading["weight_mg"], reading["net"], reading["tare_mg"]) == (
            1_500_000,
            True,
            500_000,
        )
        assert reading["gross_mg"] == 2_000_000
        human = station("read", "--url", url, "--protocol", "toledo-continuous").output
        assert human.startswith("1.500 kg, net, stable, tare 0.500 kg")


@pytest.mark.parametrize("protocol", ["mt-sics", "toledo-continuous"])
def test_read_stable_waits_for_the_scale_to_settle(protocol: str, tmp_path: Path) -> None:
    with ScaleSimulator(protocol, seed=1, stable_timeout_s=3) as sim:
        url = start(sim, "pty", tmp_path)
        sim.place("3.000", settle_s=0.8)
        result = station("read", "--url", url, "--protocol", protocol, "--stable", "--json")
        assert result.exit_code == 0, result.output
        reading = json.loads(result.output)
        assert (reading["weight_mg"], reading["stable"]) == (3_000_000, True)


def test_read_stable_that_never_comes_exits_1(tmp_path: Path) -> None:
    with ScaleSimulator("toledo-continuous", seed=1) as sim:
        url = start(sim, "pty", tmp_path)
        sim.place("3.000", settle_s=float("inf"))
        result = station(
            "read", "--url", url, "--protocol", "toledo-continuous", "--stable", "--timeout", "0.8"
        )
        assert result.exit_code == 1
        assert "No stable weight within 0.8 s (last: " in result.output
        assert "unstable (in motion)" in result.output


def test_read_overload_is_said(tmp_path: Path) -> None:
    with ScaleSimulator(seed=1) as sim:
        url = start(sim, "tcp", tmp_path)
        sim.set_overload()
        result = station("read", "--url", url, "--protocol", "mt-sics")
        assert result.exit_code == 0, result.output
        assert result.output.startswith("OVERLOAD")


def test_read_takes_url_protocol_and_link_from_the_config(
    config_file: Path, tmp_path: Path
) -> None:
    with ScaleSimulator("toledo-continuous", seed=1) as sim:
        sim.place("0.250", settle_s=0)
        url = start(sim, "pty", tmp_path)
        config = with_scale(config_file, url, "toledo-continuous")
        result = station("read", "--json", config=config)
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["weight_mg"] == 250_000


def test_read_needs_a_config_unless_url_and_protocol_are_given(tmp_path: Path) -> None:
    result = station("read", "--url", "/dev/null")
    assert result.exit_code == 66
    assert "Configuration error" in result.output
    with ScaleSimulator(seed=1) as sim:
        url = start(sim, "pty", tmp_path)
        assert station("read", "--url", url, "--protocol", "mt-sics").exit_code == 0


def test_read_from_nothing(bare_pty: str, tmp_path: Path) -> None:
    result = station("read", "--url", bare_pty, "--protocol", "mt-sics", "--timeout", "0.3")
    assert result.exit_code == 1
    assert "No answer from the scale" in result.output and "station scale probe" in result.output
    missing = station("read", "--url", str(tmp_path / "ttyUSB9"), "--protocol", "mt-sics")
    assert missing.exit_code == 74
    assert "no such device" in missing.output
    assert missing.exception is None or isinstance(missing.exception, SystemExit)


# -- tare / zero -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["pty", "tcp"])
def test_tare_and_zero(kind: str, tmp_path: Path) -> None:
    with ScaleSimulator(seed=1) as sim:
        url = start(sim, kind, tmp_path)
        sim.place("0.400", settle_s=0)
        tare = station("tare", "--url", url, "--protocol", "mt-sics")
        assert tare.exit_code == 0, tare.output
        assert "Tare done. Tare in use: 0.400 kg. (scale answered: T S" in tare.output
        sim.place("1.400", settle_s=0)
        read = station("read", "--url", url, "--protocol", "mt-sics", "--json")
        assert json.loads(read.output)["weight_mg"] == 1_000_000
        sim.remove(settle_s=0)
        sim.clear_tare()
        zero = station("zero", "--url", url, "--protocol", "mt-sics")
        assert zero.exit_code == 0, zero.output
        assert "Zero done. (scale answered: Z A)" in zero.output


def test_refusals_exit_1(tmp_path: Path) -> None:
    with ScaleSimulator(seed=1) as sim:
        url = start(sim, "pty", tmp_path)
        sim.place("1.000", settle_s=float("inf"))
        tare = station("tare", "--url", url, "--protocol", "mt-sics")
        assert tare.exit_code == 1
        assert "Refused by the scale: T I" in tare.output
        sim.place("1.000", settle_s=0)
        sim.set_overload()
        zero = station("zero", "--url", url, "--protocol", "mt-sics")
        assert zero.exit_code == 1
        assert "Refused by the scale: Z +" in zero.output


def test_tare_on_a_protocol_without_commands_is_refused(tmp_path: Path) -> None:
    no_tare = [n for n, p in sorted(PROTOCOLS.items()) if p.streaming]
    with ScaleSimulator("toledo-continuous", seed=1) as sim:
        url = start(sim, "pty", tmp_path)
        result = station("tare", "--url", url, "--protocol", "toledo-continuous")
        assert result.exit_code == 1
        assert "has no tare command: use the key on the scale" in result.output
    assert "toledo-continuous" in no_tare


# -- monitor ---------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["mt-sics", "toledo-continuous"])
def test_monitor_count_prints_plain_lines(protocol: str, tmp_path: Path) -> None:
    with ScaleSimulator(protocol, seed=1) as sim:
        sim.place("0.750", settle_s=0)
        url = start(sim, "pty", tmp_path)
        result = station(
            "monitor", "--url", url, "--protocol", protocol, "--count", "3", "--interval", "0.05"
        )
        assert result.exit_code == 0, result.output
        lines = [line for line in result.output.splitlines() if "kg" in line]
        assert len(lines) == 3
        for line in lines:
            assert "0.750 kg" in line and "stable" in line
        assert "\r" not in result.output and "\x1b" not in result.output


class Lines:
    """Lines of a child's stdout, read by a thread so a test can wait with a timeout."""

    def __init__(self, stream: Any) -> None:
        self.queue: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: Any) -> None:
        for line in stream:
            self.queue.put(line)

    def until(self, text: str, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while True:
            line = self.queue.get(timeout=max(0.01, deadline - time.monotonic()))
            self.seen.append(line)
            if text in line:
                return line


def test_monitor_reports_unplug_and_replug_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    with ScaleSimulator(seed=1) as sim:
        sim.place("2.000", settle_s=0)
        url = start(sim, "pty", tmp_path)
        proc = station_process(
            "monitor",
            "--url",
            url,
            "--protocol",
            "mt-sics",
            "--interval",
            "0.05",
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            lines = Lines(proc.stdout)
            lines.until("2.000 kg")
            sim.unplug()
            lines.until("Scale disconnected")
            sim.place("0.300", settle_s=0)
            sim.replug()
            lines.until("Scale reconnected")
            lines.until("0.300 kg")
            proc.send_signal(signal.SIGINT)
            assert proc.wait(10) == 0
            assert proc.stderr is not None
            assert "Traceback" not in proc.stderr.read()
        finally:
            proc.kill()
            proc.wait()


def test_monitor_refreshes_one_line_on_a_terminal(tmp_path: Path) -> None:
    with ScaleSimulator(seed=1) as sim:
        sim.place("0.125", settle_s=0)
        url = start(sim, "pty", tmp_path)
        master, slave = pty.openpty()
        proc = station_process(
            "monitor",
            "--url",
            url,
            "--protocol",
            "mt-sics",
            "--count",
            "3",
            "--interval",
            "0.05",
            stdout=slave,
            stderr=subprocess.DEVNULL,
        )
        os.close(slave)
        out = bytearray()
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                ready, _, _ = select.select([master], [], [], 0.2)
                if ready:
                    try:
                        chunk = os.read(master, 4096)
                    except OSError:  # EIO: the child closed its terminal
                        break
                    if not chunk:
                        break
                    out += chunk
                elif proc.poll() is not None:
                    break
            assert proc.wait(10) == 0
        finally:
            proc.kill()
            proc.wait()
            os.close(master)
        assert out.count(b"\r\x1b[K") == 3
        assert out.count(b"0.125 kg") == 3
        assert out.rstrip().count(b"\n") == 0  # one line, refreshed in place


# -- decode ----------------------------------------------------------------------------------


def test_decode_toledo_frames_and_a_garbled_one(tmp_path: Path) -> None:
    gross = encode_frame(1_250_000, "kg", 3)
    net = encode_frame(750_000, "kg", 3, net=True, tare_mg=500_000)
    moving = encode_frame(100_000, "kg", 3, motion=True)
    negative = encode_frame(-20_000, "kg", 3, net=True, tare_mg=20_000)
    over = encode_frame(0, "kg", 3, out_of_range=True)
    garbled = bytearray(encode_frame(2_000_000, "kg", 3))
    garbled[6] ^= 0x01  # a bit flipped in a digit: the checksum no longer matches
    capture = tmp_path / "toledo.bin"
    capture.write_bytes(gross + net + moving + negative + over)
    result = station("decode", "--protocol", "toledo-continuous", str(capture))
    assert result.exit_code == 0, result.output
    frames = jsonl(result.output)
    assert [f["weight_mg"] for f in frames] == [1_250_000, 750_000, 100_000, -20_000, None]
    # status word B bit 0 says gross or net, out of range too (issue 17 item 1)
    assert [f["net"] for f in frames] == [False, True, False, True, False]
    assert [f["stable"] for f in frames] == [True, True, False, True, True]
    assert [f["tare_mg"] for f in frames] == [0, 500_000, 0, 20_000, None]
    assert [f["overload"] for f in frames] == [False] * 4 + [True]
    assert all(f["error"] is None and f["unit"] == "kg" for f in frames)
    keys = {"weight_mg", "unit", "stable", "net", "tare_mg", "pieces", "overload", "underload"}
    assert all(keys | {"error", "raw"} <= set(f) for f in frames)
    assert frames[0]["raw"].startswith("\\x02")

    capture.write_bytes(gross + bytes(garbled) + net)
    bad = station("decode", "--protocol", "toledo-continuous", str(capture))
    assert bad.exit_code == 1
    entries = jsonl(bad.output)
    assert [e["weight_mg"] for e in entries] == [1_250_000, None, 750_000]
    assert entries[1]["error"] and entries[1]["weight_mg"] is None
    assert entries[1]["raw"].startswith("\\x02")


MT_REPLIES = [
    b"S S      1.250 kg",
    b"S D      0.120 kg",
    b"S S     -0.005 kg",
    b"S +",
    b"T S      0.500 kg",
    b"Z A",
    b'I4 A "1126493049"',
    b"ES",
]


def test_decode_mt_sics_replies_and_error_replies(tmp_path: Path) -> None:
    capture = tmp_path / "mt.bin"
    capture.write_bytes(b"".join(r + b"\r\n" for r in MT_REPLIES))
    result = station("decode", "--protocol", "mt-sics", str(capture))
    assert result.exit_code == 0, result.output
    e = jsonl(result.output)
    assert len(e) == len(MT_REPLIES)
    assert [x["weight_mg"] for x in e] == [1_250_000, 120_000, -5_000, None, None, None, None, None]
    assert [x["stable"] for x in e[:3]] == [True, False, True]
    assert e[3]["overload"] is True
    assert e[4]["reply"] == {
        "command": "T",
        "status": "S",
        "params": ["0.500", "kg"],
        "mass_mg": 500_000,
    }
    assert e[6]["reply"]["params"] == ["1126493049"]
    assert e[7]["error"].startswith("error reply: ES")
    assert all(x["error"] is None for x in e[:7])
    assert e[0]["raw"] == "S S      1.250 kg"


def test_decode_mt_sics_garbled_line_exits_1_from_stdin() -> None:
    data = b"S S      1.250 kg\r\nS S   1.2x0 kg\r\nS S      2.000 kg\r\n"
    proc = station_process(
        "decode",
        "--protocol",
        "mt-sics",
        "-",
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = proc.communicate(data.decode("ascii"), timeout=60)
    assert proc.returncode == 1
    e = jsonl(out)
    assert [x["weight_mg"] for x in e] == [1_250_000, None, 2_000_000]
    assert e[1]["error"] and "1.2x0" in e[1]["raw"]
    assert "3 frame(s), 1 not decoded" in err
    assert "Traceback" not in err


def test_decode_a_truncated_capture_reports_the_tail(tmp_path: Path) -> None:
    frame = encode_frame(1_000_000, "kg", 3)
    capture = tmp_path / "cut.bin"
    capture.write_bytes(frame * 4 + frame[:9])
    result = station("decode", "--protocol", "toledo-continuous", str(capture))
    assert result.exit_code == 1
    e = jsonl(result.output)
    assert [x["weight_mg"] for x in e[:4]] == [1_000_000] * 4
    assert e[4]["error"].startswith("incomplete frame at end of input")


def test_decode_hex_text() -> None:
    text = (b"S S      1.250 kg\r\n").hex(" ")
    result = CliRunner().invoke(
        cli,
        ["--lang", "en", "scale", "decode", "--protocol", "mt-sics", "--format", "hex"],
        input=text,
    )
    assert result.exit_code == 0, result.output
    assert jsonl(result.output)[0]["weight_mg"] == 1_250_000
    bad = CliRunner().invoke(
        cli,
        ["--lang", "en", "scale", "decode", "--protocol", "mt-sics", "--format", "hex"],
        input="zz",
    )
    assert bad.exit_code == 65


def test_decode_a_pyserial_spy_log_of_the_simulator(tmp_path: Path) -> None:
    log = tmp_path / "spy.log"
    with ScaleSimulator("toledo-continuous", seed=1, rate_hz=20) as sim:
        sim.place("4.321", settle_s=0)
        device = sim.start_pty()
        port = serial.serial_for_url(f"spy://{device}?file={log}", timeout=0.1)
        try:
            port.reset_input_buffer()
            deadline = time.monotonic() + 0.6
            while time.monotonic() < deadline:
                port.read(64)
            port.write(b"SI\r\n")  # a TX line, which decode must ignore
        finally:
            port.close()
    assert " RX " in log.read_text() and " TX " in log.read_text()
    result = station("decode", "--protocol", "toledo-continuous", "--format", "spy", str(log))
    e = jsonl(result.output)
    weights = [x["weight_mg"] for x in e if x["error"] is None]
    assert len(weights) >= 3 and set(weights) == {4_321_000}
    # only the ends of a live capture may be cut mid-frame
    assert all(x["error"] is None for x in e[1:-1])


def capture_from(sim: ScaleSimulator, protocol: str) -> bytes:
    """What the simulator sends on a TCP connection: streamed frames or replies to READ."""
    host, port = sim.start_tcp()
    data = bytearray()
    with socket.create_connection((host, port), timeout=5) as conn:
        conn.settimeout(0.2)
        time.sleep(0.1)  # the simulator adopts the client
        proto = PROTOCOLS[protocol]
        for _ in range(3):
            if not proto.streaming:
                conn.sendall(proto.encode(Command.READ))
            time.sleep(0.25)
        sim.unplug()  # whole messages only: the simulator closes between two writes
        while True:
            try:
                chunk = conn.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                break
            if not chunk:
                break
            data += chunk
    return bytes(data)


@pytest.mark.parametrize("protocol", SIM_PROTOCOLS)
def test_decode_what_every_simulator_sends(protocol: str, tmp_path: Path) -> None:
    with ScaleSimulator(protocol, seed=1) as sim:
        sim.place("0.600", settle_s=0)
        data = capture_from(sim, protocol)
    assert data
    capture = tmp_path / "capture.bin"
    capture.write_bytes(data)
    result = station("decode", "--protocol", protocol, str(capture))
    assert result.exit_code == 0, result.output
    weights = [x["weight_mg"] for x in jsonl(result.output) if x["weight_mg"] is not None]
    assert len(weights) >= 3
    assert set(weights) == {600_000}


def test_a_port_held_by_another_program_is_busy(tmp_path: Path) -> None:
    with ScaleSimulator(seed=1) as sim:
        url = start(sim, "pty", tmp_path)
        holder = serial.Serial(url, exclusive=True)  # like the running daemon
        try:
            read = station("read", "--url", url, "--protocol", "mt-sics")
            assert read.exit_code == 74
            assert "busy: another program holds the port" in read.output
            probe = station("probe", "--ports", url)
            assert probe.exit_code == 1
            assert f"{url}: busy: another program holds the port" in probe.output
        finally:
            holder.close()


def test_port_problems_are_said_for_a_technician() -> None:
    def problem(cause: BaseException) -> str:
        try:
            raise PortError(f"/dev/ttyUSB0: {cause}") from cause
        except PortError as exc:
            return port_problem(exc)

    denied = serial.SerialException(errno.EACCES, "could not open port: Permission denied")
    assert problem(denied).startswith("permission denied: add the user to the dialout group")
    busy = serial.SerialException(errno.EAGAIN, "Could not exclusively lock port")
    assert problem(busy).startswith("busy: another program holds the port")
    assert problem(FileNotFoundError(errno.ENOENT, "no such file")).startswith("no such device")


def test_set_scale_keys_edits_the_scale_table_in_place() -> None:
    """The probe's writer (issue 17 §4): values replaced with their comments kept, missing
    keys added after the last one set, other tables untouched, one [scale] table."""
    text = (
        '# station\n[station]\nid = "s1"\n\n[scale]\n'
        'url = "/dev/pesee-scale"   # a # in a comment\n'
        "protocol = 'mt-sics'\n# baudrate = 9600\nmin_weight = \"20 g\"\n\n"
        '[scale.ascii]\nterminator = "\\r\\n"\n'
    )
    new = set_scale_keys(text, {"url": '"/dev/serial/by-id/usb-X-if00"', "protocol": '"sma"',
                                "baudrate": "9600"})  # fmt: skip
    assert new == (
        '# station\n[station]\nid = "s1"\n\n[scale]\n'
        'url = "/dev/serial/by-id/usb-X-if00"   # a # in a comment\n'
        'protocol = "sma"\nbaudrate = 9600\n# baudrate = 9600\nmin_weight = "20 g"\n\n'
        '[scale.ascii]\nterminator = "\\r\\n"\n'
    )
    assert set_scale_keys('[station]\nid = "s1"', {"url": '"a"'}) == (
        '[station]\nid = "s1"\n\n[scale]\nurl = "a"\n'
    )
