"""Port probing as library code: harmless requests, the plan, the prober, the words said."""

from __future__ import annotations

import errno
import time
from pathlib import Path

import pytest

from drivers.base import PortError
from drivers.scale import PROTOCOLS, Command, get_protocol
from drivers.scale.probe import (
    Answer,
    Prober,
    UsbIds,
    config_lines,
    port_problem,
    probe_plan,
    probe_request,
    same_device,
    udev_rule,
    usb_ids,
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


TAIL = (
    'SYMLINK+="pesee-scale", GROUP="dialout", MODE="0660", ENV{ID_MM_DEVICE_IGNORE}="1", '
    'TAG+="systemd"'
)


def test_udev_rule_has_the_keys_of_the_shipped_examples() -> None:
    """The same keys as systemd/99-pesee.rules' FTDI, CH340 and by-id examples."""
    ftdi = UsbIds(0x0403, 0x6001, "A50285BI")
    assert ftdi.usb_id == "0403:6001"
    assert udev_rule(ftdi) == (
        'SUBSYSTEM=="tty", ATTRS{idVendor}=="0403", ATTRS{idProduct}=="6001", '
        f'ATTRS{{serial}}=="A50285BI", {TAIL}'
    )
    ch340 = UsbIds(0x1A86, 0x7523, None, location="1-1.3:1.0")  # no serial: the USB port
    assert udev_rule(ch340) == (
        f'SUBSYSTEM=="tty", ATTRS{{idVendor}}=="1a86", ATTRS{{idProduct}}=="7523", '
        f'KERNELS=="1-1.3", {TAIL}'
    )
    named = UsbIds(id_serial='Odd_"Name"')
    assert udev_rule(named) == f'SUBSYSTEM=="tty", ENV{{ID_SERIAL}}=="Odd_\\"Name\\"", {TAIL}'
    assert udev_rule(UsbIds()) is None


def test_usb_ids_from_a_by_id_link(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PESEE_SERIAL_BY_ID", str(tmp_path))
    target = tmp_path / "ttyX"
    target.write_text("")
    link = tmp_path / "usb-Prolific_Technology_Inc._USB-Serial_Controller_D-if00-port0"
    link.symlink_to(target)
    for url in (str(link), str(target)):
        ids = usb_ids(url)
        assert ids is not None and ids.by_id == str(link)
        assert ids.id_serial == "Prolific_Technology_Inc._USB-Serial_Controller_D"
    assert usb_ids("socket://127.0.0.1:4001") is None
    assert usb_ids(str(tmp_path / "nothing")) is None
