"""USB HID Point of Sale scales (usage page 0x8D): the 6-byte Scale Data Report, read from hidraw.

Sources (tags as in the reference: [V] verified in the source named, [P] partly, [U] not):

- USB-IF, *HID Point of Sale Usage Tables* 1.02 (pos1_02.pdf), Scales page 0x8D [V, through its
  tables as mirrored in neuroplastio/neio-agent ``hidapi/hidusage/usagepages/data/0x8D-scales.md``
  and Wireshark's ``packet-usb-hid.c``]: Scale Data Report 0x32, Data Weight 0x40, Data Scaling
  0x41; Weight Unit selectors 0x51 milligram … 0x5C pound; Scale Status selectors 0x71 fault,
  0x72 stable at centre of zero, 0x73 in motion, 0x74 weight stable, 0x75 under zero, 0x76 over
  weight limit, 0x77 requires calibration, 0x78 requires re-zeroing.
- The report as scales send it [V: erjiang/usbscale ``usbscale.c`` (after the usage tables
  1.02), public Python hidapi readers of Dymo scales, dustyjewett/webscale (Stamps.com)]:
  6 bytes, ``report id`` (3: the data report), ``status`` (the status selector's index, 1…8),
  ``unit`` (the unit selector's index, 1…12), ``scaling`` (a signed byte: the weight is
  ``value × 10**scaling``; ounce scales send tenths, -1), ``weight`` (16 bits, little-endian).
  usbscale reads the weight unsigned; the Python readers negate it when the status is "under
  zero" [V], webscale reads it signed [V]. Here "under zero" is an underload without a value,
  as every codec reports a weight below the range: the station refuses it either way.
  pywebdriver's and Odoo's scale drivers are serial only: they have no HID scale [V].
- Linux hands each input report whole to a ``read()`` of ``/dev/hidrawN``, the report id first
  when the device numbers its reports [P: kernel Documentation/hid/hidraw.rst]. There is no
  request: the scale sends its reports by itself, so the protocol streams. Dymo scales repeat
  the current report while nothing changes [P: webscale drops repeated weights]; a scale that
  stayed silent while still would be shown as not answering (the worker's silence rule). It
  is read through :mod:`drivers.urlhandler.protocol_hidraw` (``hidraw://`` + path); a plain
  ``/dev/hidraw…`` or by-id path in ``[scale] url`` is turned into that URL by
  :func:`port_url`.

Unit factors: mg, g, kg, t, carat (200 mg), grain (64.79891 mg), troy ounce (480 grains),
ounce and pound (avoirdupois) are exact by definition [V]; pennyweight is 24 grains [V]. The
tables name the tael and the avoirdupois ton without a mass: the tael is taken as Hong Kong's
(1/16 of a catty of 604.78982 g) and the ton as the short ton of 2000 lb [U] — a counter scale
never sends either. A scaling outside ±6 is refused as a garbled report [P: scales send 0, -1,
-2].
"""

from __future__ import annotations

from decimal import Decimal, localcontext

import serial

from ..base import MG_PER_UNIT, FrameError, Reading, ScaleRefused
from ..serialio import LinkSettings
from ._fields import unsupported
from .protocol import Command, Reply, ScaleProtocol

__all__ = [
    "PROTOCOL",
    "REPORT_ID",
    "REPORT_LEN",
    "STATUS",
    "UNITS",
    "ReportFramer",
    "answers",
    "decode",
    "encode",
    "encode_report",
    "port_url",
]

NAME = "hid-pos"
REPORT_ID = 3  # the Scale Data Report's id in the 6-byte report
REPORT_LEN = 6
MAX_SCALING = 6
URL_SCHEME = "hidraw://"

# status byte: the Scale Status selector's index (usage 0x70 + n)
FAULT = 1
STABLE_ZERO = 2
IN_MOTION = 3
STABLE = 4
UNDER_ZERO = 5
OVER_WEIGHT = 6
NEEDS_CALIBRATION = 7
NEEDS_REZERO = 8
STATUS: dict[int, str] = {
    FAULT: "fault",
    STABLE_ZERO: "stable at centre of zero",
    IN_MOTION: "in motion",
    STABLE: "weight stable",
    UNDER_ZERO: "under zero",
    OVER_WEIGHT: "over weight limit",
    NEEDS_CALIBRATION: "requires calibration",
    NEEDS_REZERO: "requires re-zeroing",
}

# unit byte: the Weight Unit selector's index (usage 0x50 + n) -> (unit text, mg per unit)
UNITS: dict[int, tuple[str, Decimal]] = {
    1: ("mg", MG_PER_UNIT["mg"]),
    2: ("g", MG_PER_UNIT["g"]),
    3: ("kg", MG_PER_UNIT["kg"]),
    4: ("ct", MG_PER_UNIT["ct"]),
    5: ("tael", Decimal("37799.36375")),  # Hong Kong tael, 604.78982 g / 16 [U]
    6: ("gn", MG_PER_UNIT["gn"]),
    7: ("dwt", 24 * MG_PER_UNIT["gn"]),  # pennyweight: 24 grains
    8: ("t", MG_PER_UNIT["t"]),
    9: ("ton", 2000 * MG_PER_UNIT["lb"]),  # avoirdupois (short) ton [U]
    10: ("ozt", MG_PER_UNIT["ozt"]),
    11: ("oz", MG_PER_UNIT["oz"]),
    12: ("lb", MG_PER_UNIT["lb"]),
}
_UNIT_CODES = {text: code for code, (text, _factor) in UNITS.items()}


def _signed(byte: int) -> int:
    return byte - 256 if byte > 127 else byte


def _plausible(head: bytes | bytearray) -> bool:
    """Whether a report's first bytes (as many as came: id, status, unit, scaling) fit."""
    n = len(head)
    return (
        (n < 1 or head[0] == REPORT_ID)
        and (n < 2 or head[1] in STATUS)
        and (n < 3 or head[2] in UNITS)
        and (n < 4 or abs(_signed(head[3])) <= MAX_SCALING)
    )


class ReportFramer:
    """Splits the byte stream into 6-byte reports.

    hidraw hands over whole reports, but a pty, a pipe or a capture file does not keep their
    bounds. A report starts where the report id, a known status, a known unit and a plausible
    scaling follow each other, and is taken when what follows it (if anything came yet) starts
    the same way: the id 3 is also the in-motion status and the kilogram unit, so a stray byte
    before a report would otherwise shift every field by one. What does not fit costs one byte
    (counted in ``dropped``).
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self.dropped = 0  # bytes skipped while resynchronising

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        buf = self._buf
        frames: list[bytes] = []
        while buf:
            fits = _plausible(buf[:4])
            if fits and len(buf) < REPORT_LEN:
                break
            if not fits or not _plausible(buf[REPORT_LEN : REPORT_LEN + 4]):
                del buf[:1]
                self.dropped += 1
                continue
            frames.append(bytes(buf[:REPORT_LEN]))
            del buf[:REPORT_LEN]
        return frames

    def reset(self) -> None:
        self._buf.clear()

    @property
    def pending(self) -> bytes:
        return bytes(self._buf)


def decode(frame: bytes) -> Reply:
    """One data report to a :class:`Reading`.

    Stable at zero and weight stable are stable weights, in motion an unstable one; over weight
    is an overload and under zero an underload, both without a value. Fault, requires
    calibration and requires re-zeroing raise :class:`ScaleRefused` (the scale says it cannot
    weigh); anything else (length, id, unknown status or unit, scaling beyond ±6) raises
    :class:`FrameError`.
    """
    if len(frame) != REPORT_LEN:
        raise FrameError(f"a HID scale report has {REPORT_LEN} bytes, got {len(frame)}: {frame!r}")
    report, status, unit_code, scaling_byte, low, high = frame
    if report != REPORT_ID:
        raise FrameError(f"not a scale data report (id {report}, expected {REPORT_ID})")
    if status not in STATUS:
        raise FrameError(f"unknown scale status {status}")
    if unit_code not in UNITS:
        raise FrameError(f"unknown weight unit {unit_code}")
    scaling = _signed(scaling_byte)
    if abs(scaling) > MAX_SCALING:
        raise FrameError(f"implausible scaling 10^{scaling}")
    if status in (FAULT, NEEDS_CALIBRATION, NEEDS_REZERO):
        raise ScaleRefused(f"the scale reports: {STATUS[status]}")
    unit, factor = UNITS[unit_code]
    if status == OVER_WEIGHT:
        return Reading(None, unit, False, overload=True, raw=frame)
    if status == UNDER_ZERO:
        return Reading(None, unit, False, underload=True, raw=frame)
    value = low | high << 8
    with localcontext() as ctx:
        ctx.prec = 40  # exact: 5 digits times a factor of at most 13 significant digits
        mg = int((Decimal(value).scaleb(scaling) * factor).to_integral_value())
    return Reading(mg, unit, status != IN_MOTION, raw=frame)


def encode_report(
    value: int, unit: str = "g", scaling: int = 0, status: int = STABLE, report_id: int = REPORT_ID
) -> bytes:
    """The 6 bytes a scale sends (for simulators and tests): ``value`` × 10**``scaling``
    ``unit`` with ``status``; ValueError when a field does not fit its byte."""
    if unit not in _UNIT_CODES:
        raise ValueError(f"unit {unit!r} is not in the usage tables: {', '.join(_UNIT_CODES)}")
    if not 0 <= value <= 0xFFFF:
        raise ValueError(f"the weight field holds 0…65535, not {value}")
    if not -128 <= scaling <= 127:
        raise ValueError(f"the scaling is a signed byte, not {scaling}")
    fields = (report_id, status, _UNIT_CODES[unit], scaling & 0xFF, value & 0xFF, value >> 8)
    return bytes(fields)


def encode(command: Command) -> bytes:
    """No requests: a HID scale sends its reports by itself. Always raises ScaleError."""
    raise unsupported(command, NAME)


def answers(command: Command, reply: Reply) -> bool:
    """Only weights exist here: they answer READ and READ_STABLE."""
    return command in (Command.READ, Command.READ_STABLE) and isinstance(reply, Reading)


def register_url_handler() -> None:
    """Let pyserial open ``hidraw://`` URLs (its documented extension point)."""
    if "drivers.urlhandler" not in serial.protocol_handler_packages:
        serial.protocol_handler_packages.append("drivers.urlhandler")


def port_url(url: str) -> str:
    """The pyserial URL for a configured port: a path (``/dev/hidraw0``, a by-id link) is read
    as a raw report stream through ``hidraw://``; a URL is kept as given."""
    register_url_handler()
    return url if "://" in url else URL_SCHEME + url


PROTOCOL = ScaleProtocol(
    name=NAME,
    description=(
        "USB HID Point of Sale scale (usage page 0x8D: Dymo M5/M10/M25, Stamps.com, postal "
        'scales): 6-byte reports streamed from /dev/hidrawN (url = "/dev/hidraw0" or a by-id '
        "path); no commands, line settings unused"
    ),
    link=LinkSettings(),
    streaming=True,
    make_framer=ReportFramer,
    decode=decode,
    encode=encode,
    answers=answers,
    port_url=port_url,
)
