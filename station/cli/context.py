"""What every ``station`` command shares: the config, the journal, masses, the drivers' log."""

from __future__ import annotations

import logging
import os
import pwd
from pathlib import Path
from typing import Any

import click

from common.exits import EX_IOERR, EX_NOPERM, EX_TEMPFAIL, fail
from common.i18n import _, set_language

from ..config import Config, ConfigError, config_path
from ..config import load_config as read_config
from ..store import Store, StoreError
from .live import live_daemon
from .start import config_error, permission_line

__all__ = [
    "config_error",
    "load_config",
    "open_store",
    "optional_config",
    "permission_line",
    "quiet_drivers",
    "readonly_line",
    "refuse_if_daemon",
    "require_readable",
    "root_obj",
    "unreadable",
]


def root_obj(ctx: click.Context) -> dict[str, Any]:
    """The root group's settings (``config_path``, ``lang``), with their defaults when a
    command runs without the root group (tests, other entry points)."""
    ctx.ensure_object(dict)
    obj: dict[str, Any] = ctx.obj
    obj.setdefault("config_path", config_path(None))
    obj.setdefault("lang", None)
    return obj


def load_config(ctx: click.Context) -> Config:
    """The station config (``--config``), in force for the command; exits when it is wrong.
    Its language becomes the messages' language unless ``--lang`` was given."""
    obj = root_obj(ctx)
    try:
        config = read_config(obj["config_path"])
    except ConfigError as exc:
        config_error(exc)
    if obj.get("lang") is None:
        set_language(config.station.language)
    return config


def optional_config(ctx: click.Context) -> Config | None:
    """The station config when it loads, else None (the command does not need it)."""
    obj = root_obj(ctx)
    try:
        config = read_config(obj["config_path"])
    except ConfigError:
        return None
    if obj.get("lang") is None:
        set_language(config.station.language)
    return config


def _user() -> str:
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


def unreadable(path: Path) -> Path | None:
    """The first directory on the way to ``path`` this user may not enter, or ``path`` itself
    when it exists and may not be read; None when nothing is in the way (a missing file is not
    a permission problem)."""
    path = Path(os.path.abspath(path))
    for directory in reversed(path.parents):
        try:
            os.stat(directory)
        except FileNotFoundError:
            return None
        except PermissionError:
            return directory
        if not os.access(directory, os.X_OK):
            return directory
    try:
        os.stat(path)
    except FileNotFoundError:
        return None
    except PermissionError:
        return path.parent
    return None if os.access(path, os.R_OK) else path


def readonly_line(journal: Path, error: Exception) -> str | None:
    """The sentence for a journal this user may read but not open (a group member while the
    daemon is stopped: opening a WAL journal then creates its ``-shm`` file beside it)."""
    if "readonly" not in str(error) or os.access(journal.parent, os.W_OK):
        return None
    return _(
        "{path}: the user {user} may read the journal only while the station runs (SQLite must "
        "write beside it otherwise); run the command as the station's user: sudo -u pesee "
        "station …"
    ).format(user=_user(), path=journal)


def require_readable(path: Path) -> None:
    """Exit 77 with :func:`permission_line` when this user may not read ``path``."""
    blocked = unreadable(path)
    if blocked is not None:
        fail(permission_line(blocked), EX_NOPERM)


def open_store(config: Config, path: Path | None = None) -> Store:
    """The station's journal (``path``: another file than the config's), never created.
    Exits 77 when this user may not read it, 74 when it cannot be opened."""
    where = path or config.store_path
    require_readable(where)
    try:
        return Store(where, config.station.id, create=False)
    except PermissionError as exc:
        fail(permission_line(exc.filename or where), EX_NOPERM)
    except StoreError as exc:
        readonly = readonly_line(where, exc)
        if readonly is not None:
            fail(readonly, EX_NOPERM)
        fail(_("Cannot open the store: {error}").format(error=exc), EX_IOERR)


def quiet_drivers() -> None:
    """The drivers' reconnect warnings would repeat what these tools print (unless -v)."""
    if logging.getLogger().level >= logging.WARNING:
        logging.getLogger("drivers").setLevel(logging.ERROR)


def refuse_if_daemon(config: Config, what: str, force: bool) -> None:
    """Exit 75 when the daemon is running and uses ``what`` (the scanner, the panel…)."""
    live = live_daemon(config)
    if live is not None and not force:
        fail(
            _(
                "The station daemon (pid {pid}) is using the {what}: stop it first "
                "(sudo systemctl stop pesee-station), or give --force."
            ).format(pid=live.get("pid"), what=what),
            EX_TEMPFAIL,
        )
