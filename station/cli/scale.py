"""``station scale …``: read, watch, tare and zero the scale; list its protocols."""

from __future__ import annotations

import json
import re
import signal
import sys
import time
from datetime import datetime

import click

from common.exits import EX_IOERR, fail
from common.i18n import _
from common.units import format_mass_exact
from drivers.base import PortError, Reading, ScaleError, ScaleRefused, ScaleTimeout
from drivers.scale import PROTOCOLS, Ack, Command
from drivers.scale.capture import is_net, reply_json
from drivers.scale.link import supports
from drivers.serialio import escape_frame

from ..calibration_adjust import adjustment_command
from .scale_decode import decode_cmd
from .scale_probe import probe_cmd
from .target import link_options, no_answer, open_scale, scale_target

__all__ = ["describe", "scale"]

_READ_TIMEOUT = 2.0  # seconds for one weight, when neither --timeout nor the config says
_STABLE_TIMEOUT = 5.0  # seconds to wait for a stable weight with --stable
_COMMAND_TIMEOUT = 3.0  # zero/tare may wait for stability on the scale
_SENTENCE_END = re.compile(r"(?<!\be\.g)(?<!\bi\.e)(?<!\betc)\.(?=\s|$)")


def _first_sentence(text: str) -> str:
    match = _SENTENCE_END.search(text)
    return text[: match.start() + 1] if match else text


def describe(reading: Reading) -> str:
    """One human line: weight in kg, net/gross, stable, tare, pieces, unit as sent."""
    parts: list[str] = []
    if reading.overload:
        parts.append(_("OVERLOAD (above the scale's range)"))
    elif reading.underload:
        parts.append(_("UNDERLOAD (below the scale's range)"))
    elif reading.net_mg is None:
        parts.append(_("no weight"))
    else:
        parts.append(format_mass_exact(reading.net_mg))
        net = is_net(reading)
        if net is not None:
            parts.append(_("net") if net else _("gross"))
    parts.append(_("stable") if reading.stable else _("unstable (in motion)"))
    if reading.tare_mg:
        parts.append(_("tare {mass}").format(mass=format_mass_exact(reading.tare_mg)))
    if reading.pieces is not None:
        parts.append(_("{n} pieces").format(n=reading.pieces))
    if reading.unit_weight_mg is not None:
        parts.append(
            _("piece weight {mass}").format(mass=format_mass_exact(reading.unit_weight_mg))
        )
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
        weight = format_mass_exact(reading.net_mg)
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
    """List the scale protocols: the name, a short description, and how `station calibrate
    span` adjusts it: with the scale's own command (MT-SICS C2, A&D CAL, Kern KCP JZ/JG/JS), or
    with a station-side gain.

    \b
    Example:
      station scale protocols
    """
    names = sorted(PROTOCOLS)
    width = max((len(n) for n in names), default=0)
    for name in names:
        description = _first_sentence(PROTOCOLS[name].description)
        command = adjustment_command(PROTOCOLS[name])
        span = (
            _("span: the scale's own ({command})").format(command=command)
            if command
            else _("span: station-side gain")
        )
        click.echo(f"{name:<{width}}  {description}  [{span}]")


@scale.command("read")
@link_options
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
    target = scale_target(ctx, url, protocol_name, baudrate, framing)
    limit = timeout or (_STABLE_TIMEOUT if stable else _READ_TIMEOUT)
    with open_scale(target) as line:
        try:
            reading = line.reading(stable, limit)
        except ScaleRefused as exc:
            fail(_("Refused by the scale: {reason}").format(reason=exc), 1)
        except ScaleTimeout as exc:
            last = exc.args[1] if len(exc.args) > 1 else None
            if stable and isinstance(last, Reading):
                fail(
                    _("No stable weight within {s:g} s (last: {reading}).").format(
                        s=limit, reading=describe(last)
                    ),
                    1,
                )
            fail(no_answer(target, limit), 1)
        except PortError as exc:
            fail(_("Scale disconnected: {error}").format(error=exc), EX_IOERR)
        except ScaleError as exc:
            fail(_("The scale gave no weight: {reason}").format(reason=exc), 1)
    if as_json:
        out = reply_json(reading, reading.raw)
        out.update(url=target.url, protocol=target.protocol.name)
        click.echo(json.dumps(out, ensure_ascii=False))
        return
    click.echo(describe(reading))


def _send_command(
    ctx: click.Context,
    command: Command,
    url: str | None,
    protocol_name: str | None,
    baudrate: int | None,
    framing: str | None,
    timeout: float,
) -> None:
    target = scale_target(ctx, url, protocol_name, baudrate, framing)
    done = {Command.TARE: _("Tare done."), Command.ZERO: _("Zero done.")}[command]
    if not supports(target.protocol, command):
        fail(
            _("The {protocol} protocol has no {command} command: use the key on the scale.").format(
                protocol=target.protocol.name, command=command.value
            ),
            1,
        )
    with open_scale(target) as line:
        try:
            reply = line.exchange(command, timeout)
        except ScaleRefused as exc:
            fail(_("Refused by the scale: {reason}").format(reason=exc), 1)
        except ScaleTimeout:
            fail(no_answer(target, timeout), 1)
        except PortError as exc:
            fail(_("Scale disconnected: {error}").format(error=exc), EX_IOERR)
    message = done
    if isinstance(reply, Ack) and reply.mass_mg is not None:
        message += " " + _("Tare in use: {mass}.").format(mass=format_mass_exact(reply.mass_mg))
    elif isinstance(reply, Reading):
        message += " " + _("The scale shows: {reading}.").format(reading=describe(reply))
    click.echo(message + " " + _("(scale answered: {raw})").format(raw=escape_frame(reply.raw)))


_timeout_option = click.option(
    "--timeout",
    type=click.FloatRange(0.1, 600),
    default=_COMMAND_TIMEOUT,
    show_default=True,
    help="Seconds to wait for the scale's answer.",
)


@scale.command("tare")
@link_options
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
@link_options
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
@link_options
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
    target = scale_target(ctx, url, protocol_name, baudrate, framing)
    limit = timeout or target.reply_timeout or 1.0
    screen = _Screen(sys.stdout.isatty())
    line = open_scale(target)
    click.echo(
        _("Watching {url} ({protocol}); Ctrl-C to stop.").format(
            url=target.url, protocol=target.protocol.name
        ),
        err=True,
    )
    seen = 0
    trouble: str | None = None  # what is wrong now, said once until it changes
    # Ctrl-C stops it even when started with SIGINT ignored (a background job of a script
    # inherits that, and Python then never raises KeyboardInterrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)
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


scale.add_command(decode_cmd)
scale.add_command(probe_cmd)
