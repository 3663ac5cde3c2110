"""How ``station run`` starts: a plain command line read without click, then the daemon.

The idle daemon's memory is its imports (issue 18, bench/footprint.py), and click is ~1 MiB of
them. So the command line systemd gives (``station --config /etc/pesee/station.toml run``, with
``--lang`` or ``-v`` at most) is read here, in the standard library; any other one — help, a
version, a typo, an option click would refuse — goes to click (station/cli/root.py), which
says what is wrong in the staff's language. Both start the daemon through :func:`start`, and
tests/station/test_cli_start.py checks that every command line read here is read the same by
click's own group.
"""

from __future__ import annotations

import errno
import logging
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn, TypeVar

from common.exits import EX_CONFIG, EX_IOERR, EX_NOINPUT, EX_NOPERM, fail
from common.i18n import LANGUAGES, _, set_language
from common.oserrors import explain

from ..config import ConfigError, config_path
from ..config import load_config as read_config
from ..store import StoreError

__all__ = ["Plain", "config_error", "guarded", "permission_line", "plain_run", "setup", "start"]

T = TypeVar("T")
_VERBOSE = re.compile(r"-v+")


@dataclass(frozen=True)
class Plain:
    """A ``station … run`` command line: the root group's options, as click would read them."""

    config_file: Path | None = None
    lang: str | None = None
    verbose: int = 0


def plain_run(args: Sequence[str]) -> Plain | None:
    """``args`` read as ``[--config PATH] [--lang fr|en] [-v…] run``, each option any number of
    times (the last value counts, as click does), or None for anything else."""
    config: str | None = None
    lang: str | None = None
    verbose = 0
    rest = list(args)
    while rest:
        arg = rest.pop(0)
        if arg == "run":
            if rest:  # an option or an argument after the command: click's to judge
                return None
            # click refuses a directory (dir_okay=False) and a file it may not read
            if (
                config is not None
                and os.path.exists(config)
                and (os.path.isdir(config) or not os.access(config, os.R_OK))
            ):
                return None
            return Plain(None if config is None else Path(config), lang, verbose)
        name, eq, value = arg.partition("=")
        if name in ("--config", "--lang") and not eq:
            if not rest or rest[0].startswith("-"):
                return None
            value = rest.pop(0)
        if name == "--config" and value:
            config = value
        elif name == "--lang" and value in LANGUAGES:
            lang = value
        elif arg == "--verbose":
            verbose += 1
        elif _VERBOSE.fullmatch(arg):
            verbose += len(arg) - 1
        else:
            return None
    return None


def setup(config_file: Path | None, lang: str | None, verbose: int) -> Path:
    """What the root group does before any command: the language, the log level and format;
    returns the config's path (``--config``, else ``$PESEE_CONFIG``, else /etc/pesee)."""
    set_language(lang)
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(
        level=max(level, logging.DEBUG), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return config_path(config_file)


def config_error(exc: ConfigError) -> NoReturn:
    """Say what is wrong with the config, and exit 66 (missing) or 78 (invalid)."""
    lines = [_("Configuration error in {path}:").format(path=exc.path)]
    lines += [f"  - {p}" for p in exc.problems]
    if exc.missing:
        lines.append(_("Create it from station.example.toml, or give another path with --config."))
    fail("\n".join(lines), EX_NOINPUT if exc.missing else EX_CONFIG)


def permission_line(path: Path | str) -> str:
    """One sentence: which permission is missing, and how to get it."""
    return explain(PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path)))


def start(path: Path, lang: str | None) -> None:
    """``station run`` itself: the config read (its language unless ``lang`` was given), the
    daemon built and run until SIGTERM; a clear line and a sysexits code when it cannot."""
    from ..daemon import Daemon, one_malloc_arena  # gpiozero and the devices: only for run

    one_malloc_arena()  # before any thread starts (the daemon's memory, issue 18)
    try:
        config = read_config(path)
    except ConfigError as exc:
        config_error(exc)
    set_language(lang or config.station.language)
    if logging.getLogger().level > logging.INFO:
        logging.getLogger().setLevel(logging.INFO)
    try:
        try:
            daemon = Daemon(config, config_path=path)
        finally:  # the daemon takes its config's language: --lang wins, in its errors too
            if lang:
                set_language(lang)
    except StoreError as exc:
        fail(_("Cannot open the store: {error}").format(error=exc), EX_IOERR)
    except Exception as exc:  # GPIO busy, no pin factory…: say what, exit for systemd to retry
        fail(_("Cannot start the station: {error}").format(error=exc), 1)
    daemon.run()


def guarded(command: Callable[[], T]) -> T:
    """A command run with the errors every ``station`` command turns into one line: a journal
    that fails (74), a file of the daemon's this user may not read (77)."""
    try:
        return command()
    except StoreError as exc:
        fail(_("Store error: {error}").format(error=exc), EX_IOERR)
    except PermissionError as exc:
        fail(permission_line(exc.filename or str(exc)), EX_NOPERM)
