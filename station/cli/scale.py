"""``station scale …``: the technician's tools to find, read, watch and decode the scale."""

from __future__ import annotations

import errno
import glob
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, NoReturn, TypeVar

import click

from common.i18n import _, language, set_language
from drivers.base import FrameError, PortError, Reading, ScaleError, ScaleRefused, ScaleTimeout
from drivers.scale import PROTOCOLS, Ack, Command, Reply, ScaleProtocol
from drivers.serialio import Framer, LinkSettings, SerialTransport, TermiosError

from ..config import Config, ConfigError, config_path, load_config

__all__ = ["scale"]

# pyserial lets termios.error escape from open() when the port refuses a setting (a pty and 7E1)
_OPEN_ERRORS = (PortError, TermiosError)

# sysexits(3), as in station.cli
EX_DATAERR = 65
EX_IOERR = 74

_F = TypeVar("_F", bound=Callable[..., Any])

_READ_TIMEOUT = 2.0  # seconds for one weight, when neither --timeout nor the config says
_STABLE_TIMEOUT = 5.0  # seconds to wait for a stable weight with --stable
_COMMAND_TIMEOUT = 3.0  # zero/tare may wait for stability on the scale
_PROBE_BAUDS = (9600, 4800, 2400, 19200)
_PROBE_FRAMINGS = ("8N1", "7E1")
_REPLY_GRACE = 0.1  # after a first complete frame, how long to wait for the rest of a reply
_PORT_PATTERNS = (
    "/dev/serial/by-id/*",
    "/dev/ttyUSB*",
    "/dev/ttyACM*",
    "/dev/ttyAMA*",
    "/dev/ttyS*",
)
_FRAMING = re.compile(r"^([5-8])([NEOMS])(1|1\.5|2)$", re.IGNORECASE)
_SPY_RX = re.compile(r"^\s*\d+\.\d+ RX\s+[0-9A-Fa-f]{4}  (.{1,49})")
_SENTENCE_END = re.compile(r"(?<!\be\.g)(?<!\bi\.e)(?<!\betc)\.(?=\s|$)")


# ---------------------------------------------------------------------------- helpers


def _fail(message: str, code: int) -> NoReturn:
    click.echo(message, err=True)
    sys.exit(code)


def _root_obj(ctx: click.Context) -> dict[str, Any]:
    obj = ctx.find_object(dict)
    return obj if obj is not None else {}


def _required_config(ctx: click.Context) -> Config:
    from .main import _config  # station.cli imports this module: import it when used

    ctx.ensure_object(dict)
    ctx.obj.setdefault("config_path", config_path(None))
    ctx.obj.setdefault("lang", None)
    return _config(ctx)


def _optional_config(ctx: click.Context) -> Config | None:
    """The station config when it loads, else None (the command does not need it)."""
    obj = _root_obj(ctx)
    try:
        config = load_config(obj.get("config_path") or config_path(None))
    except ConfigError:
        return None
    if obj.get("lang") is None:
        set_language(config.station.language)
    return config


def _first_sentence(text: str) -> str:
    match = _SENTENCE_END.search(text)
    return text[: match.start() + 1] if match else text


def _framing(link: LinkSettings) -> str:
    stop = int(link.stopbits) if float(link.stopbits).is_integer() else link.stopbits
    return f"{link.bytesize}{link.parity}{stop}"


def _parse_framing(text: str) -> tuple[int, str, float]:
    match = _FRAMING.match(text.strip())
    if match is None:
        raise click.BadParameter(
            _("a framing such as 8N1 or 7E1, not {value!r}").format(value=text)
        )
    bits, parity, stop = match.groups()
    return int(bits), parity.upper(), float(stop) if stop == "1.5" else int(stop)


def _split(values: Sequence[str]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _protocol_names(names: Sequence[str]) -> list[str]:
    unknown = [n for n in names if n not in PROTOCOLS]
    if unknown:
        raise click.BadParameter(
            _("unknown protocol {name!r}; known: {names}").format(
                name=unknown[0], names=", ".join(sorted(PROTOCOLS))
            )
        )
    return list(dict.fromkeys(names))


def _check_protocol(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        _protocol_names([value])
    return value


def _check_framing(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        _parse_framing(value)
    return value


def _supports(protocol: ScaleProtocol, command: Command) -> bool:
    try:
        protocol.encode(command)
    except (ScaleError, LookupError, NotImplementedError):
        return False
    return True


def _escape(raw: bytes) -> str:
    """Bytes as printable ASCII: ``\\x02``, ``\\r``, ``\\n`` for the others."""
    return raw.decode("latin-1").encode("unicode_escape").decode("ascii")


def _mass(mg: int) -> str:
    """Exact kilograms, at least 3 decimals, decimal comma in French: ``1,250 kg``."""
    value = Decimal(mg).scaleb(-6)
    exponent = value.normalize().as_tuple().exponent
    places = max(3, -exponent if isinstance(exponent, int) else 3)
    text = f"{value:.{places}f}"
    if language() == "fr":
        text = text.replace(".", ",")
    return f"{text} kg"


def _is_net(reading: Reading) -> bool | None:
    """Whether the displayed weight is net (True), gross (False), or the frame does not say."""
    if reading.net_mg is None:
        return None
    if reading.gross_mg is not None:
        return reading.gross_mg != reading.net_mg
    if reading.tare_mg:
        return True
    return None


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


def _settings_refused(exc: BaseException) -> bool:
    """The port exists but refused these line settings (e.g. a pty and 7E1, a bad baud)."""
    return errno.EINVAL in _errnos(exc) or isinstance(exc.__cause__ or exc, ValueError)


def _port_problem(exc: BaseException) -> str:
    """A port that cannot be opened, said for a technician (EACCES: the dialout group)."""
    codes = _errnos(exc)
    if errno.EACCES in codes or errno.EPERM in codes:
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
    if _settings_refused(exc):
        return _("the port refused these line settings (baud rate, framing): {error}").format(
            error=exc
        )
    return _("cannot open: {error}").format(error=exc)


# ---------------------------------------------------------------------------- the line


@dataclass(frozen=True, slots=True)
class _Target:
    url: str
    protocol: ScaleProtocol
    link: LinkSettings
    reply_timeout: float | None  # from the config, when there is one


class _Line:
    """One scale port opened for the CLI: requests with stale input flushed, streamed frames."""

    def __init__(self, target: _Target) -> None:
        self.target = target
        self.protocol = target.protocol
        self.transport = SerialTransport(target.url, target.link, timeout=0.05)
        self.framer: Framer = self.protocol.make_framer()
        self.fresh = True  # just opened: stale input and a first fragment to drop

    def open(self) -> None:
        self.transport.open()
        self.fresh = True

    def reconnect(self) -> bool:
        """Wait the next back-off delay and try to reopen once; True when open again."""
        try:
            reopened = self.transport.reconnect()
        except TermiosError:  # pyserial lets it escape when the new device refuses a setting
            self.transport.close()
            return False
        if reopened:
            self.fresh = True
        return reopened

    def close(self) -> None:
        self.transport.close()

    def exchange(self, command: Command, timeout: float) -> Reply:
        """Send ``command``, return its answer. Raises ScaleRefused, ScaleTimeout, PortError."""
        request = self.protocol.encode(command)
        self.transport.flush_input()  # a stale frame must not pass for the answer (§9.1)
        self.framer.reset()
        self.fresh = False
        self.transport.write(request)
        for frame in self.transport.frames(self.framer, time.monotonic() + timeout):
            try:
                reply = _decode(self.protocol, frame)
            except ScaleRefused:
                raise
            except ScaleError:
                continue
            if self.protocol.answers(command, reply):
                return reply
        raise ScaleTimeout(_("no answer within {s:g} s").format(s=timeout))

    def streamed(self, timeout: float, stable: bool = False) -> Reading:
        """The newest complete streamed weight (stable, or out of range, when asked).

        Raises ScaleTimeout (with the last weight seen as ``args[1]``) or PortError.
        """
        if self.fresh:
            self.transport.flush_input()
            self.framer.reset()
        skip = self.fresh  # the first frame after opening is usually a fragment (§9.2)
        self.fresh = False
        newest: Reading | None = None
        last: Reading | None = None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            data = self.transport.read()
            if not data:
                if newest is not None:
                    return newest  # input drained: this is the newest frame
                continue
            for frame in self.framer.feed(data):
                if skip:
                    skip = False
                    continue
                try:
                    reply = _decode(self.protocol, frame)
                except ScaleError:
                    continue
                if not isinstance(reply, Reading):
                    continue
                last = reply
                if not stable or reply.stable or reply.overload or reply.underload:
                    newest = reply
        if newest is not None:
            return newest
        raise ScaleTimeout(_("no weight received within {s:g} s").format(s=timeout), last)

    def reading(self, stable: bool, timeout: float) -> Reading:
        """One weight: the newest streamed frame, or READ / READ_STABLE on a polled scale."""
        if self.protocol.streaming:
            return self.streamed(timeout, stable)
        deadline = time.monotonic() + timeout
        if stable and _supports(self.protocol, Command.READ_STABLE):
            return _as_reading(self.exchange(Command.READ_STABLE, timeout))
        last: Reading | None = None
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ScaleTimeout(_("no stable weight within {s:g} s").format(s=timeout), last)
            reading = _as_reading(self.exchange(Command.READ, left))
            if not stable or reading.stable or reading.overload or reading.underload:
                return reading
            last = reading
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))

    def __enter__(self) -> _Line:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _as_reading(reply: Reply) -> Reading:
    if isinstance(reply, Reading):
        return reply
    raise ScaleError(_("the scale answered without a weight: {raw}").format(raw=_escape(reply.raw)))


def _decode(protocol: ScaleProtocol, frame: bytes) -> Reply:
    """``protocol.decode``, with a codec bug turned into a FrameError (never a traceback)."""
    try:
        return protocol.decode(frame)
    except ScaleError:
        raise
    except Exception as exc:
        raise FrameError(f"decoder failed: {type(exc).__name__}: {exc}") from exc


def _target(
    ctx: click.Context,
    url: str | None,
    protocol_name: str | None,
    baudrate: int | None,
    framing: str | None,
) -> _Target:
    """URL, protocol and link: the options, else the station config, else the protocol's."""
    config = _optional_config(ctx) if url and protocol_name else _required_config(ctx)
    name = protocol_name or (config.scale.protocol if config else "")
    # the config's own protocol may be the configurable ASCII one, built from [scale.ascii]
    own = config is not None and name == config.scale.protocol
    protocol = config.scale.make_protocol() if config is not None and own else PROTOCOLS[name]
    link = config.scale.link(protocol) if config is not None and own else protocol.link
    if baudrate:
        link = replace(link, baudrate=baudrate)
    if framing:
        bits, parity, stop = _parse_framing(framing)
        link = replace(link, bytesize=bits, parity=parity, stopbits=stop)
    final_url = url or (config.scale.url if config else "")
    reply_timeout = config.scale.reply_timeout if config else None
    return _Target(final_url, protocol, link, reply_timeout)


def _open(target: _Target) -> _Line:
    line = _Line(target)
    try:
        line.open()
    except _OPEN_ERRORS as exc:
        _fail(
            _("Cannot open the scale on {url}: {problem}").format(
                url=target.url, problem=_port_problem(exc)
            ),
            EX_IOERR,
        )
    return line


def _link_options(func: _F) -> _F:
    """--url, --protocol, --baudrate, --framing: where the scale is and how it speaks."""
    options = [
        click.option(
            "--url",
            help="Port or pyserial URL (default: [scale] url from the config).",
        ),
        click.option(
            "--protocol",
            "protocol_name",
            callback=_check_protocol,
            help="Protocol name, see `station scale protocols` (default: from the config).",
        ),
        click.option(
            "--baudrate",
            type=click.IntRange(50, 4_000_000),
            help="Baud rate (default: config, else the protocol's).",
        ),
        click.option(
            "--framing",
            callback=_check_framing,
            help="Data bits, parity, stop bits, e.g. 8N1 or 7E1 (default: config, else protocol).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


# ---------------------------------------------------------------------------- describing


def _reply_json(reply: Reply | None, raw: bytes, error: str | None = None) -> dict[str, Any]:
    """The JSON object of one frame (the keys `station scale decode` documents)."""
    out: dict[str, Any] = {
        "weight_mg": None,
        "unit": None,
        "stable": None,
        "net": None,
        "gross_mg": None,
        "tare_mg": None,
        "pieces": None,
        "unit_weight_mg": None,
        "overload": False,
        "underload": False,
        "reply": None,
        "error": error,
        "raw": _escape(raw),
    }
    if isinstance(reply, Reading):
        out.update(
            weight_mg=reply.net_mg,
            unit=reply.unit or None,
            stable=reply.stable,
            net=_is_net(reply),
            gross_mg=reply.gross_mg,
            tare_mg=reply.tare_mg,
            pieces=reply.pieces,
            unit_weight_mg=reply.unit_weight_mg,
            overload=reply.overload,
            underload=reply.underload,
        )
    elif isinstance(reply, Ack):
        out["reply"] = {
            "command": reply.command,
            "status": reply.status,
            "params": list(reply.params),
            "mass_mg": reply.mass_mg,
        }
    return out


def _describe(reading: Reading) -> str:
    """One human line: weight in kg, net/gross, stable, tare, pieces, unit as sent."""
    parts: list[str] = []
    if reading.overload:
        parts.append(_("OVERLOAD (above the scale's range)"))
    elif reading.underload:
        parts.append(_("UNDERLOAD (below the scale's range)"))
    elif reading.net_mg is None:
        parts.append(_("no weight"))
    else:
        parts.append(_mass(reading.net_mg))
        net = _is_net(reading)
        if net is not None:
            parts.append(_("net") if net else _("gross"))
    parts.append(_("stable") if reading.stable else _("unstable (in motion)"))
    if reading.tare_mg:
        parts.append(_("tare {mass}").format(mass=_mass(reading.tare_mg)))
    if reading.pieces is not None:
        parts.append(_("{n} pieces").format(n=reading.pieces))
    if reading.unit_weight_mg is not None:
        parts.append(_("piece weight {mass}").format(mass=_mass(reading.unit_weight_mg)))
    if reading.unit:
        parts.append(_("unit sent: {unit}").format(unit=reading.unit))
    return ", ".join(parts)


def _monitor_line(reading: Reading) -> str:
    """The fixed-width live line: time, weight, stable flag, unit as sent, pieces."""
    if reading.overload:
        weight = _("OVERLOAD")
    elif reading.underload:
        weight = _("UNDERLOAD")
    elif reading.net_mg is None:
        weight = "---"
    else:
        weight = _mass(reading.net_mg)
    flag = _("stable") if reading.stable else _("motion")
    pieces = _("{n} pcs").format(n=reading.pieces) if reading.pieces is not None else ""
    clock = datetime.now().strftime("%H:%M:%S")
    return f"{clock}  {weight:>14}  {flag:<8}  {reading.unit:<5}  {pieces}".rstrip()


# ---------------------------------------------------------------------------- commands


@click.group()
def scale() -> None:
    """Find, read, watch and check the scale; decode captures.

    \b
    Examples:
      station scale probe
      station scale read
      station scale monitor
      station scale decode --protocol mt-sics capture.bin
    """


@scale.command("protocols")
def protocols_cmd() -> None:
    """List the scale protocols: the name, then a short description.

    \b
    Example:
      station scale protocols
    """
    names = sorted(PROTOCOLS)
    width = max((len(n) for n in names), default=0)
    for name in names:
        description = _first_sentence(PROTOCOLS[name].description)
        click.echo(f"{name:<{width}}  {description}")


@scale.command("read")
@_link_options
@click.option("--stable", is_flag=True, help="Wait for a stable weight.")
@click.option(
    "--timeout",
    type=click.FloatRange(0.1, 600),
    help=f"Give up after this many seconds (default {_READ_TIMEOUT:g}, {_STABLE_TIMEOUT:g} with "
    "--stable).",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
@click.pass_context
def read_cmd(
    ctx: click.Context,
    url: str | None,
    protocol_name: str | None,
    baudrate: int | None,
    framing: str | None,
    stable: bool,
    timeout: float | None,
    as_json: bool,
) -> None:
    """Read the weight once (exit 1 when the scale gives none in time).

    \b
    Examples:
      station scale read
      station scale read --stable --json
      station scale read --url /dev/ttyUSB0 --protocol mt-sics --framing 7E1
    """
    target = _target(ctx, url, protocol_name, baudrate, framing)
    limit = timeout or (_STABLE_TIMEOUT if stable else _READ_TIMEOUT)
    with _open(target) as line:
        try:
            reading = line.reading(stable, limit)
        except ScaleRefused as exc:
            _fail(_("Refused by the scale: {reason}").format(reason=exc), 1)
        except ScaleTimeout as exc:
            last = exc.args[1] if len(exc.args) > 1 else None
            if stable and isinstance(last, Reading):
                _fail(
                    _("No stable weight within {s:g} s (last: {reading}).").format(
                        s=limit, reading=_describe(last)
                    ),
                    1,
                )
            _fail(_no_answer(target, limit), 1)
        except PortError as exc:
            _fail(_("Scale disconnected: {error}").format(error=exc), EX_IOERR)
        except ScaleError as exc:
            _fail(_("The scale gave no weight: {reason}").format(reason=exc), 1)
    if as_json:
        out = _reply_json(reading, reading.raw)
        out.update(url=target.url, protocol=target.protocol.name)
        click.echo(json.dumps(out, ensure_ascii=False))
        return
    click.echo(_describe(reading))


def _no_answer(target: _Target, seconds: float) -> str:
    return _(
        "No answer from the scale on {url} within {s:g} s ({protocol}, {baud} {framing}). "
        "Check the cable, the power, the scale's interface settings, "
        "or find them with: station scale probe"
    ).format(
        url=target.url,
        s=seconds,
        protocol=target.protocol.name,
        baud=target.link.baudrate,
        framing=_framing(target.link),
    )


def _send_command(
    ctx: click.Context,
    command: Command,
    url: str | None,
    protocol_name: str | None,
    baudrate: int | None,
    framing: str | None,
    timeout: float,
) -> None:
    target = _target(ctx, url, protocol_name, baudrate, framing)
    done = {Command.TARE: _("Tare done."), Command.ZERO: _("Zero done.")}[command]
    if not _supports(target.protocol, command):
        _fail(
            _("The {protocol} protocol has no {command} command: use the key on the scale.").format(
                protocol=target.protocol.name, command=command.value
            ),
            1,
        )
    with _open(target) as line:
        try:
            reply = line.exchange(command, timeout)
        except ScaleRefused as exc:
            _fail(_("Refused by the scale: {reason}").format(reason=exc), 1)
        except ScaleTimeout:
            _fail(_no_answer(target, timeout), 1)
        except PortError as exc:
            _fail(_("Scale disconnected: {error}").format(error=exc), EX_IOERR)
    message = done
    if isinstance(reply, Ack) and reply.mass_mg is not None:
        message += " " + _("Tare in use: {mass}.").format(mass=_mass(reply.mass_mg))
    elif isinstance(reply, Reading):
        message += " " + _("The scale shows: {reading}.").format(reading=_describe(reply))
    click.echo(message + " " + _("(scale answered: {raw})").format(raw=_escape(reply.raw)))


_timeout_option = click.option(
    "--timeout",
    type=click.FloatRange(0.1, 600),
    default=_COMMAND_TIMEOUT,
    show_default=True,
    help="Seconds to wait for the scale's answer.",
)


@scale.command("tare")
@_link_options
@_timeout_option
@click.pass_context
def tare_cmd(
    ctx: click.Context,
    url: str | None,
    protocol_name: str | None,
    baudrate: int | None,
    framing: str | None,
    timeout: float,
) -> None:
    """Tare the scale; print its answer, exit 1 when it refuses.

    \b
    Example:
      station scale tare
    """
    _send_command(ctx, Command.TARE, url, protocol_name, baudrate, framing, timeout)


@scale.command("zero")
@_link_options
@_timeout_option
@click.pass_context
def zero_cmd(
    ctx: click.Context,
    url: str | None,
    protocol_name: str | None,
    baudrate: int | None,
    framing: str | None,
    timeout: float,
) -> None:
    """Zero the scale; print its answer, exit 1 when it refuses.

    \b
    Example:
      station scale zero
    """
    _send_command(ctx, Command.ZERO, url, protocol_name, baudrate, framing, timeout)


class _Screen:
    """Monitor output: one line refreshed in place on a terminal, plain lines otherwise."""

    def __init__(self, tty: bool) -> None:
        self.tty = tty
        self._live = False

    def reading(self, text: str) -> None:
        if self.tty:
            click.echo("\r\x1b[K" + text, nl=False)
            self._live = True
        else:
            click.echo(text)

    def event(self, text: str) -> None:
        if self._live:
            click.echo("\r\x1b[K", nl=False)
            self._live = False
        click.echo(text)

    def close(self) -> None:
        if self._live:
            click.echo("")
            self._live = False


@scale.command("monitor")
@_link_options
@click.option("--count", type=click.IntRange(1), help="Stop after this many readings.")
@click.option(
    "--interval",
    type=click.FloatRange(0, 60),
    default=0.25,
    show_default=True,
    help="Seconds between readings.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(0.1, 60),
    help="Seconds without an answer before the scale is reported silent (default: the "
    "config's reply_timeout, else 1).",
)
@click.pass_context
def monitor_cmd(
    ctx: click.Context,
    url: str | None,
    protocol_name: str | None,
    baudrate: int | None,
    framing: str | None,
    count: int | None,
    interval: float,
    timeout: float | None,
) -> None:
    """Show the weight live: weight, stable flag, unit, pieces. Ctrl-C stops.

    Refreshes one line in place on a terminal, prints one line per reading otherwise.
    Disconnects and reconnects are reported as lines; the port is reopened by itself.

    \b
    Examples:
      station scale monitor
      station scale monitor --count 10 --interval 1 > weights.txt
    """
    target = _target(ctx, url, protocol_name, baudrate, framing)
    limit = timeout or target.reply_timeout or 1.0
    screen = _Screen(sys.stdout.isatty())
    line = _open(target)
    click.echo(
        _("Watching {url} ({protocol}); Ctrl-C to stop.").format(
            url=target.url, protocol=target.protocol.name
        ),
        err=True,
    )
    seen = 0
    trouble: str | None = None  # what is wrong now, said once until it changes
    try:
        while count is None or seen < count:
            started = time.monotonic()
            try:
                reading = line.reading(False, limit)
            except PortError as exc:
                screen.event(_("Scale disconnected: {error}").format(error=exc))
                while not line.reconnect():
                    pass
                trouble = None
                screen.event(_("Scale reconnected ({url}).").format(url=target.url))
                continue
            except ScaleError as exc:  # no answer, a refusal, a reply without a weight
                reason = str(exc.args[0]) if exc.args else str(exc)
                if isinstance(exc, ScaleTimeout):
                    now = _("Scale not answering: {reason}").format(reason=reason)
                else:
                    now = _("The scale gave no weight: {reason}").format(reason=reason)
                if now != trouble:
                    screen.event(now)
                    trouble = now
            else:
                if trouble is not None:
                    screen.event(_("Scale answering again."))
                    trouble = None
                screen.reading(_monitor_line(reading))
                seen += 1
                if count is not None and seen >= count:
                    break
            pause = interval - (time.monotonic() - started)
            if pause > 0:
                time.sleep(pause)
    except KeyboardInterrupt:
        pass
    finally:
        screen.close()
        line.close()


# ---------------------------------------------------------------------------- decode


def _unpack(data: bytes, fmt: str) -> bytes:
    """The bytes the scale sent, from a raw capture, a pyserial spy:// log or hex text."""
    if fmt == "raw":
        return data
    text = data.decode("latin-1")
    if fmt == "hex":
        cleaned = re.sub(r"0x|[\s:,]", "", text, flags=re.IGNORECASE)
        try:
            return bytes.fromhex(cleaned)
        except ValueError as exc:
            raise ValueError(_("not hexadecimal text: {error}").format(error=exc)) from exc
    out = bytearray()
    for row in text.splitlines():
        match = _SPY_RX.match(row)
        if match:  # received data only: TX lines are what the station sent
            out += bytes.fromhex("".join(re.findall(r"[0-9A-Fa-f]{2}", match.group(1))))
    if not out and text.strip():
        raise ValueError(_("no RX line found: is this a pyserial spy:// log (hexdump format)?"))
    return bytes(out)


def _pieces(protocol: ScaleProtocol, data: bytes) -> Iterator[tuple[str, bytes]]:
    """The capture cut by the protocol's framer, in order: ("frame" | "noise" | "tail", bytes).

    Bytes fed one at a time so that bytes the framer skips (noise, a garbled frame) can be
    shown where they were, between the frames around them.
    """
    framer = protocol.make_framer()
    span = bytearray()  # fed since the last frame
    dropped = getattr(framer, "dropped", 0)
    noisy = False
    for i in range(len(data)):
        byte = data[i : i + 1]
        span += byte
        frames = framer.feed(byte)
        now = getattr(framer, "dropped", 0)
        if now != dropped:
            noisy, dropped = True, now
        for frame in frames:
            at = span.rfind(frame)
            if at < 0:  # the framer changed the bytes: they cannot be placed
                at = 0
                span.clear()
            if noisy and at:
                yield "noise", bytes(span[:at])
            noisy = False
            del span[: at + len(frame)]
            yield "frame", frame
    pending: bytes | None = getattr(framer, "pending", None)
    if pending is None:  # the framer does not say: anything but line ends is a tail
        pending = bytes(span).strip(b"\r\n")
    rest = bytes(span)
    skipped = rest[: len(rest) - len(pending)] if rest.endswith(pending) else rest
    if noisy and skipped.strip(b"\r\n"):
        yield "noise", skipped
    if pending:
        yield "tail", pending


def _decode_entry(protocol: ScaleProtocol, kind: str, raw: bytes) -> dict[str, Any]:
    if kind == "noise":
        entry = _reply_json(None, raw, "bytes skipped by the framer: noise or a garbled frame")
        entry["decoded"] = False
        return entry
    try:
        reply = protocol.decode(raw)
    except ScaleRefused as exc:
        entry = _reply_json(None, raw, f"error reply: {exc}")
        entry["decoded"] = True  # a well-formed reply that says the scale refused
        return entry
    except ScaleError as exc:
        reason = str(exc) if kind == "frame" else f"incomplete frame at end of input: {exc}"
        entry = _reply_json(None, raw, reason)
        entry["decoded"] = False
        return entry
    except Exception as exc:  # a codec bug must not hide the rest of the capture
        entry = _reply_json(None, raw, f"decoder failed: {type(exc).__name__}: {exc}")
        entry["decoded"] = False
        return entry
    entry = _reply_json(reply, raw)
    entry["decoded"] = True
    return entry


@scale.command("decode")
@click.option(
    "--protocol",
    "protocol_name",
    required=True,
    callback=_check_protocol,
    help="Protocol to decode with (see `station scale protocols`).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["raw", "spy", "hex"]),
    default="raw",
    show_default=True,
    help="raw bytes, a pyserial spy:// log (its RX lines), or hex text.",
)
@click.argument("capture", type=click.File("rb"), default="-")
def decode_cmd(protocol_name: str, fmt: str, capture: IO[bytes]) -> None:
    """Decode captured bytes: one JSON object per frame; exit 1 if any frame is not decoded.

    Each object has weight_mg (the displayed weight, net or gross), unit (as sent), stable,
    net (true/false/null when the frame does not say), gross_mg, tare_mg, pieces,
    unit_weight_mg, overload, underload, reply (for replies that carry no weight), error
    (null, or why the frame is an error reply or could not be decoded), decoded, raw.

    \b
    Examples:
      station scale decode --protocol toledo-continuous capture.bin
      station scale decode --protocol mt-sics --format spy spy.log
      printf 'S S      1.250 kg\\r\\n' | station scale decode --protocol mt-sics
    """
    protocol = PROTOCOLS[protocol_name]
    try:
        data = _unpack(capture.read(), fmt)
    except ValueError as exc:
        _fail(_("Cannot read the capture: {error}").format(error=exc), EX_DATAERR)
    frames = failed = 0
    for kind, raw in _pieces(protocol, data):
        entry = _decode_entry(protocol, kind, raw)
        frames += 1
        failed += not entry["decoded"]
        click.echo(json.dumps(entry, ensure_ascii=True))
    click.echo(
        _("{frames} frame(s), {failed} not decoded").format(frames=frames, failed=failed),
        err=True,
    )
    sys.exit(1 if failed else 0)


# ---------------------------------------------------------------------------- probe


@dataclass(frozen=True, slots=True)
class _Answer:
    url: str
    protocol: ScaleProtocol
    link: LinkSettings
    frame: bytes
    request: bytes | None  # None: heard without asking (a streaming scale)
    certain: bool  # False: only a refusal, or bit 7 set on an 8-bit framing


_Step = tuple[LinkSettings, list[ScaleProtocol]]


@dataclass(slots=True)
class _PortResult:
    answer: _Answer | None = None
    problem: str | None = None  # why the port could not be tried
    heard: list[LinkSettings] = field(default_factory=list)  # settings at which bytes came
    refused: list[LinkSettings] = field(default_factory=list)  # settings the port refused
    denied: bool = False  # permission denied (the dialout group)
    out_of_time: bool = False


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


def _default_ports() -> list[str]:
    """Existing serial ports, by-id names first, each device once."""
    seen: set[str] = set()
    ports: list[str] = []
    for pattern in _PORT_PATTERNS:
        for path in sorted(glob.glob(pattern), key=_natural):
            real = os.path.realpath(path)
            if real in seen or (pattern == "/dev/ttyS*" and not _is_uart(path)):
                continue
            seen.add(real)
            ports.append(path)
    return ports


def _console_ports() -> set[str]:
    """The kernel console's ttys (``ttyS0`` on a Pi with a serial console): never probed."""
    try:
        return set(Path("/sys/class/tty/console/active").read_text().split())
    except OSError:
        return set()


def _holders() -> dict[str, list[str]]:
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


def _same_device(a: str, b: str) -> bool:
    if a == b:
        return True
    if a.startswith("/") and b.startswith("/"):
        return os.path.realpath(a) == os.path.realpath(b)
    return False


def _single_byte_actions() -> frozenset[int]:
    """Bytes that are, alone, a zero/tare/clear command for some protocol (Kern's ``t``, Kern
    TM's ``T``, Toledo 8217's ``Z``…): a probe request containing one could tare a scale that
    reads commands one letter at a time."""
    found: set[int] = set()
    for protocol in PROTOCOLS.values():
        for command in (Command.ZERO, Command.TARE, Command.CLEAR_TARE):
            try:
                request = protocol.encode(command)
            except (ScaleError, LookupError, NotImplementedError):
                continue
            letters = request.strip(b"\r\n")
            if len(letters) == 1:
                found.add(letters[0])
    return frozenset(found)


def _probe_request(protocol: ScaleProtocol) -> tuple[Command, bytes] | None:
    """The least intrusive request: IDENTIFY when the protocol has it, else READ, and never one
    carrying a byte that some single-letter protocol takes as zero or tare."""
    if protocol.streaming:
        return None
    unsafe = _single_byte_actions()
    for command in (Command.IDENTIFY, Command.READ):
        try:
            request = protocol.encode(command)
        except (ScaleError, LookupError, NotImplementedError):
            continue
        if not unsafe.intersection(request):
            return command, request
    return None


class _Prober:
    """Tries settings and protocols on one port at a time, each attempt bounded in time."""

    def __init__(self, timeout: float, deadline: float) -> None:
        self.timeout = timeout
        self.deadline = deadline

    def out_of_time(self) -> bool:
        return time.monotonic() >= self.deadline

    def port(self, url: str, plan: list[_Step]) -> _PortResult:
        """Try the ``plan`` in order on ``url`` until something answers for certain."""
        result = _PortResult()
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
                if _settings_refused(exc):
                    if link not in result.refused:
                        result.refused.append(link)
                    continue
                result.problem = _port_problem(exc)
                result.denied = bool(_errnos(exc) & {errno.EACCES, errno.EPERM})
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
    ) -> tuple[_Answer | None, bool]:
        weak: _Answer | None = None
        answer, heard = self._exchange(url, transport, link, ordered, None)
        if answer is not None and answer.certain:
            return answer, heard
        weak = answer
        groups: dict[bytes, tuple[Command, list[ScaleProtocol]]] = {}
        for protocol in ordered:
            request = _probe_request(protocol)
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
    ) -> tuple[_Answer | None, bool]:
        """Listen (``ask`` None) or send one request, and judge what comes back."""
        framers = [(p, p.make_framer()) for p in protocols]
        transport.flush_input()
        if ask is not None:
            transport.write(ask[1])
        deadline = time.monotonic() + self.timeout
        heard = False
        weak: _Answer | None = None
        while time.monotonic() < deadline:
            data = transport.read()
            if not data:
                continue
            heard = True
            complete = False
            for protocol, framer in framers:
                for frame in framer.feed(data):
                    complete = True
                    answer = self._judge(url, protocol, link, frame, ask)
                    if answer is not None and answer.certain:
                        return answer, heard
                    weak = weak or answer
            if complete and ask is not None:  # one request, one reply: do not wait longer
                deadline = min(deadline, time.monotonic() + _REPLY_GRACE)
        return weak, heard

    @staticmethod
    def _judge(
        url: str,
        protocol: ScaleProtocol,
        link: LinkSettings,
        frame: bytes,
        ask: tuple[Command, bytes] | None,
    ) -> _Answer | None:
        try:
            reply = protocol.decode(frame)
        except ScaleRefused:  # it speaks the protocol, but said no: keep looking
            return _Answer(url, protocol, link, frame, ask[1] if ask else None, certain=False)
        except Exception:  # garbled, another protocol, or a codec bug: not an answer
            return None
        if ask is None:
            if not isinstance(reply, Reading):
                return None
        elif not protocol.answers(ask[0], reply):
            return None
        parity_bits = link.bytesize == 8 and any(b & 0x80 for b in frame)
        return _Answer(url, protocol, link, frame, ask[1] if ask else None, certain=not parity_bits)


def _plain(link: LinkSettings) -> LinkSettings:
    """The link without handshake: probing must never block on a CTS line nobody drives."""
    return LinkSettings(link.baudrate, link.bytesize, link.parity, link.stopbits)


def _probe_plan(
    protocols: list[ScaleProtocol], bauds: list[int] | None, framings: list[str] | None
) -> list[_Step]:
    """What to try, in order: each protocol at its own link (most scales keep their factory
    settings), then every baud with every framing for the protocols not yet tried there."""
    if bauds is None:
        bauds = list(dict.fromkeys([*(p.link.baudrate for p in protocols), *_PROBE_BAUDS]))
        bauds.sort(key=lambda b: _PROBE_BAUDS.index(b) if b in _PROBE_BAUDS else len(_PROBE_BAUDS))
    if framings is None:
        framings = list(dict.fromkeys([*_PROBE_FRAMINGS, *(_framing(p.link) for p in protocols)]))
    own: dict[LinkSettings, list[ScaleProtocol]] = {}
    for p in protocols:
        if p.link.baudrate in bauds and _framing(p.link) in framings:
            own.setdefault(_plain(p.link), []).append(p)
    plan: list[_Step] = list(own.items())
    for baud in bauds:
        for bits, parity, stop in (_parse_framing(f) for f in framings):
            link = LinkSettings(baud, bits, parity, stop)
            rest = [p for p in protocols if p not in own.get(link, [])]
            if rest:
                plan.append((link, rest))
    return plan


def _describe_link(link: LinkSettings) -> str:
    return f"{link.baudrate} {_framing(link)}"


def _stable_name(url: str) -> str:
    """``/dev/ttyUSB0`` may be another device after a replug: its by-id or by-path link."""
    if not url.startswith("/dev/tty"):
        return url
    real = os.path.realpath(url)
    for pattern in ("/dev/serial/by-id/*", "/dev/serial/by-path/*"):
        for link in sorted(glob.glob(pattern)):
            if os.path.realpath(link) == real:
                return link
    return url


def _config_lines(answer: _Answer) -> list[str]:
    link = answer.link
    stop = int(link.stopbits) if float(link.stopbits).is_integer() else link.stopbits
    return [
        "[scale]",
        f"url = {json.dumps(_stable_name(answer.url))}",
        f"protocol = {json.dumps(answer.protocol.name)}",
        f"baudrate = {link.baudrate}",
        f"bytesize = {link.bytesize}",
        f'parity = "{link.parity}"',
        f"stopbits = {stop}",
    ]


@scale.command("probe")
@click.option(
    "--ports",
    multiple=True,
    help="Ports or pyserial URLs to try, repeated or comma-separated (default: the serial "
    "ports found, /dev/serial/by-id/* first).",
)
@click.option(
    "--bauds",
    multiple=True,
    help="Baud rates to try (default: each protocol's own, then 9600 4800 2400 19200).",
)
@click.option(
    "--framings",
    multiple=True,
    help="Framings to try (default: each protocol's own, then 8N1 and 7E1).",
)
@click.option("--protocols", "protocol_list", multiple=True, help="Protocols (default: all).")
@click.option(
    "--timeout",
    type=click.FloatRange(0.05, 10),
    default=0.5,
    show_default=True,
    help="Seconds to wait for an answer per attempt (raise it for a slow streaming scale).",
)
@click.option(
    "--max-time",
    type=click.FloatRange(1, 3600),
    default=300,
    show_default=True,
    help="Give up after this many seconds in all.",
)
@click.pass_context
def probe_cmd(
    ctx: click.Context,
    ports: tuple[str, ...],
    bauds: tuple[str, ...],
    framings: tuple[str, ...],
    protocol_list: tuple[str, ...],
    timeout: float,
    max_time: float,
) -> None:
    """Find the scale: try ports, baud rates, framings and protocols; print the config lines.

    Only harmless requests are sent (identify or read, never zero or tare); streaming
    protocols are only listened to. The scanner's port from the config is never touched.
    Exit 0 when a scale answered, 1 when nothing did.

    \b
    Examples:
      station scale probe
      station scale probe --ports /dev/ttyUSB0 --bauds 9600,2400 --framings 7E1
      station scale probe --ports socket://192.168.1.50:4001 --protocols mt-sics
    """
    started = time.monotonic()
    config = _optional_config(ctx)  # first: it sets the language of what follows
    names = _protocol_names(_split(protocol_list)) if protocol_list else list(PROTOCOLS)
    protocols = [PROTOCOLS[n] for n in names]
    try:
        baud_list = [int(b) for b in _split(bauds)] or None
        if baud_list and min(baud_list) < 50:
            raise ValueError
    except ValueError:
        raise click.BadParameter(_("baud rates are whole numbers"), param_hint="--bauds") from None
    framing_list = _split(framings) or None
    if framing_list:
        framing_list = [_framing(LinkSettings(9600, *_parse_framing(f))) for f in framing_list]
    plan = _probe_plan(protocols, baud_list, framing_list)

    others: list[str] = []  # ports of the station's other devices
    if config is not None:
        others.append(config.scanner.url)
    else:
        click.echo(
            _("No readable station config: other devices' ports are not known; use --ports."),
            err=True,
        )
    explicit = _split(ports)
    candidates = explicit or _default_ports()
    if not candidates:
        _fail(
            _(
                "No serial port found ({patterns}). Plug in the scale's cable or USB adapter, "
                "or give --ports (e.g. socket://host:port for a network converter)."
            ).format(patterns=", ".join(_PORT_PATTERNS)),
            1,
        )

    prober = _Prober(timeout, started + max_time)
    found: list[_Answer] = []
    heard_only = False
    denied = False
    held = {} if explicit else _holders()
    console = set() if explicit else _console_ports()
    for url in candidates:
        if any(_same_device(url, path) for path in others):
            click.echo(
                _("{port}: skipped, it is the scanner's port (see the config)").format(port=url)
            )
            continue
        real = os.path.realpath(url)
        if os.path.basename(real) in console:
            click.echo(_("{port}: skipped, it is the system console").format(port=url))
            continue
        if held.get(real):
            click.echo(
                _("{port}: skipped, in use by {holders} (give --ports to try it anyway)").format(
                    port=url, holders=", ".join(held[real])
                )
            )
            continue
        if prober.out_of_time():
            click.echo(_("{port}: not tried, time limit reached").format(port=url))
            continue
        click.echo(_("Trying {port}…").format(port=url), err=True)
        result = prober.port(url, plan)
        answer = result.answer
        if answer is not None:
            found.append(answer)
            how = (
                _("replied {frame}") if answer.request is not None else _("sends {frame} by itself")
            ).format(frame=_escape(answer.frame))
            click.echo(
                _("{port}: {protocol} at {baud} {framing}, {how}").format(
                    port=url,
                    protocol=answer.protocol.name,
                    baud=answer.link.baudrate,
                    framing=_framing(answer.link),
                    how=how,
                )
            )
            if not answer.certain:
                click.echo("  " + _("(not certain: check with station scale read)"))
            continue
        if result.problem is not None:
            denied = denied or result.denied
            click.echo(_("{port}: {problem}").format(port=url, problem=result.problem))
        elif result.heard:
            heard_only = True
            click.echo(
                _("{port}: data received at {settings} but no protocol decoded it").format(
                    port=url, settings=", ".join(_describe_link(s) for s in result.heard[:3])
                )
            )
        else:
            click.echo(_("{port}: nothing answered").format(port=url))
        if result.refused:
            click.echo(
                "  "
                + _("the port refused: {settings}").format(
                    settings=", ".join(_describe_link(s) for s in result.refused[:4])
                    + (" …" if len(result.refused) > 4 else "")
                )
            )
        if result.out_of_time:
            click.echo("  " + _("stopped: time limit reached (--max-time)"))
    click.echo("", err=True)
    if found:
        path = _root_obj(ctx).get("config_path") or config_path(None)
        click.echo(_("Config lines to paste into {path}:").format(path=path))
        for i, answer in enumerate(found):
            if i:
                click.echo(_("# or, for {port}:").format(port=answer.url))
            for text in _config_lines(answer):
                click.echo(text)
        return
    hints = [
        _("No scale answered. Check:"),
        "  - " + _("the cable (a null-modem cable or adapter is often needed) and the power;"),
        "  - "
        + _(
            "the scale's interface menu: serial output on, its baud rate and framing, and the "
            "print mode (continuous or on request);"
        ),
        "  - "
        + _(
            "that the user may open serial ports: the dialout group "
            "(sudo usermod -aG dialout $USER);"
        ),
    ]
    if heard_only:
        hints.append(
            "  - "
            + _(
                "data came but was not understood: capture it (spy:// URL) and run "
                "station scale decode, or use the configurable ASCII protocol;"
            )
        )
    if denied:
        hints.append("  - " + _("some ports were refused: see 'permission denied' above."))
    _fail("\n".join(hints), 1)
