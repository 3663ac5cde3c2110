"""Port probing as library code: harmless requests, the plan, the prober, the words said."""

from __future__ import annotations

import errno
import time
from pathlib import Path

from drivers.base import PortError
from drivers.scale import PROTOCOLS, Command, get_protocol
from drivers.scale.probe import (
    Answer,
    Prober,
    config_lines,
    port_problem,
    probe_plan,
    probe_request,
    same_device,
)
from drivers.serialio import LinkSettings, framing_text
from drivers.sim.scale import ScaleSimulator


def test_no_probe_request_carries_a_single_letter_tare_or_zero() -> None:
    dangerous = set()
    for protocol in PROTOCOLS.values():
        for command in (Command.ZERO, Command.TARE, Command.CLEAR_TARE):
            try:
                letters = protocol.encode(command).strip(b"\r\n")
            except Exception:
                continue
            if len(letters) == 1:
                dangerous.add(letters[0])
    assert dangerous  # Kern's t, Toledo 8217's Z…
    for protocol in PROTOCOLS.values():
        request = probe_request(protocol)
        if protocol.streaming:
            assert request is None
        elif request is not None:
            assert not dangerous.intersection(request[1]), protocol.name


def test_the_plan_tries_each_protocols_own_link_first() -> None:
    mt, kern = get_protocol("mt-sics"), get_protocol("kern")
    plan = probe_plan([mt, kern], None, None)
    firsts = {p.name for _link, ps in plan[:2] for p in ps}
    assert firsts == {"mt-sics", "kern"}
    assert all(link.rtscts is False for link, _ps in plan)  # never wait on a CTS line
    only = probe_plan([mt], [2400], ["7E1"])
    assert [(link.baudrate, framing_text(link)) for link, _ps in only] == [(2400, "7E1")]


def test_the_prober_finds_a_simulated_balance(tmp_path: Path) -> None:
    mt = get_protocol("mt-sics")
    with ScaleSimulator() as sim:
        url = sim.start_pty(tmp_path / "scale")
        prober = Prober(0.5, time.monotonic() + 60)
        result = prober.port(url, probe_plan([get_protocol("toledo-continuous"), mt], None, None))
    assert result.problem is None
    assert result.answer is not None and result.answer.certain
    assert result.answer.protocol.name == "mt-sics" and result.answer.request is not None


def test_a_missing_port_is_a_problem_said_for_a_technician(tmp_path: Path) -> None:
    prober = Prober(0.2, time.monotonic() + 10)
    result = prober.port(
        str(tmp_path / "ttyUSB9"), probe_plan([get_protocol("mt-sics")], None, None)
    )
    assert result.answer is None and result.problem is not None
    assert "no such device" in result.problem
    denied = PortError("/dev/ttyUSB0")
    denied.__cause__ = PermissionError(errno.EACCES, "Permission denied")
    assert "dialout" in port_problem(denied)


def test_config_lines_and_same_device(tmp_path: Path) -> None:
    link = LinkSettings(2400, 7, "E", 1)
    answer = Answer(
        "socket://10.0.0.5:4001", get_protocol("mt-sics"), link, b"I4 A", b"I4\r\n", True
    )
    assert config_lines(answer) == [
        "[scale]",
        'url = "socket://10.0.0.5:4001"',
        'protocol = "mt-sics"',
        "baudrate = 2400",
        "bytesize = 7",
        'parity = "E"',
        "stopbits = 1",
    ]
    target = tmp_path / "ttyUSB0"
    target.touch()
    alias = tmp_path / "by-id"
    alias.symlink_to(target)
    assert same_device(str(alias), str(target))
    assert not same_device("socket://a:1", "socket://b:1")
