"""What `station run` loads: the idle daemon's memory is its imports (bench/footprint.py), so
the libraries it does not need at idle stay out of the process. Checked in a fresh interpreter."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from pathlib import Path

import pytest

# never imported by the daemon: CLI-only (sqlite-utils, which loads numpy when present; click,
# which reads every command line but a plain `run`), the ledger's (pydantic: the station's
# config is validated by common.schema, ~10 MiB less), or needed only by a configuration that
# asks for it (evdev: a HID scanner)
NOT_LOADED = ("sqlite_utils", "numpy", "evdev", "pydantic", "pydantic_core", "click")
# what `station --config … run` does before the daemon starts (station/cli/__init__.py)
RUN = """
import station.cli
from station.cli.start import plain_run
assert plain_run(["--config", "/etc/pesee/station.toml", "run"]) is not None
import station.daemon
"""
# the same command resolved by click, as for any command line that is not a plain `run`
CLICK_RUN = """
import importlib, click
main = importlib.import_module("station.cli.root")
assert main.cli.get_command(click.Context(main.cli), "run") is not None
import station.daemon
"""


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
    loaded = _loaded(RUN)
    assert module not in loaded


def test_the_daemon_imports_no_scale_codec_before_its_config_names_one() -> None:
    """The registry imports a codec when its name is looked up: `station run` loads the one
    its config names when it builds the scale, not the 14 codec modules (~0.4 MiB). The
    configurable ASCII codec is the config's own (``[scale.ascii]``)."""
    from drivers.scale import CODECS

    codecs = {f"drivers.scale.{module}" for module, _attribute in CODECS.values()}
    assert codecs & _loaded(RUN) == {"drivers.scale.ascii"}


def test_run_loads_no_other_command() -> None:
    """The other commands' modules are imported when asked for, never for `run`."""
    from station.cli.root import COMMANDS

    others = {f"station.cli.{module}" for module, _attribute in COMMANDS.values()}
    assert len(others) == 12
    assert not others & _loaded(RUN)
    assert not others & _loaded(CLICK_RUN)
    assert others <= _loaded(CLICK_RUN.replace('"run"', '"doctor"') + "\n" + _EVERY)


# every command is listed before any is loaded, and looking through them loads each (tests
# that walk `cli.commands` see them all)
_EVERY = """
assert set(main.cli.commands) == {"run", *main.COMMANDS}
for name in main.cli.list_commands(click.Context(main.cli)):
    assert main.cli.get_command(click.Context(main.cli), name) is not None, name
assert all(isinstance(c, click.Command) for c in dict(main.cli.commands.items()).values())
"""


def test_a_broken_command_does_not_stop_run(tmp_path: Path) -> None:
    """A command module that fails to import (a bad upgrade, a missing optional library)
    breaks that command only: `station run` still parses and reaches its own code."""
    from station.cli.root import COMMANDS

    blocked = [f"station.cli.{module}" for module, _attribute in COMMANDS.values()]
    code = (
        "import sys\n"
        f"sys.modules.update(dict.fromkeys({blocked!r}))\n"  # None: importing them raises
        "from station.cli.root import cli\n"
        f"cli.main(['--config', {str(tmp_path / 'x.toml')!r}, 'run', '--help'])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "station --config /etc/pesee/station.toml run" in done.stdout
    # the same command line for a blocked command fails (the import error is not hidden)
    broken = code.replace("'run'", "'doctor'")
    done = subprocess.run(
        [sys.executable, "-c", broken], capture_output=True, text=True, check=False
    )
    assert done.returncode != 0 and "station.cli.doctor" in done.stderr


def test_station_run_asks_glibc_for_one_malloc_arena() -> None:
    """`station run` sets it before any thread starts; on glibc the call exists and succeeds.
    In a child process: the setting is the whole process's."""
    code = "from station.daemon import one_malloc_arena\nprint(one_malloc_arena())"
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    assert out.strip() == str(platform.libc_ver()[0] == "glibc")


def test_free_heap_pages_go_back_after_start_up() -> None:
    """`station run` trims the heap before READY; on glibc the call exists and runs."""
    from station.daemon import release_free_memory

    assert release_free_memory() is (platform.libc_ver()[0] == "glibc")
