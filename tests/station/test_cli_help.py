"""Every command of both CLIs has help with an example, and a user's mistake is one clear line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from ledger.cli import cli as ledger_cli
from station.cli import cli as station_cli

CLIS: dict[str, click.Group] = {"station": station_cli, "ledger": ledger_cli}


def _walk(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for name, command in sorted(group.commands.items()):
        out.append((*prefix, name))
        if isinstance(command, click.Group):
            out += _walk(command, (*prefix, name))
    return out


COMMANDS = [(prog, path) for prog, group in CLIS.items() for path in [(), *_walk(group)]]


@pytest.mark.parametrize(("prog", "path"), COMMANDS, ids=[" ".join((p, *c)) for p, c in COMMANDS])
def test_help_has_an_example(prog: str, path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(CLIS[prog], [*path, "--help"])
    where = " ".join((prog, *path))
    assert result.exit_code == 0, f"{where} --help failed: {result.output}"
    command: click.Command = CLIS[prog]
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    if isinstance(command, click.Group) and path:
        # a group's help lists its commands; each of them is checked on its own
        assert command.commands, f"{where} has no subcommands"
        return
    assert "Example" in result.output, (
        f"`{where} --help` has no example: add an 'Example:' block (\\b) to its docstring"
    )
    assert f"{prog} " in result.output.split("Example", 1)[1], (
        f"`{where} --help`: the example does not show a command line"
    )


def _run(prog: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", prog, "--lang", "en", *args],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        cwd=cwd,
    )


# A user's mistakes: (arguments, exit code, start of the one line said on stderr)
STATION_MISTAKES = [
    (("--config", "/nonexistent/station.toml", "status"), 66, "Configuration error in"),
    (
        ("--config", "{config}", "db", "verify", "--store", "/nonexistent/x.db"),
        74,
        "Cannot open the store",
    ),
    (
        (
            "--config",
            "{config}",
            "manual-entry",
            "--weight",
            "2,5 kilos",
            "--category",
            "CAT-VET",
            "--beneficiary",
            "B1",
        ),
        65,
        "Refused: '2,5 kilos' is not a weight",
    ),
    (("--config", "{config}", "sync", "now"), 69, "The station daemon is not running"),
    (("--config", "{config}", "scale", "read", "--url", "/nonexistent/tty"), 74, ""),
    (("--config", "{config}", "scale", "decode", "--protocol", "nope", "/dev/null"), 2, ""),
    (("--config", "{config}", "db", "export", "--format", "xml"), 2, ""),
]


@pytest.mark.parametrize(("args", "code", "start"), STATION_MISTAKES)
def test_station_mistakes_are_one_clear_line(
    config_file: Path, args: tuple[str, ...], code: int, start: str
) -> None:
    done = _run("station", *(a.replace("{config}", str(config_file)) for a in args))
    assert done.returncode == code, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith(start), done.stderr
    if code != 2 and start:  # click's usage errors have their own two-line form
        assert len(done.stderr.strip().splitlines()) <= 3, done.stderr


LEDGER_MISTAKES = [
    (("--config", "/nonexistent/ledger.toml", "stations"), 66, "Configuration error in"),
    (
        ("--config", "{config}", "totals", "--from", "2026-13-01"),
        2,
        "Error: --from: '2026-13-01' is not a date like 2026-01-31",
    ),
    (("--config", "{config}", "report", "--year", "abc"), 2, "Error: --year expects a number"),
]


@pytest.mark.parametrize(("args", "code", "start"), LEDGER_MISTAKES)
def test_ledger_mistakes_are_one_clear_line(
    tmp_path: Path, args: tuple[str, ...], code: int, start: str
) -> None:
    config = tmp_path / "ledger.toml"
    config.write_text(f'[ledger]\ndatabase = "{tmp_path / "ledger.db"}"\n', encoding="utf-8")
    done = _run("ledger", *(a.replace("{config}", str(config)) for a in args))
    assert done.returncode == code, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith(start), done.stderr


def test_panel_test_off_a_pi_says_how_to_simulate(config_file: Path) -> None:
    done = _run("station", "--config", str(config_file), "panel", "test", "--yes")
    assert done.returncode == 74
    assert done.stderr.strip().splitlines() == [
        "Cannot open the GPIO pins: Unable to load any default pin factory! "
        "(not a Raspberry Pi? GPIOZERO_PIN_FACTORY=mock simulates the pins)"
    ]


def test_sync_status_before_the_first_record(config_file: Path) -> None:
    done = _run("station", "--config", str(config_file), "sync", "status")
    assert done.returncode == 0, done.stderr
    assert "journal: last seq 0, acknowledged by the ledger through 0, backlog 0" in done.stdout
