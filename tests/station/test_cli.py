"""The ``station`` command: help with examples everywhere, db verify/export, status."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from station.cli import cli
from station.config import load_config
from station.store import Store


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for name, command in group.commands.items():
        out.append((*prefix, name))
        if isinstance(command, click.Group):
            out += _commands(command, (*prefix, name))
    return out


@pytest.mark.parametrize("path", _commands(cli))
def test_every_command_has_help_with_an_example(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0
    command: click.Command = cli
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    if not isinstance(command, click.Group):
        assert "Example" in result.output, f"station {' '.join(path)} --help has no example"


def _store_with(config_file: Path, n: int) -> Path:
    cfg = load_config(config_file)
    with Store(cfg.store_path, cfg.station.id) as store:
        for i in range(n):
            store.append("weighing", net_mg=1000 + i, category="CAT-VET")
    return cfg.store_path


def _station(config_file: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "station", "--lang", "en", "--config", str(config_file), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_db_verify_ok_and_broken(config_file: Path) -> None:
    path = _store_with(config_file, 5)
    done = _station(config_file, "db", "verify")
    assert done.returncode == 0, done.stderr
    assert "Journal OK: 5 records, seq 1..5" in done.stdout
    raw = sqlite3.connect(path)
    raw.execute("UPDATE records SET net_mg = 1 WHERE seq = 3")
    raw.commit()
    raw.close()
    done = _station(config_file, "db", "verify")
    assert done.returncode == 1
    assert "seq 3: content altered" in done.stderr
    assert "Traceback" not in done.stderr


def test_db_verify_without_store_is_a_clear_error(config_file: Path) -> None:
    done = _station(config_file, "db", "verify")
    assert done.returncode == 74
    assert "Cannot open the store" in done.stderr


def test_db_export(config_file: Path, tmp_path: Path) -> None:
    _store_with(config_file, 3)
    done = _station(config_file, "db", "export", "--after", "1")
    assert done.returncode == 0
    assert [json.loads(line)["seq"] for line in done.stdout.splitlines()] == [2, 3]
    out = tmp_path / "r.csv"
    done = _station(config_file, "db", "export", "--format", "csv", "-o", str(out))
    assert done.returncode == 0
    assert out.read_text().splitlines()[0].startswith("seq,uuid,epoch,station,kind")
    assert "3 records exported" in done.stderr


def test_status_without_daemon(config_file: Path) -> None:
    _store_with(config_file, 2)
    done = _station(config_file, "status")
    assert done.returncode == 0, done.stderr
    assert "daemon: not running" in done.stdout
    assert "store: 2 records, last seq 2, not yet synced 2" in done.stdout
    done = _station(config_file, "status", "--json")
    assert json.loads(done.stdout)["store"]["backlog"] == 2


def test_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0 and "station, version" in result.output
