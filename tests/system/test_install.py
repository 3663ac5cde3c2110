"""install.sh in a throwaway root (DESTDIR): files, modes, idempotence, upgrade, rollback."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# what install.sh reads from a source tree
SOURCE_PARTS = (
    "pyproject.toml",
    "README.md",
    "station",
    "drivers",
    "sync",
    "ledger",
    "systemd",
    "docs",
)

Manifest = dict[str, tuple[str, ...]]


def snapshot(dest: Path) -> Path:
    """A copy of the project as install.sh would get it (the work tree may change meanwhile)."""
    dest.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for part in SOURCE_PARTS:
        src = ROOT / part
        if src.is_dir():
            shutil.copytree(src, dest / part, symlinks=True, ignore=ignore)
        elif src.exists():
            shutil.copy2(src, dest / part)
    return dest


def install(source: Path, destdir: Path, *args: str, ok: bool = True) -> str:
    env = {**os.environ, "DESTDIR": str(destdir), "PESEE_SKIP_PIP": "1"}
    done = subprocess.run(
        ["bash", str(source / "systemd/install.sh"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = done.stdout + done.stderr
    assert (done.returncode == 0) == ok, (
        f"install.sh {' '.join(args)} -> {done.returncode}\n{output}"
    )
    return output


def manifest(root: Path) -> Manifest:
    """Every path under ``root``: its type, mode, and content hash or link target."""
    out: Manifest = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        rel = str(path.relative_to(root))
        mode = oct(stat.S_IMODE(st.st_mode))
        if stat.S_ISLNK(st.st_mode):
            out[rel] = ("link", os.readlink(path))
        elif stat.S_ISDIR(st.st_mode):
            out[rel] = ("dir", mode)
        else:
            out[rel] = ("file", mode, hashlib.sha256(path.read_bytes()).hexdigest())
    return out


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def source_id(root: Path, venv: str = "opt/pesee") -> str:
    return (root / venv / "share/pesee/source").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return snapshot(tmp_path_factory.mktemp("src") / "pesee")


@pytest.fixture(scope="module")
def newer(tmp_path_factory: pytest.TempPathFactory, source: Path) -> Path:
    """The same project with one change in the program, as a newer release would be."""
    dest = snapshot(tmp_path_factory.mktemp("src-newer") / "pesee")
    init = dest / "station/__init__.py"
    init.write_text(init.read_text(encoding="utf-8") + "# a newer release\n", encoding="utf-8")
    return dest


def test_station_install_writes_the_expected_files(source: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    out = install(source, root)
    expected = {
        "etc/pesee/station.toml": (0o640, source / "station/station.example.toml"),
        "etc/pesee/station.env": (0o640, source / "systemd/station.env.example"),
        "etc/systemd/system/pesee-station.service": (
            0o644,
            source / "systemd/pesee-station.service",
        ),
        "etc/udev/rules.d/99-pesee.rules": (0o644, source / "systemd/99-pesee.rules"),
        "etc/udev/rules.d/98-pesee-local.rules": (0o644, source / "systemd/98-pesee-local.rules"),
        "opt/pesee/share/pesee/operations.md": (0o644, source / "docs/operations.md"),
        "opt/pesee/share/pesee/station.example.toml": (
            0o644,
            source / "station/station.example.toml",
        ),
    }
    for rel, (want_mode, content) in expected.items():
        path = root / rel
        assert path.is_file(), rel
        assert mode(path) == want_mode, f"{rel}: {oct(mode(path))}"
        assert path.read_bytes() == content.read_bytes(), rel
    # the venv: a real one (the station sees apt's python3-lgpio through system site-packages)
    assert (root / "opt/pesee/bin/python").exists()
    cfg = (root / "opt/pesee/pyvenv.cfg").read_text(encoding="utf-8")
    assert "include-system-site-packages = true" in cfg
    assert source_id(root).startswith("version ")
    assert mode(root / "etc/pesee") == 0o755
    # nothing of the ledger, no previous version yet
    assert not (root / "etc/systemd/system/pesee-ledger.service").exists()
    assert not (root / "etc/pesee/ledger.toml").exists()
    assert not (root / "opt/pesee.previous").exists()
    # commands that need the real system are skipped and said so
    for command in ("useradd --system pesee", "systemctl enable --now", "udevadm control"):
        assert f"skipped (DESTDIR is set): {command}" in out or command in out
    assert "skipped (PESEE_SKIP_PIP=1)" in out
    assert "station doctor" in out and "journalctl -u pesee-station" in out


def test_second_run_changes_nothing(source: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    install(source, root)
    before = manifest(root)
    out = install(source, root)
    assert manifest(root) == before
    assert "Nothing to do" in out
    assert "up to date" in out
    assert "udev rules unchanged: no reload" in out


def test_existing_config_is_never_overwritten(source: Path, newer: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    conf = root / "etc/pesee/station.toml"
    env = root / "etc/pesee/station.env"
    local = root / "etc/udev/rules.d/98-pesee-local.rules"
    for path, text in (
        (conf, '[station]\nid = "ours"\n'),
        (env, "PESEE_MQTT_PASSWORD=secret\n"),
        (local, 'SUBSYSTEM=="tty", ATTRS{serial}=="A1", SYMLINK+="pesee-scale"\n'),
    ):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        path.chmod(0o600)
    theirs = {p: (p.read_bytes(), mode(p)) for p in (conf, env, local)}
    out = install(source, root)
    out += install(newer, root)  # an upgrade keeps them too
    for path, (content, want_mode) in theirs.items():
        assert (path.read_bytes(), mode(path)) == (content, want_mode), path
    assert "kept: /etc/pesee/station.toml (yours" in out


def test_a_changed_unit_is_replaced_and_the_change_shown(source: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    install(source, root)
    unit = root / "etc/systemd/system/pesee-station.service"
    unit.write_text(unit.read_text(encoding="utf-8").replace("RestartSec=5", "RestartSec=1"))
    out = install(source, root)
    assert unit.read_bytes() == (source / "systemd/pesee-station.service").read_bytes()
    assert "updating /etc/systemd/system/pesee-station.service" in out
    assert "-RestartSec=1" in out and "+RestartSec=5" in out
    assert "systemctl daemon-reload" in out


def test_upgrade_keeps_the_previous_venv_and_rollback_swaps(
    source: Path, newer: Path, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    install(source, root)
    old_id = source_id(root)
    (root / "var/lib/pesee").mkdir(parents=True)
    store = root / "var/lib/pesee/station.db"
    store.write_bytes(b"the journal")
    conf = root / "etc/pesee/station.toml"
    conf.write_text(conf.read_text(encoding="utf-8") + "# edited on site\n", encoding="utf-8")
    kept = {store: store.read_bytes(), conf: conf.read_bytes()}

    out = install(newer, root)
    new_id = source_id(root)
    assert "upgrading" in out and "opt/pesee.previous" in out
    assert new_id != old_id
    assert source_id(root, "opt/pesee.previous") == old_id
    assert all(p.read_bytes() == content for p, content in kept.items())
    # upgrading again with the same source is a no-op, and does not touch the previous one
    before = manifest(root)
    install(newer, root)
    assert manifest(root) == before

    out = install(newer, root, "--rollback")
    assert source_id(root) == old_id
    assert source_id(root, "opt/pesee.previous") == new_id
    assert "try-restart pesee-station.service" in out
    assert all(p.read_bytes() == content for p, content in kept.items())
    install(newer, root, "--rollback")  # and back again
    assert source_id(root) == new_id
    assert source_id(root, "opt/pesee.previous") == old_id


def test_rollback_without_a_previous_version_fails_clearly(source: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    install(source, root)
    before = manifest(root)
    out = install(source, root, "--rollback", ok=False)
    assert "no /opt/pesee.previous to roll back to" in out
    assert manifest(root) == before


def test_ledger_install(source: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    out = install(source, root, "--ledger")
    conf = root / "etc/pesee/ledger.toml"
    assert conf.read_bytes() == (source / "ledger/ledger.example.toml").read_bytes()
    assert mode(conf) == 0o640
    assert mode(root / "etc/pesee/ledger.env") == 0o640
    unit = root / "etc/systemd/system/pesee-ledger.service"
    assert unit.read_bytes() == (source / "systemd/pesee-ledger.service").read_bytes()
    assert mode(unit) == 0o644
    dashboard = root / "etc/systemd/system/pesee-dashboard.service"
    assert dashboard.read_bytes() == (source / "systemd/pesee-dashboard.service").read_bytes()
    assert "enable --now pesee-dashboard" not in out  # the office enables it once set up
    assert "useradd --system pesee-ledger" in out
    # none of the station's pieces
    assert not (root / "etc/systemd/system/pesee-station.service").exists()
    assert not (root / "etc/pesee/station.toml").exists()
    assert not (root / "etc/udev").exists()
    cfg = (root / "opt/pesee/pyvenv.cfg").read_text(encoding="utf-8")
    assert "include-system-site-packages = false" in cfg
    before = manifest(root)
    assert "Nothing to do" in install(source, root, "--ledger")
    assert manifest(root) == before


def test_unknown_argument_is_refused(source: Path, tmp_path: Path) -> None:
    out = install(source, tmp_path / "root", "--ledgr", ok=False)
    assert "unknown argument: --ledgr" in out
