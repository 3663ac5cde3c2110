"""Clock status of a Pi without RTC: is the system clock synchronised, and which boot is this."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import time
from pathlib import Path

__all__ = ["ClockStatus", "boot_id"]

TIMESYNC_FLAG = Path("/run/systemd/timesync/synchronized")
# a file whose presence alone means synchronised (no kernel query): for another time daemon
# that touches its own flag, a container whose kernel speaks for the host, and tests
ENV_FLAG = "PESEE_TIMESYNC_FLAG"
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
_TIME_ERROR = 5
_MAX_ERROR_US = 16_000_000  # the kernel declares the clock unsynchronised past 16 s


class _Timex(ctypes.Structure):
    # leading fields of glibc's struct timex; the rest is padding we never read
    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("_rest", ctypes.c_byte * 256),
    ]


def _load_libc() -> ctypes.CDLL | None:
    try:  # once: find_library runs ldconfig in a subprocess
        return ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    except OSError:
        return None


_LIBC = _load_libc()


def _kernel_synced() -> bool | None:
    if _LIBC is None:
        return None
    try:
        tx = _Timex()  # modes = 0: a read-only query
        state = _LIBC.adjtimex(ctypes.byref(tx))
    except (OSError, AttributeError):
        return None
    if state < 0:  # EPERM under a seccomp filter such as ProtectClock=yes
        return None
    return bool(state != _TIME_ERROR and tx.maxerror < _MAX_ERROR_US)


def boot_id() -> str:
    """The kernel's id of this boot (records of one boot share a monotonic clock)."""
    try:
        return BOOT_ID.read_text().strip()
    except OSError:
        return ""


class ClockStatus:
    """Caches the synchronised flag for a few seconds: it is read on every record."""

    def __init__(self, ttl: float = 5.0, flag: Path = TIMESYNC_FLAG) -> None:
        self.ttl = ttl
        override = os.environ.get(ENV_FLAG)
        self.flag = Path(override) if override else flag
        self._ask_kernel = not override
        self._value = False
        self._checked = -1e9

    def synced(self) -> bool:
        now = time.monotonic()
        if now - self._checked > self.ttl:
            self._checked = now
            if os.path.exists(self.flag):
                self._value = True
            else:
                self._value = self._ask_kernel and bool(_kernel_synced())
        return self._value
