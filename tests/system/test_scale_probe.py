"""`station scale probe` finds each simulated scale at its own link, skips a silent port and the
scanner's: it opens every port it is given at every speed, so it lives in the system tier."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.scale import PROTOCOLS
from drivers.sim.scale import ScaleSimulator
from tests.support.scale_cli import nothing_behind, start, station, with_scale

SIM_PROTOCOLS = sorted(PROTOCOLS)


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
