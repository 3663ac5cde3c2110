"""What `station run` loads: the idle daemon's memory is its imports (bench/footprint.py), so
the libraries it does not need at idle stay out of the process. Checked in a fresh interpreter."""

from __future__ import annotations

import json
import platform
import subprocess
import sys

import pytest

# never imported by the daemon: CLI-only (sqlite-utils, which loads numpy when present) or
# needed only by a configuration that asks for it (evdev: a HID scanner)
NOT_LOADED = ("sqlite_utils", "numpy", "evdev")


def _loaded(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return set(json.loads(out.splitlines()[-1]))


@pytest.mark.parametrize("module", NOT_LOADED)
def test_the_daemon_does_not_import(module: str) -> None:
    loaded = _loaded("import station.cli.main\nimport station.daemon")
    assert module not in loaded


def test_free_heap_pages_go_back_after_start_up() -> None:
    """`station run` trims the heap before READY; on glibc the call exists and runs."""
    from station.daemon import release_free_memory

    assert release_free_memory() is (platform.libc_ver()[0] == "glibc")
