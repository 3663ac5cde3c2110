"""Technician commands as a user who may not read the daemon's files, and a journal of another id.

Issue 13: ``status``, ``sync status``, ``doctor``, ``db verify`` run by an SSH user outside the
``pesee`` group say which permission is missing and how to get it, exit 77, no traceback; and
``config check`` reports a journal bound to another station id, with what to do.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from station.cli.context import unreadable
from station.config import load_config
from station.store import Store

NOBODY = 65534


def _unprivileged() -> list[str]:
    """The command prefix that runs a command without the right to read others' files.

    As root, the capabilities that bypass file permissions (CAP_DAC_*) are dropped with setpriv:
    root then reads a directory that ``nobody`` owns with mode 700 no better than anyone else."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: cannot drop the right to read everything")
    return [setpriv, "--bounding-set=-all", "--inh-caps=-all"]


def _lock(data: Path) -> None:
    """Make ``data`` unreadable to the user the commands run as."""
    if os.geteuid() == 0:
        os.chown(data, NOBODY, -1)
        data.chmod(0o700)
    else:
        data.chmod(0o000)


def _station(
    config_file: Path, *args: str, prefix: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            *(prefix or []),
            sys.executable,
            "-m",
            "station",
            "--lang",
            "en",
            "--config",
            str(config_file),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def locked(config_file: Path) -> Iterator[tuple[Path, list[str]]]:
    """A station with a journal in a data directory this user may not read."""
    prefix = _unprivileged()
    cfg = load_config(config_file)
    with Store(cfg.store_path, cfg.station.id) as store:
        store.append("weighing", net_mg=1500, category="CAT-VET")
    data = cfg.store_path.parent
    _lock(data)
    yield config_file, prefix
    data.chmod(0o755)  # let pytest clean up


@pytest.mark.parametrize(
    "args", [("status",), ("sync", "status"), ("db", "verify"), ("doctor",)], ids=" ".join
)
def test_a_missing_permission_is_one_line_with_the_fix(
    locked: tuple[Path, list[str]], args: tuple[str, ...]
) -> None:
    config_file, prefix = locked
    done = _station(config_file, *args, prefix=prefix)
    out = done.stdout + done.stderr
    assert done.returncode == 77, out
    assert "Traceback" not in out and "PermissionError" not in out
    line = next(row for row in out.splitlines() if "permission refused" in row)
    assert str(config_file.parent / "data") in line
    assert "sudo -u pesee station" in line and "usermod -aG pesee" in line


@pytest.fixture
def group_readable(config_file: Path) -> Iterator[tuple[Path, list[str]]]:
    """The journal as a member of the daemon's group sees it with the daemon stopped: the
    directory and the file readable, not writable, no ``-shm`` file beside the journal."""
    prefix = _unprivileged()
    cfg = load_config(config_file)
    with Store(cfg.store_path, cfg.station.id) as store:
        store.append("weighing", net_mg=1500, category="CAT-VET")
    data = cfg.store_path.parent
    assert not Path(f"{cfg.store_path}-shm").exists()
    if os.geteuid() == 0:  # owned by nobody, group root (ours): r-x and r--
        os.chown(data, NOBODY, 0)
        os.chown(cfg.store_path, NOBODY, 0)
        data.chmod(0o750)
        cfg.store_path.chmod(0o640)
    else:
        data.chmod(0o550)
        cfg.store_path.chmod(0o440)
    yield config_file, prefix
    data.chmod(0o755)


@pytest.mark.parametrize(
    "args", [("status",), ("sync", "status"), ("db", "verify"), ("doctor",)], ids=" ".join
)
def test_a_group_member_is_told_to_use_sudo_while_the_station_is_stopped(
    group_readable: tuple[Path, list[str]], args: tuple[str, ...]
) -> None:
    config_file, prefix = group_readable
    done = _station(config_file, *args, prefix=prefix)
    out = done.stdout + done.stderr
    assert done.returncode == 77, out
    assert "Traceback" not in out
    assert "only while the station runs" in out and "sudo -u pesee station" in out


def test_config_check_still_checks_the_config_without_the_journal(
    locked: tuple[Path, list[str]],
) -> None:
    config_file, prefix = locked
    done = _station(config_file, "config", "check", prefix=prefix)
    assert done.returncode == 0, done.stderr
    assert "Configuration OK" in done.stdout
    assert "journal not checked:" in done.stdout and "permission refused" in done.stdout


def test_unreadable_names_the_first_blocked_directory(tmp_path: Path) -> None:
    assert unreadable(tmp_path / "missing" / "station.db") is None  # missing is not denied
    (tmp_path / "ok").mkdir()
    assert unreadable(tmp_path / "ok" / "station.db") is None


def test_config_check_reports_a_journal_of_another_station(config_file: Path) -> None:
    cfg = load_config(config_file)
    with Store(cfg.store_path, "epicerie-sud-2") as store:
        store.append("weighing", net_mg=1500, category="CAT-VET")
    done = _station(config_file, "config", "check")
    assert done.returncode == 78, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert "belongs to station epicerie-sud-2 (1 record), not to ressourcerie-nord-1" in done.stderr
    assert 'id = "epicerie-sud-2"' in done.stderr and "sudo mv" in done.stderr
    french = _station(config_file, "--lang", "fr", "config", "check")
    assert french.returncode == 78 and "epicerie-sud-2" in french.stderr


def test_config_check_says_an_empty_journal_of_another_id_is_rebound(config_file: Path) -> None:
    cfg = load_config(config_file)
    with Store(cfg.store_path, "epicerie-sud-2"):
        pass
    done = _station(config_file, "config", "check")
    assert done.returncode == 0, done.stderr
    assert "made for station epicerie-sud-2 and holds no record" in done.stdout
