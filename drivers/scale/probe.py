"""Finding a scale: the serial ports there are, who holds them, and what answers on them.

Only harmless requests are sent (identify or read, never one carrying a byte that some
single-letter protocol takes as zero or tare); streaming protocols are only listened to.
"""

from __future__ import annotations

import errno
import functools
import glob
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.i18n import _

from ..base import PortError, Reading, ScaleRefused
from ..serialio import LinkSettings, SerialTransport, TermiosError, framing_text, parse_framing
from . import PROTOCOLS
from .protocol import Command, ScaleProtocol

__all__ = [
    "BY_ID_ENV",
    "PORT_PATTERNS",
    "PROBE_BAUDS",
    "PROBE_FRAMINGS",
    "Answer",
    "PortResult",
    "ProbeStep",
    "Prober",
    "UsbIds",
    "by_id_dir",
    "config_keys",
    "config_lines",
    "console_ports",
    "default_ports",
    "describe_link",
    "holders",
    "permission_denied",
    "port_patterns",
    "port_problem",
    "probe_plan",
    "probe_request",
    "same_device",
    "settings_refused",
    "stable_name",
    "udev_rule",
    "usb_ids",
]

PROBE_BAUDS = (9600, 4800, 2400, 19200)
PROBE_FRAMINGS = ("8N1", "7E1")
PORT_PATTERNS = (
    "/dev/serial/by-id/*",
    "/dev/ttyUSB*",
    "/dev/ttyACM*",
    "/dev/ttyAMA*",
    "/dev/ttyS*",
)
# udev's persistent names; the environment may point elsewhere (a test's links to simulators)
BY_ID_ENV = "PESEE_SERIAL_BY_ID"
BY_ID_DIR = "/dev/serial/by-id"
# udev names a USB serial port usb-<ID_SERIAL>-if<interface>[-port<n>] (60-serial.rules)
_BY_ID_NAME = re.compile(r"usb-(?P<serial>.+?)-if\d+(?:-port\d+)?")
UDEV_TAIL = (
    'SYMLINK+="pesee-scale", GROUP="dialout", MODE="0660", ENV{ID_MM_DEVICE_IGNORE}="1", '
    'TAG+="systemd"'
)
_REPLY_GRACE = 0.1  # after a first complete frame, how long to wait for the rest of a reply
# pyserial lets termios.error escape from open() when the port refuses a setting (a pty and 7E1)
_OPEN_ERRORS = (PortError, TermiosError)


# ---------------------------------------------------------------------------- why a port fails


def _errnos(exc: BaseException) -> set[int]:
    codes: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None:
        code = getattr(cause, "errno", None)
        if isinstance(code, int):
            codes.add(code)
        elif isinstance(cause, TermiosError) and cause.args and isinstance(cause.args[0], int):
            codes.add(cause.args[0])
        cause = cause.__cause__ or cause.__context__
    return codes


def settings_refused(exc: BaseException) -> bool:
    """The port exists but refused these line settings (e.g. a pty and 7E1, a bad baud)."""
    return errno.EINVAL in _errnos(exc) or isinstance(exc.__cause__ or exc, ValueError)


def permission_denied(exc: BaseException) -> bool:
    """The port exists but this user may not open it (the dialout group)."""
    return bool(_errnos(exc) & {errno.EACCES, errno.EPERM})


def port_problem(exc: BaseException) -> str:
    """A port that cannot be opened, said for a technician (EACCES: the dialout group)."""
    codes = _errnos(exc)
    if permission_denied(exc):
        return _(
            "permission denied: add the user to the dialout group "
            "(sudo usermod -aG dialout $USER, then log in again)"
        )
    if codes & {errno.EBUSY, errno.EAGAIN, errno.EWOULDBLOCK}:
        return _(
            "busy: another program holds the port (the station daemon? "
            "sudo systemctl stop pesee-station)"
        )
    if errno.ENOENT in codes or errno.ENODEV in codes or errno.ENXIO in codes:
        return _("no such device: check the cable and the port name")
    if settings_refused(exc):
        return _("the port refused these line settings (baud rate, framing): {error}").format(
            error=exc
        )
    return _("cannot open: {error}").format(error=exc)


# ---------------------------------------------------------------------------- the ports there are


def _natural(path: str) -> list[Any]:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path)]


def _is_uart(path: str) -> bool:
    """``ttyS*`` exist on most PCs without a UART behind them (type 0): skip those."""
    name = os.path.basename(os.path.realpath(path))
    try:
        kind = Path("/sys/class/tty", name, "type").read_text().strip()
    except OSError:
        return True
    return kind != "0"


def by_id_dir() -> str:
    """Where udev's by-id links are: ``/dev/serial/by-id``, or ``$PESEE_SERIAL_BY_ID``."""
    return os.environ.get(BY_ID_ENV) or BY_ID_DIR


def port_patterns() -> tuple[str, ...]:
    """The globs :func:`default_ports` tries, by-id names first."""
    return (os.path.join(by_id_dir(), "*"), *PORT_PATTERNS[1:])


def default_ports() -> list[str]:
    """Existing serial ports, by-id names first, each device once."""
    seen: set[str] = set()
    ports: list[str] = []
    for pattern in port_patterns():
        for path in sorted(glob.glob(pattern), key=_natural):
            real = os.path.realpath(path)
            if real in seen or (pattern == "/dev/ttyS*" and not _is_uart(path)):
                continue
            seen.add(real)
            ports.append(path)
    return ports


def console_ports() -> set[str]:
    """The kernel console's ttys (``ttyS0`` on a Pi with a serial console): never probed."""
    try:
        return set(Path("/sys/class/tty/console/active").read_text().split())
    except OSError:
        return set()


def holders() -> dict[str, list[str]]:
    """Device path -> the other processes that hold it open, as far as /proc lets us see.

    A getty, a Bluetooth HCI daemon or ModemManager on a port does not take pyserial's lock:
    writing a request there would disturb it, so found ports held by someone are skipped.
    """
    me = os.getpid()
    held: dict[str, list[str]] = {}
    for fd_dir in glob.glob("/proc/[0-9]*/fd"):
        pid = int(fd_dir.split("/")[2])
        if pid == me:
            continue
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"{fd_dir}/{fd}")
            except OSError:
                continue
            if target.startswith("/dev/tty"):
                try:
                    name = Path(f"/proc/{pid}/comm").read_text().strip()
                except OSError:
                    name = "?"
                who = f"{name} (pid {pid})"
                if who not in held.setdefault(target, []):
                    held[target].append(who)
    return held


def same_device(a: str, b: str) -> bool:
    """Two port names for one device (``/dev/serial/by-id/…`` and ``/dev/ttyUSB0``)."""
    if a == b:
        return True
    if a.startswith("/") and b.startswith("/"):
        return os.path.realpath(a) == os.path.realpath(b)
    return False


def stable_name(url: str) -> str:
    """``/dev/ttyUSB0`` may be another device after a replug: its by-id or by-path link."""
    if not url.startswith("/dev/tty") and not url.startswith("/dev/pts/"):
        return url
    real = os.path.realpath(url)
    for pattern in (os.path.join(by_id_dir(), "*"), "/dev/serial/by-path/*"):
        for link in sorted(glob.glob(pattern)):
            if os.path.realpath(link) == real:
                return link
    return url


# ---------------------------------------------------------------------------- USB ids and udev


@dataclass(frozen=True, slots=True)
class UsbIds:
    """What identifies a USB serial adapter: from pyserial's ``list_ports`` (sysfs) when it
    knows the port, and from udev's by-id link name (``ID_SERIAL``) either way."""

    vid: int | None = None
    pid: int | None = None
    serial: str | None = None
    manufacturer: str | None = None
    product: str | None = None
    location: str | None = None  # the USB port, "1-1.3:1.0" (KERNELS is the part before ":")
    by_id: str | None = None
    id_serial: str | None = None

    @property
    def usb_id(self) -> str | None:
        """``0403:6001``."""
        if self.vid is None or self.pid is None:
            return None
        return f"{self.vid:04x}:{self.pid:04x}"


def _comports() -> list[Any]:
    try:
        from serial.tools import list_ports
    except ImportError:  # pragma: no cover - pyserial always ships it
        return []
    try:
        return list(list_ports.comports())
    except OSError:
        return []


def usb_ids(url: str) -> UsbIds | None:
    """The USB ids of the adapter behind ``url`` (a device path or link); None when it is not
    a USB adapter that pyserial or udev's by-id links know (a UART, a pty, a network URL)."""
    if not url.startswith("/"):
        return None
    real = os.path.realpath(url)
    by_id = None
    for link in sorted(glob.glob(os.path.join(by_id_dir(), "*"))):
        if os.path.islink(link) and os.path.realpath(link) == real:
            by_id = link
            break
    match = _BY_ID_NAME.fullmatch(os.path.basename(by_id)) if by_id else None
    id_serial = match.group("serial") if match else None
    for port in _comports():
        if os.path.realpath(port.device) == real and port.vid is not None:
            return UsbIds(
                port.vid,
                port.pid,
                port.serial_number or None,
                port.manufacturer or None,
                port.product or None,
                port.location or None,
                by_id,
                id_serial,
            )
    if by_id is None:
        return None
    return UsbIds(by_id=by_id, id_serial=id_serial)


def _quoted(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def udev_rule(ids: UsbIds) -> str | None:
    """The naming line for ``/etc/udev/rules.d/98-pesee-local.rules`` (the keys of
    ``systemd/99-pesee.rules``' examples): vendor, product and serial when known; without a
    serial, the USB port (KERNELS); with only a by-id name, its ``ID_SERIAL``."""
    keys = ['SUBSYSTEM=="tty"']
    if ids.vid is not None and ids.pid is not None:
        keys += [f'ATTRS{{idVendor}}=="{ids.vid:04x}"', f'ATTRS{{idProduct}}=="{ids.pid:04x}"']
        if ids.serial:
            keys.append(f'ATTRS{{serial}}=="{_quoted(ids.serial)}"')
        elif ids.location:
            keys.append(f'KERNELS=="{_quoted(ids.location.split(":")[0])}"')
    elif ids.id_serial:
        keys.append(f'ENV{{ID_SERIAL}}=="{_quoted(ids.id_serial)}"')
    else:
        return None
    return ", ".join([*keys, UDEV_TAIL])


# ---------------------------------------------------------------------------- what to send


@functools.cache
def _single_byte_actions() -> frozenset[int]:
    """Bytes that are, alone, a zero/tare/clear command for some protocol (Kern's ``t``, Kern
    TM's ``T``, Toledo 8217's ``Z``…): a probe request containing one could tare a scale that
    reads commands one letter at a time."""
    found: set[int] = set()
    for protocol in PROTOCOLS.values():
        for command in (Command.ZERO, Command.TARE, Command.CLEAR_TARE):
            request = protocol.request(command)
            if request is None:
                continue
            letters = request.strip(b"\r\n")
            if len(letters) == 1:
                found.add(letters[0])
    return frozenset(found)


def probe_request(protocol: ScaleProtocol) -> tuple[Command, bytes] | None:
    """The least intrusive request: IDENTIFY when the protocol has it, else READ, and never one
    carrying a byte that some single-letter protocol takes as zero or tare."""
    if protocol.streaming:
        return None
    unsafe = _single_byte_actions()
    for command in (Command.IDENTIFY, Command.READ):
        request = protocol.request(command)
        if request is not None and not unsafe.intersection(request):
            return command, request
    return None


ProbeStep = tuple[LinkSettings, list[ScaleProtocol]]


def _plain(link: LinkSettings) -> LinkSettings:
    """The link without handshake: probing must never block on a CTS line nobody drives."""
    return LinkSettings(link.baudrate, link.bytesize, link.parity, link.stopbits)


def probe_plan(
    protocols: list[ScaleProtocol], bauds: list[int] | None, framings: list[str] | None
) -> list[ProbeStep]:
    """What to try, in order: each protocol at its own link (most scales keep their factory
    settings), then every baud with every framing for the protocols not yet tried there."""
    if bauds is None:
        bauds = list(dict.fromkeys([*(p.link.baudrate for p in protocols), *PROBE_BAUDS]))
        bauds.sort(key=lambda b: PROBE_BAUDS.index(b) if b in PROBE_BAUDS else len(PROBE_BAUDS))
    if framings is None:
        framings = list(
            dict.fromkeys([*PROBE_FRAMINGS, *(framing_text(p.link) for p in protocols)])
        )
    own: dict[LinkSettings, list[ScaleProtocol]] = {}
    for p in protocols:
        if p.link.baudrate in bauds and framing_text(p.link) in framings:
            own.setdefault(_plain(p.link), []).append(p)
    plan: list[ProbeStep] = list(own.items())
    for baud in bauds:
        for bits, parity, stop in (parse_framing(f) for f in framings):
            link = LinkSettings(baud, bits, parity, stop)
            rest = [p for p in protocols if p not in own.get(link, [])]
            if rest:
                plan.append((link, rest))
    return plan


def describe_link(link: LinkSettings) -> str:
    """``9600 8N1``."""
    return f"{link.baudrate} {framing_text(link)}"


# ---------------------------------------------------------------------------- trying a port


@dataclass(frozen=True, slots=True)
class Answer:
    """What answered on a port, and how."""

    url: str
    protocol: ScaleProtocol
    link: LinkSettings
    frame: bytes
    request: bytes | None  # None: heard without asking (a streaming scale)
    certain: bool  # False: only a refusal, or bit 7 set on an 8-bit framing


@dataclass(slots=True)
class PortResult:
    """The outcome of probing one port."""

    answer: Answer | None = None
    problem: str | None = None  # why the port could not be tried
    heard: list[LinkSettings] = field(default_factory=list)  # settings at which bytes came
    refused: list[LinkSettings] = field(default_factory=list)  # settings the port refused
    denied: bool = False  # permission denied (the dialout group)
    out_of_time: bool = False


def config_keys(answer: Answer) -> dict[str, str]:
    """The ``[scale]`` keys for what answered, each value as TOML text."""
    link = answer.link
    stop = int(link.stopbits) if float(link.stopbits).is_integer() else link.stopbits
    return {
        "url": json.dumps(stable_name(answer.url)),
        "protocol": json.dumps(answer.protocol.name),
        "baudrate": str(link.baudrate),
        "bytesize": str(link.bytesize),
        "parity": f'"{link.parity}"',
        "stopbits": str(stop),
    }


def config_lines(answer: Answer) -> list[str]:
    """The ``[scale]`` table of a new station config for what answered."""
    return ["[scale]", *(f"{k} = {v}" for k, v in config_keys(answer).items())]


class Prober:
    """Tries settings and protocols on one port at a time, each attempt bounded in time."""

    def __init__(self, timeout: float, deadline: float) -> None:
        self.timeout = timeout
        self.deadline = deadline

    def out_of_time(self) -> bool:
        return time.monotonic() >= self.deadline

    def port(self, url: str, plan: list[ProbeStep]) -> PortResult:
        """Try the ``plan`` in order on ``url`` until something answers for certain."""
        result = PortResult()
        for link, protocols in plan:
            if self.out_of_time():
                result.out_of_time = True
                break
            if result.answer is not None and link.baudrate != result.answer.link.baudrate:
                continue  # only the other framings at the baud that nearly worked
            transport = SerialTransport(url, link, timeout=0.05)
            try:
                transport.open()
            except _OPEN_ERRORS as exc:
                if settings_refused(exc):
                    if link not in result.refused:
                        result.refused.append(link)
                    continue
                result.problem = port_problem(exc)
                result.denied = permission_denied(exc)
                break
            try:
                answer, got_bytes = self._attempt(url, transport, link, protocols)
            except PortError as exc:
                result.problem = _("lost while probing: {error}").format(error=exc)
                break
            finally:
                transport.close()
            if got_bytes and link not in result.heard:
                result.heard.append(link)
            if answer is not None:
                if answer.certain:
                    result.answer = answer
                    break
                result.answer = result.answer or answer
        return result

    def _attempt(
        self,
        url: str,
        transport: SerialTransport,
        link: LinkSettings,
        ordered: list[ScaleProtocol],
    ) -> tuple[Answer | None, bool]:
        weak: Answer | None = None
        answer, heard = self._exchange(url, transport, link, ordered, None)
        if answer is not None and answer.certain:
            return answer, heard
        weak = answer
        groups: dict[bytes, tuple[Command, list[ScaleProtocol]]] = {}
        for protocol in ordered:
            request = probe_request(protocol)
            if request is not None:
                groups.setdefault(request[1], (request[0], []))[1].append(protocol)
        for payload, (command, members) in groups.items():
            if self.out_of_time():
                break
            answer, got = self._exchange(url, transport, link, members, (command, payload))
            heard = heard or got
            if answer is not None and answer.certain:
                return answer, heard
            weak = weak or answer
        return weak, heard

    def _exchange(
        self,
        url: str,
        transport: SerialTransport,
        link: LinkSettings,
        protocols: list[ScaleProtocol],
        ask: tuple[Command, bytes] | None,
    ) -> tuple[Answer | None, bool]:
        """Listen (``ask`` None) or send one request, and judge what comes back.

        Several protocols read the same bytes at once, each with its own framer: this is a
        search, not a conversation, so it does not go through a ScaleLink."""
        framers = [(p, p.make_framer()) for p in protocols]
        transport.flush_input()
        if ask is not None:
            transport.write(ask[1])
        deadline = time.monotonic() + self.timeout
        heard = False
        weak: Answer | None = None
        while time.monotonic() < deadline:
            data = transport.read()
            if not data:
                continue
            heard = True
            complete = False
            for protocol, framer in framers:
                for frame in framer.feed(data):
                    complete = True
                    answer = _judge(url, protocol, link, frame, ask)
                    if answer is not None and answer.certain:
                        return answer, heard
                    weak = weak or answer
            if complete and ask is not None:  # one request, one reply: do not wait longer
                deadline = min(deadline, time.monotonic() + _REPLY_GRACE)
        return weak, heard


def _judge(
    url: str,
    protocol: ScaleProtocol,
    link: LinkSettings,
    frame: bytes,
    ask: tuple[Command, bytes] | None,
) -> Answer | None:
    try:
        reply = protocol.decode(frame)
    except ScaleRefused:  # it speaks the protocol, but said no: keep looking
        return Answer(url, protocol, link, frame, ask[1] if ask else None, certain=False)
    except Exception:  # garbled, another protocol, or a codec bug: not an answer
        return None
    if ask is None:
        if not isinstance(reply, Reading):
            return None
    elif not protocol.answers(ask[0], reply):
        return None
    parity_bits = link.bytesize == 8 and any(b & 0x80 for b in frame)
    return Answer(url, protocol, link, frame, ask[1] if ask else None, certain=not parity_bits)
