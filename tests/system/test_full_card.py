"""A station started on a really full card runs and holds the red light (issue 13), on a real
full file system: a 1 MiB tmpfs in a private mount namespace, filled to the last byte."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from station.status_file import read_status

_SCRIPT = """
set -e
mount -t tmpfs -o size=1m tmpfs "$DATA"
"$PY" -c "$MAKE_JOURNAL" "$DATA/station.db" "$HOW"
dd if=/dev/zero of="$DATA/filler" bs=4096 2>/dev/null || true
exec "$PY" -m station --config "$CONFIG" run
"""


# the journal as the last daemon left it: killed (or the power cut), its WAL beside it; or
# stopped cleanly with room to spare, the WAL folded in and removed (SQLite must then create
# its -shm file again to open the journal, which a full card has no room for)
_MAKE_JOURNAL = """
import os, sys
from station.store import Store
store = Store(sys.argv[1], "ressourcerie-nord-1")
store.append("weighing", net_mg=1)
if sys.argv[2] == "killed":
    os._exit(0)
store.close()
"""


def _namespaces_work() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = ["unshare", "--user", "--map-root-user", "--mount", "true"]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


@pytest.mark.skipif(not _namespaces_work(), reason="needs unshare (user and mount namespaces)")
@pytest.mark.parametrize("how", ["killed", "stopped"])
def test_a_station_started_on_a_full_card_runs_with_the_red_light(
    config_file: Path, tmp_path: Path, how: str
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    config_file.write_text(config_file.read_text().replace('language = "fr"', 'language = "en"'))
    env = {
        **os.environ,
        "GPIOZERO_PIN_FACTORY": "mock",
        "PESEE_LANG": "en",
        "DATA": str(data),
        "PY": sys.executable,
        "CONFIG": str(config_file),
        "MAKE_JOURNAL": _MAKE_JOURNAL,
        "HOW": how,
    }
    proc = subprocess.Popen(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", _SCRIPT],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    status_path = tmp_path / "run" / "status.json"
    try:
        deadline = time.monotonic() + 30
        status: dict[str, object] = {}
        while time.monotonic() < deadline and not status.get("store_fault"):
            assert proc.poll() is None, proc.communicate()
            status = read_status(status_path) or {}
            time.sleep(0.1)
        assert status.get("store_fault") is True, status
        assert proc.poll() is None  # still running: systemd has nothing to restart
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert "less than 50 MB free on the card: refusing new records" in err
    if how == "killed":
        assert "cannot write the store: database or disk is full" in err  # the session count
    else:
        assert "cannot open the journal on a full card" in err
    # the tmpfs went with its namespace: nothing of it leaked into the real directory
    assert not (data / "station.db").exists()


def test_a_station_low_on_space_holds_the_red_light_from_the_start(tmp_path: Path) -> None:
    """Before any action: the red light is steady as soon as the loop runs (statvfs)."""
    from station.sim import SimulatedCounter

    free_mb = shutil.disk_usage(tmp_path).free // (1024 * 1024)
    over = {"station": {"language": "en", "min_free_mb": min(free_mb + 1024, 100_000)}}
    with SimulatedCounter(tmp_path, over) as c:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not c.station.snapshot.store_fault:
            time.sleep(0.02)
        assert c.station.snapshot.store_fault
        assert c.pin("red").state  # steady, with no staff action yet
