"""`station run` without click (station/cli/start.py): the plain command lines it reads are
read the same by click's own group, every other one goes to click, and the real entry point
starts the daemon's path with click never imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from hypothesis import given
from hypothesis import strategies as st

from station.cli import cli
from station.cli.start import Plain, plain_run

ROOT = Path(__file__).resolve().parents[2]


def _click_reads(args: list[str]) -> tuple[Plain, list[str]]:
    """The root group's options and what is left (the command and its arguments), as click
    parses ``args``; raises what click raises for a command line it refuses."""
    ctx = cli.make_context("station", list(args))
    # click 8.2+ keeps the command in _protected_args (protected_args is deprecated)
    protected = ctx._protected_args if hasattr(ctx, "_protected_args") else ctx.protected_args
    left = [*protected, *ctx.args]
    p = ctx.params
    return Plain(p["config_file"], p["lang"], p["verbose"]), left


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run"], Plain()),
        (["--config", "/etc/pesee/station.toml", "run"], Plain(Path("/etc/pesee/station.toml"))),
        (["--config=st.toml", "--lang", "en", "run"], Plain(Path("st.toml"), "en")),
        (["-v", "--lang=fr", "-vv", "--verbose", "run"], Plain(None, "fr", 4)),
        (["--config", "a.toml", "--config", "b.toml", "run"], Plain(Path("b.toml"))),
    ],
)
def test_a_plain_run_is_read_as_click_reads_it(args: list[str], expected: Plain) -> None:
    assert plain_run(args) == expected
    assert _click_reads(args) == (expected, ["run"])


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--help"],
        ["-h", "run"],
        ["--version"],
        ["run", "--help"],
        ["run", "extra"],
        ["status"],
        ["rnu"],
        ["--lang", "de", "run"],
        ["--lang", "FR", "run"],
        ["--lang=", "run"],
        ["--config", "run"],
        ["--config", "-v", "run"],
        ["--config=", "run"],
        ["--verbose=2", "run"],
        ["-vx", "run"],
        ["--", "run"],
        ["--conf", "x.toml", "run"],
        ["run", "--config", "x.toml"],
    ],
)
def test_anything_else_goes_to_click(args: list[str]) -> None:
    assert plain_run(args) is None


def test_a_config_click_would_refuse_goes_to_click(tmp_path: Path) -> None:
    """click's Path(dir_okay=False) refuses a directory and a file this user may not read:
    those command lines go to click, which says so."""
    assert plain_run(["--config", str(tmp_path), "run"]) is None
    with pytest.raises(click.BadParameter):
        _click_reads(["--config", str(tmp_path), "run"])
    secret = tmp_path / "station.toml"
    secret.write_text("", encoding="utf-8")
    secret.chmod(0)
    if os.access(secret, os.R_OK):  # root reads anything: click accepts it too
        assert plain_run(["--config", str(secret), "run"]) == Plain(secret)
        return
    assert plain_run(["--config", str(secret), "run"]) is None
    with pytest.raises(click.BadParameter):
        _click_reads(["--config", str(secret), "run"])


TOKENS = st.sampled_from(
    ["run", "--config", "--config=x.toml", "x.toml", "--lang", "fr", "en", "de", "--lang=en",
     "-v", "-vv", "--verbose", "-h", "--help", "status", "-", "--", "=", "--config="]
)  # fmt: skip


@given(st.lists(TOKENS, max_size=7))
def test_whatever_is_read_without_click_click_reads_the_same(args: list[str]) -> None:
    plain = plain_run(args)
    if plain is not None:
        assert _click_reads(args) == (plain, ["run"])


def _entry_point(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """The console script's own function, ``station.cli.main``, in a fresh interpreter; the
    modules it loaded written at exit."""
    dump = tmp_path / "modules.json"
    code = (
        "import atexit, json, sys\n"
        f"dump = open({str(dump)!r}, 'w')\n"
        "atexit.register(lambda: dump.write(json.dumps(sorted(sys.modules))))\n"
        "from station.cli import main\n"
        f"main({args!r})\n"
    )
    env = {**os.environ, "GPIOZERO_PIN_FACTORY": "mock", "PESEE_LANG": "fr"}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, check=False
    )


def test_the_entry_point_reads_a_plain_run_without_click(tmp_path: Path) -> None:
    """A config with a mistake: `station --config … run` says it in French and exits 78, as
    before; the daemon's path was taken (station.daemon loaded) and click never imported."""
    config = tmp_path / "station.toml"
    config.write_text('[station]\nid = "st-1"\n[scale]\nbaud = "fast"\n', encoding="utf-8")
    done = _entry_point(["--config", str(config), "run"], tmp_path)
    assert done.returncode == 78, done.stderr
    assert f"Erreur de configuration dans {config}" in done.stderr
    assert "Traceback" not in done.stderr
    loaded = set(json.loads((tmp_path / "modules.json").read_text()))
    assert "station.daemon" in loaded
    assert "click" not in loaded
    # a missing config: 66, with the way out
    done = _entry_point(["--config", str(tmp_path / "none.toml"), "run"], tmp_path)
    assert done.returncode == 66, done.stderr
    assert "station.example.toml" in done.stderr


def test_the_entry_point_gives_other_command_lines_to_click(tmp_path: Path) -> None:
    done = _entry_point(["--lang", "de", "run"], tmp_path)
    assert done.returncode == 2  # click's usage error, in French
    assert "--lang" in done.stderr and "Traceback" not in done.stderr
    assert "click" in json.loads((tmp_path / "modules.json").read_text())
    done = _entry_point(["run", "--help"], tmp_path)
    assert done.returncode == 0
    assert "station --config /etc/pesee/station.toml run" in done.stdout
