"""The scale's own span adjustment, driven from ``station calibrate span``, per protocol.

Three shapes, from the manuals (the codecs' docstrings cite them):

- MT-SICS ``C2``: the balance leads, its ``C2 B "<mass>"`` replies ask for each load, ``C2 A``
  ends it;
- A&D ``CAL``: the balance leads on its own display; over the line it acknowledges twice (AK on
  receipt, AK when done) or answers ``EC,Exx`` (E20/E21: the weight was too heavy/too light);
- Kern KCP ``JZ`` / ``JG`` / ``JS``: the station leads: the empty pan is the zero, the reference
  on the pan the adjustment weight, then the scale saves it.

Each returns the record's data, or None when the scale turns out not to know the command (then
the span is the station-side gain). Protocols with none of these (SMA, NCI, Toledo, Ohaus's
Ranger/Defender/Valor set, Adam, Dini Argeo, Kern s/w/t and TM) keep the station-side gain.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from common.exits import EX_IOERR, EX_UNAVAILABLE
from common.i18n import _
from common.units import MassError, format_mass_exact, parse_mass_text
from drivers.base import PortError, ScaleError, ScaleRefused
from drivers.scale import Ack, Command, Reply, ScaleProtocol
from drivers.serialio import escape_frame

from .calibration_flow import Session, Stopped

__all__ = ["adjust_on_scale", "adjustable", "adjustment_command", "asked_mass"]

_STEPS = (Command.ADJUST_ZERO, Command.ADJUST_SPAN, Command.ADJUST_SAVE)


def adjustment_command(protocol: ScaleProtocol) -> str | None:
    """The scale's own span adjustment in its protocol (``"C2"``, ``"CAL"``, ``"JZ JG JS"``),
    None when the station's gain is the only span there is."""
    steps = [protocol.request(c) for c in _STEPS]
    if all(steps):
        return " ".join(r.strip().decode("ascii", "replace") for r in steps if r)
    request = protocol.request(Command.ADJUST_EXTERNAL)
    return request.strip().decode("ascii", "replace") if request else None


def adjustable(s: Session) -> bool:
    """The scale can adjust its own span through its protocol."""
    return adjustment_command(s.scale.protocol) is not None


def adjust_on_scale(s: Session, reference: int) -> dict[str, Any] | None:
    """The scale's own adjustment with ``reference`` mg: the record's data, or None when the
    scale does not know the command (then: station-side)."""
    if all(s.supports(c) for c in _STEPS):
        return _steps(s, reference)
    replies: list[str] = []
    first = _start(s, Command.ADJUST_EXTERNAL)
    if first is None:
        return None
    replies.append(escape_frame(first.raw).strip())
    frames = _replies(s, s.clock.now() + s.wait + 5, replies)
    if isinstance(first, Ack) and first.command == "AK":
        return _acknowledged(s, frames, replies, reference)
    return _c2(s, first, frames, replies, reference)


def _start(s: Session, command: Command) -> Reply | None:
    """Send the first command of an adjustment; None when the scale does not know it."""
    try:
        return s.command(command, timeout=max(5.0, s.settings.reply_timeout))
    except ScaleRefused as exc:
        if getattr(exc, "status", "") == "ES" or getattr(exc, "code", "") == "E01":
            s.say(_("The scale does not know the adjustment command: station-side correction."))
            return None
        raise Stopped(_("The scale refused the adjustment: {reason}").format(reason=exc)) from exc
    except ScaleError as exc:
        raise Stopped(
            _("The scale did not start the adjustment: {reason}").format(reason=exc),
            EX_UNAVAILABLE,
        ) from exc


def _c2(
    s: Session, first: Reply, frames: Iterator[Reply], replies: list[str], reference: int
) -> dict[str, Any]:
    """MT-SICS C2: the scale asks for each load (``C2 B``) until ``C2 A``."""
    reply = first
    while True:
        # other frames (weights shown meanwhile, other replies) are skipped
        if isinstance(reply, Ack) and reply.command == "C2":
            if reply.status == "A":
                return {"method": "scale", "command": "C2", "replies": replies}
            if reply.status == "B":
                asked = asked_mass(reply)
                if asked is None or asked == 0:
                    s.ask(_("The scale asks: take the reference mass off the pan."))
                else:
                    if asked != reference:
                        raise Stopped(
                            _(
                                "The scale asks for {asked} but --reference is {reference}: "
                                "use the mass the scale is set for, or change its adjustment "
                                "weight."
                            ).format(
                                asked=format_mass_exact(asked),
                                reference=format_mass_exact(reference),
                            )
                        )
                    s.ask(
                        _("The scale asks for {mass}: place the reference mass.").format(
                            mass=format_mass_exact(asked)
                        )
                    )
        reply = next(frames)


def _acknowledged(
    s: Session, frames: Iterator[Reply], replies: list[str], reference: int
) -> dict[str, Any]:
    """A&D CAL, sent with the pan empty: received (the first AK), the balance waits for its
    calibration weight (its display shows which, and leads); the second AK says done."""
    s.ask(
        _(
            "Place the reference mass {mass} in the centre of the pan: the balance calibrates "
            "with it (follow its display; it must be the weight the balance shows)."
        ).format(mass=format_mass_exact(reference))
    )
    while True:
        reply = next(frames)
        if isinstance(reply, Ack) and reply.command == "AK":
            return {"method": "scale", "command": "CAL", "replies": replies}


def _steps(s: Session, reference: int) -> dict[str, Any] | None:
    """Kern KCP: JZ with the empty pan, JG with the reference on it, JS to keep it."""
    replies: list[str] = []
    first = _start(s, Command.ADJUST_ZERO)  # the pan was emptied just before
    if first is None:
        return None
    replies.append(escape_frame(first.raw).strip())
    s.take(
        _("Place the reference mass {mass} in the centre of the pan.").format(
            mass=format_mass_exact(reference)
        ),
        None,
        corrected=False,
        since=None,
    )
    for command in (Command.ADJUST_SPAN, Command.ADJUST_SAVE):
        try:
            reply = s.command(command, timeout=max(5.0, s.settings.reply_timeout))
        except ScaleError as exc:
            raise Stopped(
                _("The scale refused the adjustment: {reason}").format(reason=exc)
            ) from exc
        replies.append(escape_frame(reply.raw).strip())
    s.say("  " + _("The scale saved its adjustment: take the reference mass off the pan."))
    return {"method": "scale", "command": "JZ JG JS", "replies": replies}


def _replies(s: Session, deadline: float, replies: list[str]) -> Iterator[Reply]:
    """The scale's replies during its adjustment, each kept in ``replies``; the run stops when
    the scale aborts, the port fails or the deadline passes."""
    while True:
        try:
            reply = s.scale.read_frame(deadline)
        except ScaleRefused as exc:
            raise Stopped(
                _(
                    "The scale aborted the adjustment ({reason}): the load did not settle "
                    "as asked in time, or it was not the weight the scale expects; nothing "
                    "changed on the scale."
                ).format(reason=exc)
            ) from exc
        except PortError as exc:
            raise Stopped(_("Scale disconnected: {error}").format(error=exc), EX_IOERR) from exc
        if reply is None:
            raise Stopped(_("The scale did not finish the adjustment in time."), EX_UNAVAILABLE)
        replies.append(escape_frame(reply.raw).strip())
        yield reply


def asked_mass(reply: Ack) -> int | None:
    """The mass a ``C2 B`` reply asks for (``C2 B "10.00 kg"``), in mg."""
    text = " ".join(reply.params).replace('"', " ").split()
    if len(text) < 2:
        return None
    try:
        return parse_mass_text(f"{text[0]} {text[1]}")
    except MassError:
        return None
