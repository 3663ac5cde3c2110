"""What every ``ledger`` command shares: its config, its store, one-line refusals, dates, cells."""

from __future__ import annotations

import shutil
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, NoReturn

import click

from common.exits import EX_CONFIG, EX_IOERR, EX_NOINPUT, EX_USAGE, fail
from common.i18n import _, set_language
from common.settings import ConfigError
from common.text import visible

from ..config import LedgerConfig, load_ledger_config, mqtt_password_problem
from ..redact import error_line
from ..store import SqlLedgerStore, open_store

__all__ = [
    "FIRST_YEAR",
    "LAST_YEAR",
    "MISSING",
    "check_year",
    "day",
    "load_config",
    "open_ledger",
    "shown",
    "usage",
    "when",
]

# dates the reports accept (the dashboard's too): a typo such as 0201 or 20266 is caught here
FIRST_YEAR, LAST_YEAR = 2000, 2100
# a value the database does not hold (NULL), as a table shows it
MISSING = "–"


def load_config(ctx: click.Context, *, mqtt: bool = False) -> LedgerConfig:
    """The config of ``--config``; its language becomes the messages' unless ``--lang`` gave
    one. ``mqtt``: the command talks to the broker, so ``mqtt.password`` must be given; the
    others start without it (an office reading its reports holds no broker password)."""
    path = ctx.obj["config_path"]
    try:
        config = load_ledger_config(path, mqtt_password=False)
    except ConfigError as exc:
        lines = [_("Configuration error in {path}:").format(path=exc.path)]
        lines += [f"  - {p}" for p in exc.problems]
        fail("\n".join(lines), EX_NOINPUT if exc.missing else EX_CONFIG)
    if ctx.obj.get("lang") is None:
        set_language(config.ledger.language)
    if mqtt and config.unset_mqtt_password is not None:
        fail(
            _("Configuration error in {path}: {problem}").format(
                path=path or _("the ledger config"),
                problem=mqtt_password_problem(config.unset_mqtt_password),
            ),
            EX_CONFIG,
        )
    return config


def open_ledger(config: LedgerConfig) -> SqlLedgerStore:
    """The ledger's database, checked against the config's pseudonymisation (one line if not)."""
    try:
        store = open_store(config.ledger.database, pseudonym_key=config.ledger.pseudonym_secret)
        store.require_writable()
        return store
    except Exception as exc:  # sqlite3/psycopg errors, OSError, a pseudonym mismatch
        fail(
            _("Cannot open the ledger database: {error}").format(error=error_line(exc)),
            EX_IOERR,
        )


def usage(message: str) -> NoReturn:
    """A bad option value: one line, exit 2 (as click's own usage errors)."""
    fail(_("Error: {message}").format(message=message), EX_USAGE)


def check_year(flag: str, year: int) -> None:
    """Refuse a year outside the years the reports accept (a typo such as 0201 or 20266)."""
    if not FIRST_YEAR <= year <= LAST_YEAR:
        usage(
            _("{flag}: year {year} is out of range (years {first} to {last} are accepted)").format(
                flag=flag, year=year, first=FIRST_YEAR, last=LAST_YEAR
            )
        )


def day(flag: str, value: str | None) -> date | None:
    """An option's date, checked here: out of range, the period's arithmetic would fail."""
    if value is None:
        return None
    try:
        found = date.fromisoformat(value.strip())
    except ValueError:
        usage(_("{flag}: {v!r} is not a date like 2026-01-31").format(flag=flag, v=value))
    check_year(flag, found.year)
    return found


def table_width(output: Path | None) -> int:
    """A table's width: the terminal's (80 to 120) when one shows it, else 100, so a file or a
    pipe gets the same text wherever it is made."""
    if output is not None or not sys.stdout.isatty():
        return 100
    return min(max(shutil.get_terminal_size((100, 24)).columns, 80), 120)


def shown(value: Any, width: int | None = None) -> str:
    """A table cell: a missing value (NULL) as "–", text cut to ``width`` characters."""
    if value is None or value == "":
        return MISSING
    text = visible(str(value))  # a station's text is shown, never run by the terminal
    return text if width is None or len(text) <= width else text[:width] + "…"


def when(stamp: str | None) -> str:
    """A stored time (UTC, ISO 8601) as people read it: this machine's local time to the
    minute, ``2026-03-02 11:00``; "–" when there is none."""
    if not stamp:
        return MISSING
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        return stamp
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone().strftime("%Y-%m-%d %H:%M")
