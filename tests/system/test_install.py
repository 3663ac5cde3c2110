"""install.sh in a throwaway root (DESTDIR): files, modes, idempotence, upgrade, rollback."""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# what install.sh reads from a source tree
SOURCE_PARTS = (
    "pyproject.toml",
    "README.md",
    "common",
    "station",
    "drivers",
    "sync",
    "ledger",
    "systemd",
    "docs",
)

Manifest = dict[str, tuple[str, ...]]
# Debian's Python, as on Raspberry Pi OS: a venv made from it runs for any user
DEBIAN_PYTHON = Path("/usr/bin/python3")
OTHER_USER = "nobody"  # stands for pesee / pesee-ledger: no home, no group of root's


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


def install(source: Path, destdir: Path, *args: str, ok: bool = True, pip: bool = False) -> str:
    """install.sh into ``destdir``; ``pip``: really install the program (from PyPI or pip's
    cache, with Debian's Python as on a Pi), else only the venv's skeleton."""
    env = {**os.environ, "DESTDIR": str(destdir), "PESEE_SKIP_PIP": "1"}
    if pip:
        del env["PESEE_SKIP_PIP"]
        env["PYTHON"] = str(DEBIAN_PYTHON)
    done = subprocess.run(
        ["bash", str(source / "systemd/install.sh"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600 if pip else 120,
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
        # `station` on the PATH, for every user (sudo -u pesee station … included)
        "usr/local/bin/station": (0o755, source / "systemd/pesee-cli"),
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
    for command in ("useradd --system pesee", "systemctl enable pesee-station", "udevadm control"):
        assert f"skipped (DESTDIR is set): {command}" in out or command in out
    assert "skipped (PESEE_SKIP_PIP=1)" in out
    # never started without a config check that passes
    assert "pesee-station.service enabled, not started" in out
    assert "systemctl start" not in out and "enable --now" not in out
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


def test_a_change_in_common_is_an_upgrade(source: Path, tmp_path: Path) -> None:
    """common/ is installed like the other packages: a release changing only it upgrades."""
    root = tmp_path / "root"
    install(source, root)
    changed = snapshot(tmp_path / "src" / "pesee")
    units = changed / "common/units.py"
    units.write_text(units.read_text(encoding="utf-8") + "# a fix\n", encoding="utf-8")
    assert "upgrading" in install(changed, root)


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
    # the example registry for `ledger registry import`, beside the other examples
    registry = root / "opt/pesee/share/pesee/registry.example.toml"
    assert registry.read_bytes() == (source / "ledger/registry.example.toml").read_bytes()
    assert mode(root / "etc/pesee/ledger.env") == 0o640
    unit = root / "etc/systemd/system/pesee-ledger.service"
    assert unit.read_bytes() == (source / "systemd/pesee-ledger.service").read_bytes()
    assert mode(unit) == 0o644
    assert (root / "usr/local/bin/ledger").read_bytes() == (
        source / "systemd/pesee-cli"
    ).read_bytes()
    assert not (root / "usr/local/bin/station").exists()
    # the [ledger] extra: PostgreSQL, charts, the dashboard's sessions
    assert f"pip install {source}[ledger]" in out
    assert "extras ledger" in source_id(root)
    dashboard = root / "etc/systemd/system/pesee-dashboard.service"
    assert dashboard.read_bytes() == (source / "systemd/pesee-dashboard.service").read_bytes()
    # the office enables it once set up (the "Next:" steps say how)
    ran = [line for line in out.splitlines() if line.lstrip().startswith(("+ ", "skipped"))]
    assert not [line for line in ran if "enable" in line and "pesee-dashboard" in line], ran
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


# --- the installed commands, run as another user (install.sh with a real pip) -------------------


def _can_run_as_another_user() -> str:
    """Why the installed program cannot be tried as another user here ("" when it can)."""
    if os.geteuid() != 0:
        return "needs root (to run the installed commands as another user)"
    if shutil.which("runuser") is None:
        return "runuser (util-linux) is missing"
    probe = (
        subprocess.run(
            [
                str(DEBIAN_PYTHON),
                "-c",
                "import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))",
            ],
            capture_output=True,
            check=False,
        )
        if DEBIAN_PYTHON.exists()
        else None
    )
    if probe is None or probe.returncode != 0:
        return "Debian's python3 (3.11+, with python3-venv) is missing"
    return ""


@pytest.fixture
def world() -> Iterator[Path]:
    """A directory another user can reach (pytest's tmp_path is root's own, mode 0700)."""
    reason = _can_run_as_another_user()
    if reason:
        pytest.skip(reason)
    path = Path(tempfile.mkdtemp(prefix="pesee-install-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def as_other_user(
    *command: str | Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``command`` as OTHER_USER, from / (a directory it cannot write), PATH without root's."""
    base = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", **(env or {})}
    return subprocess.run(
        ["runuser", "-u", OTHER_USER, "--", "env", "-i", *(f"{k}={v}" for k, v in base.items())]
        + [str(c) for c in command],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd="/",
        check=False,
    )


def give_to_other_user(*paths: Path) -> None:
    """What install.sh does on a real system: the service's group may read its config."""
    user = pwd.getpwnam(OTHER_USER)
    for path in paths:
        os.chown(path, 0 if path.is_file() else user.pw_uid, user.pw_gid)


def test_station_install_then_its_commands_as_the_service_user(source: Path, world: Path) -> None:
    """README "Install on a Raspberry Pi", in order: install.sh, config check, name it, start."""
    root = world / "root"
    out = install(source, root, pip=True)
    # 1. never started with the example: the check's refusal is shown, with what to do next
    assert "pesee-station.service enabled, not started" in out, out
    assert '"ressourcerie-nord-1"' in out and "sudo systemctl start pesee-station" in out
    assert "skipped (DESTDIR is set): systemctl start" not in out
    # HID support is an extra: a station with a serial scanner installed without a compiler
    site = next((root / "opt/pesee/lib").glob("python3*/site-packages"))
    assert not (site / "evdev").exists()
    # what the counter screen reads at run time is installed with it (not only in a checkout)
    assert (site / "station/screen/templates/screen.html").is_file()
    assert (site / "station/screen/static/screen.js").is_file()

    station = root / "usr/local/bin/station"
    conf = root / "etc/pesee/station.toml"
    data, run = world / "data", world / "run"
    data.mkdir()
    run.mkdir()
    give_to_other_user(conf, data, run)
    done = as_other_user(station, "--version")
    assert done.returncode == 0 and "0." in done.stdout, done.stderr
    # 2. `station config check` as the service's user: the placeholder id refused, in French
    done = as_other_user(station, "--config", conf, "config", "check")
    assert done.returncode == 78, done.stdout + done.stderr
    assert "Erreur de configuration" in done.stderr and "ressourcerie-nord-1" in done.stderr
    assert "Traceback" not in done.stderr
    # 3. named (README step 4): the check passes for that user, and install.sh would start it
    text = conf.read_text(encoding="utf-8").replace("ressourcerie-nord-1", "epicerie-centre-1")
    text = text.replace('"/var/lib/pesee"', f'"{data}"').replace('"/run/pesee"', f'"{run}"')
    conf.write_text(text, encoding="utf-8")
    done = as_other_user(station, "--config", conf, "config", "check")
    assert done.returncode == 0, done.stderr
    assert "epicerie-centre-1" in done.stdout
    # the broker's password in station.env, as the service gets it: install.sh's check reads it
    conf.write_text(
        text.replace(
            '# password = "env:PESEE_MQTT_PASSWORD"', 'password = "env:PESEE_MQTT_PASSWORD"'
        ),
        encoding="utf-8",
    )
    out = install(source, root, pip=True)
    assert "enabled, not started" in out and "PESEE_MQTT_PASSWORD" in out
    secrets = root / "etc/pesee/station.env"
    secrets.write_text(secrets.read_text(encoding="utf-8") + "PESEE_MQTT_PASSWORD=s3cret\n")
    out = install(source, root, pip=True)
    assert "station config check: OK" in out
    assert "skipped (DESTDIR is set): systemctl start pesee-station.service" in out
    # lgpio's pipe (gpiozero #1106): the command gives each user a directory of their own, so
    # `sudo -u pesee station panel test` works from a directory pesee cannot write
    probe = root / "usr/local/bin/python"
    probe.symlink_to("station")  # the same wrapper in front of the venv's python
    done = as_other_user(
        probe, "-c", "import os; d = os.environ['LG_WD']; print(d, os.access(d, os.W_OK))"
    )
    assert done.returncode == 0, done.stderr
    lg_wd, writable = done.stdout.split()
    assert writable == "True" and Path(lg_wd).stat().st_uid == pwd.getpwnam(OTHER_USER).pw_uid


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_ledger_install_then_report_and_dashboard_as_the_ledger_user(
    source: Path, world: Path, pg_url: str
) -> None:
    """`install.sh --ledger` gives what `ledger report`, `ledger serve` and PostgreSQL need."""
    from ledger.web.auth import hash_password

    root = world / "root"
    out = install(source, root, "--ledger", pip=True)
    assert "ledger config check: OK" in out
    ledger = root / "usr/local/bin/ledger"
    home = world / "home"  # the service user's home is its state directory
    home.mkdir()
    port = _free_port()
    conf = world / "ledger.toml"
    conf.write_text(
        f"""[ledger]
database = "{home / "ledger.db"}"
[dashboard]
port = {port}
secret_key = "env:PESEE_DASHBOARD_SECRET"
[dashboard.users]
alice = "{hash_password("correct horse battery")}"
""",
        encoding="utf-8",
    )
    give_to_other_user(conf, home)
    env = {"HOME": str(home), "PESEE_DASHBOARD_SECRET": "0123456789abcdef0123"}
    # the [ledger] extra is there and importable by that user: charts, PostgreSQL, sessions
    python = root / "opt/pesee/bin/python"
    done = as_other_user(
        python,
        "-c",
        "import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot, psycopg, "
        "itsdangerous, multipart; print('ok')",
        env=env,
    )
    assert done.stdout.strip() == "ok", done.stderr
    for args in (["db", "migrate"], ["report", "--year", "2026"], ["stations"]):
        done = as_other_user(ledger, "--config", conf, *args, env=env)
        assert done.returncode == 0, f"ledger {' '.join(args)}: {done.stderr}"
        assert "Traceback" not in done.stderr
    # a PostgreSQL ledger (psycopg from the extra), as that user
    pg_conf = world / "ledger-pg.toml"
    pg_conf.write_text(f'[ledger]\ndatabase = "{pg_url}"\n', encoding="utf-8")
    give_to_other_user(pg_conf)
    for args in (["db", "migrate"], ["report", "--year", "2026"]):
        done = as_other_user(ledger, "--config", pg_conf, *args, env=env)
        assert done.returncode == 0, f"ledger {' '.join(args)} on PostgreSQL: {done.stderr}"
    # the dashboard answers its login page, then stops on SIGTERM
    serve = subprocess.Popen(
        ["runuser", "-u", OTHER_USER, "--", "env", "-i", "PATH=/usr/local/bin:/usr/bin:/bin"]
        + [f"{k}={v}" for k, v in env.items()]
        + [str(ledger), "--config", str(conf), "serve"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd="/",
    )
    try:
        page = ""
        for _ in range(600):  # bounded: 60 s at most, done as soon as it answers
            if serve.poll() is not None:
                break
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
                    sock.sendall(b"GET /login HTTP/1.0\r\nHost: localhost\r\n\r\n")
                    page = sock.makefile("rb").read().decode("utf-8", "replace")
                break
            except OSError:
                time.sleep(0.1)
        assert " 200 " in page.split("\r\n", 1)[0], page[:500]
    finally:
        serve.terminate()
        output, _ = serve.communicate(timeout=30)
    assert "Traceback" not in output, output


def test_print_adds_the_print_extra_to_either_role(source: Path, tmp_path: Path) -> None:
    # counter sheets, cards and tickets need reportlab and python-escpos in /opt/pesee
    root = tmp_path / "root"
    out = install(source, root, "--print")
    assert f"pip install {source}[print]" in out
    assert "extras print" in source_id(root)
    out = install(source, root, "--ledger")  # kept when the ledger comes into the same venv
    assert f"{source}[ledger,print]" in out
