"""`station scale probe` finds each simulated scale at its own link, skips a silent port and the
scanner's: it opens every port it is given at every speed, so it lives in the system tier."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from drivers.scale import PROTOCOLS
from drivers.sim.scale import ScaleSimulator
from station.cli import cli
from station.config import load_config
from tests.support.scale_cli import nothing_behind, start, station, with_scale

# serial protocols: hid-pos is read from hidraw, not probed on serial ports
SIM_PROTOCOLS = sorted(n for n, p in PROTOCOLS.items() if p.port_url is str)


@pytest.fixture
def bare_pty() -> Iterator[str]:
    with nothing_behind() as port:
        yield port


def test_probe_finds_the_simulators_and_skips_a_silent_port(bare_pty: str, tmp_path: Path) -> None:
    with (
        ScaleSimulator("mt-sics", seed=1) as mt,
        ScaleSimulator("toledo-continuous", seed=1) as toledo,
    ):
        mt.place("0.200", settle_s=0)
        assert mt.tare() == ("A", 200_000)
        mt_url = mt.start_pty(tmp_path / "ttyMT")
        toledo_url = start(toledo, "tcp", tmp_path)
        started = time.monotonic()
        result = station(
            "probe",
            "--ports",
            f"{mt_url},{bare_pty}",
            "--ports",
            toledo_url,
            "--timeout",
            "0.3",
            "--max-time",
            "90",
        )
        assert time.monotonic() - started < 90
        assert result.exit_code == 0, result.output
        out = result.output
        assert f"{mt_url}: mt-sics at 9600 8N1, replied I4 A" in out
        assert f"{toledo_url}: toledo-continuous at 9600 8N1, sends \\x02" in out
        assert f"{bare_pty}: nothing answered" in out
        assert (
            "\n".join(
                [
                    "[scale]",
                    f'url = "{mt_url}"',
                    'protocol = "mt-sics"',
                    "baudrate = 9600",
                    "bytesize = 8",
                    'parity = "N"',
                    "stopbits = 1",
                ]
            )
            in out
        )
        assert f'url = "{toledo_url}"\nprotocol = "toledo-continuous"' in out
        # never zero, tare or reset while probing: the tare taken before is still there
        assert mt.snapshot().tare_mg == 200_000 and mt.snapshot().zero_mg == 0


def test_probe_with_nothing_answering_exits_1_with_hints(bare_pty: str) -> None:
    started = time.monotonic()
    result = station("probe", "--ports", bare_pty, "--timeout", "0.2")
    assert time.monotonic() - started < 90
    assert result.exit_code == 1
    assert f"{bare_pty}: nothing answered" in result.output
    assert "No scale answered" in result.output
    assert "dialout" in result.output and "cable" in result.output
    assert "[scale]" not in result.output


def test_probe_never_touches_the_scanner_and_reports_missing_ports(
    config_file: Path, tmp_path: Path
) -> None:
    with ScaleSimulator(seed=1) as sim:
        scanner = sim.start_pty(tmp_path / "ttyScanner")
        config = with_scale(config_file, "/dev/pesee-scale", "mt-sics", scanner=scanner)
        missing = str(tmp_path / "ttyUSB7")
        result = station("probe", "--ports", f"{scanner},{missing}", config=config)
        assert result.exit_code == 1
        assert f"{scanner}: skipped, it is the scanner's port (see the config)" in result.output
        assert f"{missing}: no such device" in result.output


def test_probe_restricted_to_one_protocol_and_baud(tmp_path: Path) -> None:
    with ScaleSimulator("toledo-continuous", seed=1) as sim:
        url = start(sim, "pty", tmp_path)
        result = station(
            "probe", "--ports", url, "--protocols", "mt-sics", "--bauds", "2400", "--timeout", "0.2"
        )
        assert result.exit_code == 1  # the continuous output is not MT-SICS
        found = station(
            "probe", "--ports", url, "--protocols", "toledo-continuous", "--bauds", "2400"
        )
        assert found.exit_code == 0, found.output
        assert "toledo-continuous at 2400 8N1" in found.output
        assert "baudrate = 2400" in found.output


# Scales that answer an earlier protocol's probe request in that protocol's own bytes: the probe
# names the earlier one, whose config works as well (Kern KCP is MT-SICS byte for byte; a Dini
# Argeo indicator answers READ as well as REXT).
PROBED_AS = {"kern-kcp": "mt-sics", "dini-argeo-ext": "dini-argeo"}


@pytest.mark.parametrize("protocol", SIM_PROTOCOLS)
def test_probe_finds_every_simulator_at_its_own_link(protocol: str, tmp_path: Path) -> None:
    # over TCP every framing opens, so the protocol's own link must be found first
    with ScaleSimulator(protocol, seed=1) as sim:
        sim.place("1.000", settle_s=0)
        url = start(sim, "tcp", tmp_path)
        result = station("probe", "--ports", url, "--timeout", "0.3")
        assert result.exit_code == 0, result.output
        link = PROTOCOLS[protocol].link
        framing = f"{link.bytesize}{link.parity}{int(link.stopbits)}"
        found = PROBED_AS.get(protocol, protocol)
        assert PROTOCOLS[found].link == link
        assert f"{url}: {found} at {link.baudrate} {framing}, " in result.output
        assert f'protocol = "{found}"\nbaudrate = {link.baudrate}' in result.output


# udev's by-id name of an FTDI FT232R adapter: usb-<ID_SERIAL>-if<n>-port<n> (60-serial.rules)
FTDI_BY_ID = "usb-FTDI_FT232R_USB_UART_A50285BI-if00-port0"
FTDI_RULE = (
    'SUBSYSTEM=="tty", ENV{ID_SERIAL}=="FTDI_FT232R_USB_UART_A50285BI", '
    'SYMLINK+="pesee-scale", GROUP="dialout", MODE="0660", ENV{ID_MM_DEVICE_IGNORE}="1", '
    'TAG+="systemd"'
)


def test_probe_finds_a_usb_serial_scale_by_its_by_id_path_and_writes_the_config(
    config_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 17 §4: no --ports; the by-id directory (PESEE_SERIAL_BY_ID, as udev's
    /dev/serial/by-id) holds a link to the simulator's pty; the probe finds it there, prints
    the udev naming line with its ids and the [scale] keys, and --write gives a config that
    `station config check` accepts (it used to suggest a second [scale] table)."""
    by_id = tmp_path / "by-id"
    by_id.mkdir()
    monkeypatch.setenv("PESEE_SERIAL_BY_ID", str(by_id))
    with ScaleSimulator("sma", seed=1) as sim:
        sim.place("1.000", settle_s=0)
        pty = os.path.realpath(sim.start_pty(tmp_path / "ttyUSB0"))
        link = by_id / FTDI_BY_ID
        link.symlink_to(pty)
        config = with_scale(config_file, str(tmp_path / "unplugged"), "mt-sics")
        result = station("probe", "--protocols", "sma", "--timeout", "0.3", config=config)
        assert result.exit_code == 0, result.output
        out = result.output
        assert f"{link}: sma at 9600 8N1, replied" in out
        assert f"by-id: {link}" in out
        assert f"\n{FTDI_RULE}\n" in out
        assert f"Keys to set in the [scale] table of {config}:" in out
        assert f'url = "{link}"\nprotocol = "sma"\nbaudrate = 9600' in out
        assert "[scale]\n" not in out  # not a second table to paste
        assert f"{tmp_path / 'unplugged'} (the configured url): no such device" in out

        before = config.read_text(encoding="utf-8")
        written = station(
            "probe", "--protocols", "sma", "--timeout", "0.3", "--write", config=config
        )
        assert written.exit_code == 0, written.output
        assert f"Written to the [scale] table of {config}." in written.output
    text = config.read_text(encoding="utf-8")
    assert text.count("[scale]") == before.count("[scale]") == 1
    # the comments stay, other keys too
    assert "# any pyserial URL" in text and 'min_weight = "20 g"' in text
    check = CliRunner().invoke(cli, ["--lang", "en", "--config", str(config), "config", "check"])
    assert check.exit_code == 0, check.output
    scale = load_config(config).scale
    assert (scale.url, scale.protocol, scale.baudrate, scale.parity) == (
        str(link),
        "sma",
        9600,
        "N",
    )


def test_probe_tries_the_configured_url_first(config_file: Path, tmp_path: Path) -> None:
    """The configured url (here the simulator's pty) is tried first, with its protocol and
    link, before any port found on the machine."""
    with ScaleSimulator("dini-argeo", seed=1) as sim:
        sim.place("1.000", settle_s=0)
        url = sim.start_pty(tmp_path / "ttyScale")
        config = with_scale(config_file, url, "dini-argeo")
        result = station("probe", "--timeout", "0.3", "--protocols", "dini-argeo", config=config)
    assert result.exit_code == 0, result.output
    tried = [line for line in result.output.splitlines() if line.startswith("Trying ")]
    assert tried[0] == f"Trying {url}…"
    assert f"{url}: dini-argeo at 9600 8N1, replied" in result.output
