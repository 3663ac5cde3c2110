"""CLI exit codes (sysexits(3): systemd and scripts tell a bad config from a crash) and fail()."""

from __future__ import annotations

import sys
from typing import NoReturn

__all__ = [
    "EX_CANTCREAT",
    "EX_CONFIG",
    "EX_DATAERR",
    "EX_FAIL",
    "EX_IOERR",
    "EX_NOINPUT",
    "EX_NOPERM",
    "EX_OK",
    "EX_SOFTWARE",
    "EX_TEMPFAIL",
    "EX_UNAVAILABLE",
    "EX_UNKNOWN",
    "EX_USAGE",
    "fail",
]

EX_OK = 0
EX_FAIL = 1  # a check found a problem (doctor, db verify): the command itself worked
EX_USAGE = 2  # click's own code for a wrong option
EX_UNKNOWN = 3  # sent, but whether it was done is unknown (manual entry): no sysexits code fits
EX_DATAERR = 65
EX_NOINPUT = 66
EX_UNAVAILABLE = 69
EX_SOFTWARE = 70
EX_CANTCREAT = 73
EX_IOERR = 74
EX_TEMPFAIL = 75  # try again later (the daemon holds the port, a busy database)
EX_NOPERM = 77
EX_CONFIG = 78


def fail(message: str, code: int = EX_FAIL) -> NoReturn:
    """Print one line for a person on stderr and exit with ``code``: never a traceback."""
    print(message, file=sys.stderr, flush=True)
    raise SystemExit(code)
