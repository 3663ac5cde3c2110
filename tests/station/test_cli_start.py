"""`station run` without click (station/cli/start.py): the plain command lines it reads are
read the same by click's own group, every other one goes to click, and the real entry point
starts the daemon's path with click never imported."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

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


def _entry_point(
    args: list[str], tmp_path: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """The console script's own function, ``station.cli.main``, in a fresh interpreter; at
    exit it writes what it loaded, its log level and its messages' language (``_at_exit``)."""
    dump = tmp_path / "at-exit.json"
    code = (
        "import atexit, json, logging, sys\n"
        f"dump = open({str(dump)!r}, 'w')\n"
        "def said():\n"
        "    from common.i18n import language\n"
        "    dump.write(json.dumps({'modules': sorted(sys.modules), "
        "'level': logging.getLogger().level, 'language': language()}))\n"
        "atexit.register(said)\n"
        "from station.cli import main\n"
        f"main({args!r})\n"
    )
    env = {**os.environ, "GPIOZERO_PIN_FACTORY": "mock", "PESEE_LANG": "fr", **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env,
    )  # fmt: skip


def _ran(args: list[str], tmp_path: Path, env: dict[str, str] | None = None) -> tuple[int, str]:
    proc = _entry_point(args, tmp_path, env)
    _out, err = proc.communicate(timeout=60)
    return proc.returncode, err


def _at_exit(tmp_path: Path) -> dict[str, Any]:
    said: dict[str, Any] = json.loads((tmp_path / "at-exit.json").read_text())
    return said


def _config(tmp_path: Path, *, data_dir: Path, language: str = "fr", extra: str = "") -> Path:
    """The example config with its own id and journal place (and ``extra`` lines at the end)."""
    text = (ROOT / "station" / "station.example.toml").read_text(encoding="utf-8")
    text = text.replace('id = "ressourcerie-nord-1"', 'id = "st-start"', 1)
    text = text.replace('data_dir = "/var/lib/pesee"', f'data_dir = "{data_dir}"', 1)
    text = text.replace('language = "fr"', f'language = "{language}"', 1)
    path = tmp_path / "station.toml"
    path.write_text(text + extra, encoding="utf-8")
    return path


def test_the_entry_point_reads_a_plain_run_without_click(tmp_path: Path) -> None:
    """A config with a mistake: `station --config … run` says it in French and exits 78, as
    before; the daemon's path was taken (station.daemon loaded) and click never imported."""
    config = _config(tmp_path, data_dir=tmp_path / "data", extra="[scale]\nbaud = 'fast'\n")
    code, err = _ran(["--config", str(config), "run"], tmp_path)
    assert code == 78, err
    assert f"Erreur de configuration dans {config}" in err
    assert "Traceback" not in err
    loaded = set(_at_exit(tmp_path)["modules"])
    assert "station.daemon" in loaded
    assert "click" not in loaded
    # a missing config: 66, with the way out
    code, err = _ran(["--config", str(tmp_path / "none.toml"), "run"], tmp_path)
    assert code == 66, err
    assert "station.example.toml" in err


def test_a_plain_run_takes_the_config_from_the_environment_and_its_log_level(
    tmp_path: Path,
) -> None:
    """No --config: $PESEE_CONFIG, as click's path read it; -v/-vv as the root group sets them."""
    config = _config(tmp_path, data_dir=tmp_path / "data", extra="[scale]\nbaud = 'fast'\n")
    for args, level in ((["run"], logging.WARNING), (["-vv", "run"], logging.DEBUG)):
        code, err = _ran(args, tmp_path, {"PESEE_CONFIG": str(config)})
        assert code == 78, err
        assert str(config) in err
        assert _at_exit(tmp_path)["level"] == level


def test_a_station_that_cannot_start_says_why_in_the_language_asked(tmp_path: Path) -> None:
    """--lang en over a French config: its errors in English, with their codes — a journal
    that is not one (74), a data directory that is a file (1)."""
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "station.db").write_bytes(b"not a journal " * 64)
    config = _config(tmp_path, data_dir=garbage, language="fr")
    code, err = _ran(["--lang", "en", "--config", str(config), "run"], tmp_path)
    journal = garbage / "station.db"
    assert code == 74, err
    assert err.strip() == f"Cannot open the store: {journal}: file is not a database"
    assert _at_exit(tmp_path)["language"] == "en"
    a_file = tmp_path / "a-file"
    a_file.write_text("", encoding="utf-8")
    config = _config(tmp_path, data_dir=a_file, language="fr")
    code, err = _ran(["--lang", "en", "--config", str(config), "run"], tmp_path)
    assert code == 1, err
    assert err.startswith("Cannot start the station: ") and "Traceback" not in err
    # without --lang, the config's language
    code, err = _ran(["--config", str(config), "run"], tmp_path, {"PESEE_LANG": "en"})
    assert code == 1 and err.startswith("Impossible de démarrer la station"), err


def test_ctrl_c_while_a_plain_run_starts_is_said_as_click_says_it(tmp_path: Path) -> None:
    """Ctrl-C before the daemon takes SIGINT (here: while it reads its config from a pipe that
    gives nothing yet): a blank line, click's "Aborted!" in French, exit 1 — no traceback."""
    fifo = tmp_path / "station.toml"
    os.mkfifo(fifo)
    proc = _entry_point(["--config", str(fifo), "run"], tmp_path)
    try:
        writer = -1
        deadline = time.monotonic() + 30
        while writer < 0 and time.monotonic() < deadline and proc.poll() is None:
            try:  # succeeds once the station opened the pipe to read its config
                writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                time.sleep(0.01)
        assert writer >= 0, proc.communicate(timeout=10)
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
        os.close(writer)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1, err
    assert err == "\nAbandon !\n"
    assert "click" not in _at_exit(tmp_path)["modules"]


def test_the_entry_point_gives_other_command_lines_to_click(tmp_path: Path) -> None:
    code, err = _ran(["--lang", "de", "run"], tmp_path)
    assert code == 2  # click's usage error, in French
    assert "--lang" in err and "Traceback" not in err
    assert "click" in _at_exit(tmp_path)["modules"]
    proc = _entry_point(["run", "--help"], tmp_path)
    out, _err = proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert "station --config /etc/pesee/station.toml run" in out


def test_station_cli_main_stays_the_entry_point_after_the_click_group_is_imported() -> None:
    """`from station.cli import cli` (tests, tools) must not turn `station.cli.main` into a
    module: the click group lives in station/cli/root.py."""
    import station.cli
    from station.cli import cli as group

    assert isinstance(group, click.Group)
    assert callable(station.cli.main) and station.cli.main.__module__ == "station.cli"
