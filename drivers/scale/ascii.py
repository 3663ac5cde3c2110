"""Configurable ASCII protocol for scales nobody wrote a codec for: request, terminator, regex.

:func:`make_protocol` builds a :class:`ScaleProtocol` from a request (``None`` = the scale
streams), a terminator and a regular expression with named groups:

- ``weight`` (required): the number, e.g. ``' +0012,50'``; decimal point or comma, zero
  padding, blanks, a sign of its own; ``12:07.50`` with the unit ``lb:oz``;
- ``sign``: a separate sign (``-`` negates; ``+`` or blank do not);
- ``unit``: ``g``, ``kg``, ``mg``, ``t``, ``lb``, ``oz``, ``lb:oz``… (any case), or ``pcs``
  for a count; without this group, ``unit=`` gives the unit of every frame;
- ``stable``: the frame is stable when this group matched (and, with ``stable_when``, equals
  it, ignoring case and blanks); without the group, every frame counts as stable — configure the
  scale to send stable weights only;
- ``pieces``: a piece count sent beside the weight;
- ``net``: a gross/net marker: ``N``, ``NT``, ``NET``, ``NW`` mean net, ``G``, ``GS``,
  ``GROSS``, ``GW``, ``B``, ``B/G``, ``BRUTTO`` gross; other text is refused;
- ``over`` / ``under``: markers of out-of-range frames (the weight and the unit may then be
  absent).

The whole frame must match (``fullmatch``): a pattern that would only find a weight somewhere
in the text cannot pick digits out of garbage.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable

from ..base import FrameError, Reading
from ..serialio import LineFramer, LinkSettings
from ._fields import COUNT_UNITS, count, is_mass_unit, mass_mg, unsupported
from .protocol import Command, Reply, ScaleProtocol

__all__ = ["DEFAULT_REGEX", "GROUPS", "PROTOCOL", "make_protocol"]

GROUPS = frozenset({"weight", "sign", "unit", "stable", "pieces", "net", "over", "under"})
# The sign is part of the weight group, blanks included, so the field rule applies: a sign is
# the first character or touches the digits ("-  1.5 kg", "  -1.5 kg"), never inside padding.
# A ``?`` after the unit marks motion (the Ohaus/Radwag convention): the empty ``stable`` group
# takes part in the match only when no ``?`` follows. A line ``OL`` (or ``+OL``) is over
# capacity, ``UL`` (or ``-OL``) under zero, as most indicators display them.
DEFAULT_REGEX = (
    r"(?P<weight> *[+-]? *\d+(?::\d+)?(?:[.,]\d+)?) *(?P<unit>[a-zA-Z]+(?::[a-zA-Z]+)?)"
    r"(?:(?P<stable>) *| *\? *)"
    r"| *(?:(?P<over>\+?OL)|(?P<under>-OL|UL)) *"
)
_NET_WORDS = frozenset({"N", "NT", "NET", "NW", "NETTO"})
_GROSS_WORDS = frozenset({"G", "GS", "GR", "GROSS", "GW", "B", "B/G", "BRUTTO"})


def _check_regex(regex: str, unit: str | None) -> re.Pattern[str]:
    try:
        pattern = re.compile(regex)
    except re.error as exc:
        raise ValueError(f"invalid regex {regex!r}: {exc}") from exc
    names = set(pattern.groupindex)
    if "weight" not in names:
        raise ValueError(
            f"the regex needs a named group 'weight', e.g. (?P<weight>\\d+): {regex!r}"
        )
    unknown = names - GROUPS
    if unknown:
        raise ValueError(
            f"unknown named group(s) {', '.join(sorted(unknown))} in {regex!r}; "
            f"known: {', '.join(sorted(GROUPS))}"
        )
    if "unit" not in names and unit is None:
        raise ValueError(
            f"the regex has no named group 'unit': give unit= (e.g. unit='kg'): {regex!r}"
        )
    if unit is not None and not (is_mass_unit(unit) or unit.lower() in COUNT_UNITS):
        raise ValueError(f"unknown unit {unit!r}")
    return pattern


def _net_marker(text: str | None, frame: bytes) -> bool | None:
    if text is None or not text.strip():
        return None
    word = text.strip().upper()
    if word in _NET_WORDS:
        return True
    if word in _GROSS_WORDS:
        return False
    raise FrameError(f"unknown gross/net marker {text!r}: {frame!r}")


def _text(frame: bytes, terminator: bytes) -> str:
    """The frame as text: 7-bit ASCII (control characters such as STX allowed for the regex)."""
    line = frame.rstrip(terminator)
    if not line or any(b > 0x7E for b in line):
        # bit 7 set: usually a 7E1 scale read as 8N1
        raise FrameError(f"not a 7-bit ASCII frame: {frame!r}")
    return line.decode("ascii")


def _decoder(
    pattern: re.Pattern[str], terminator: bytes, default_unit: str | None, stable_when: str | None
) -> Callable[[bytes], Reply]:
    has_stable = "stable" in pattern.groupindex
    wanted = stable_when.strip().upper() if stable_when is not None else None

    def decode(frame: bytes) -> Reply:
        match = pattern.fullmatch(_text(frame, terminator))
        if match is None:
            raise FrameError(f"frame does not match the configured regex: {frame!r}")
        groups = match.groupdict()
        unit = groups.get("unit") or default_unit
        if groups.get("over") is not None or groups.get("under") is not None:
            # out of range: no weight, and often no unit either ("OL")
            over = groups.get("over") is not None
            unit = (unit or "").strip()
            return Reading(None, unit, False, overload=over, underload=not over, raw=frame)
        if unit is None:
            raise FrameError(f"no unit in the frame: {frame!r}")
        unit = unit.strip()
        stable = True
        if has_stable:
            marker = groups["stable"]
            stable = marker is not None and (wanted is None or marker.strip().upper() == wanted)
        weight = groups["weight"]
        if weight is None:
            raise FrameError(f"no weight in the frame: {frame!r}")
        sign = (groups.get("sign") or "").strip()
        if sign not in ("", "+", "-"):
            raise FrameError(f"sign group is not + or -: {frame!r}")
        if sign == "-":
            if weight.strip().startswith(("+", "-")):
                raise FrameError(f"two signs: {frame!r}")
            weight = "-" + weight.strip()
        pieces = count(groups["pieces"]) if groups.get("pieces") is not None else None
        if unit.lower() in COUNT_UNITS:
            if pieces is not None:
                raise FrameError(f"two piece counts: {frame!r}")
            return Reading(None, unit, stable, pieces=count(weight), raw=frame)
        mg = mass_mg(weight, unit)
        net = _net_marker(groups.get("net"), frame)
        if net is False:
            return Reading(mg, unit, stable, gross_mg=mg, pieces=pieces, raw=frame, net=False)
        return Reading(mg, unit, stable, pieces=pieces, raw=frame, net=net)

    return decode


def make_protocol(
    request: bytes | None,
    terminator: bytes,
    regex: str,
    *,
    name: str = "ascii",
    stable_when: str | None = None,
    link: LinkSettings | None = None,
    unit: str | None = None,
) -> ScaleProtocol:
    """A protocol for a scale whose frames ``regex`` describes (see the module docstring).

    ``request`` is sent to ask for a weight (``None``: the scale streams). ``terminator`` holds
    the bytes that end a frame, any of them (``b'\\r\\n'``: CR or LF, so either line ending
    works). ``unit`` is the unit of frames that carry none. Raises :class:`ValueError` at once
    for a regex that does not compile, lacks the ``weight`` group, names an unknown group, or
    leaves the unit unknown.
    """
    if not terminator:
        raise ValueError("terminator must not be empty")
    if request is not None and not request:
        raise ValueError("request must be None (streaming) or non-empty bytes")
    pattern = _check_regex(regex, unit)
    decode = _decoder(pattern, terminator, unit, stable_when)

    def encode(command: Command) -> bytes:
        if request is not None and command is Command.READ:
            return request
        raise unsupported(command, name)

    def answers(command: Command, reply: Reply) -> bool:
        return command is Command.READ and isinstance(reply, Reading)

    streams = "streams" if request is None else f"polled with {request!r}"
    return ScaleProtocol(
        name=name,
        description=f"configurable ASCII ({streams}, frames end with {terminator!r}): {regex}",
        link=link or LinkSettings(9600, 8, "N", 1),
        streaming=request is None,
        make_framer=lambda: LineFramer(terminator),
        decode=decode,
        encode=encode,
        answers=answers,
    )


PROTOCOL = dataclasses.replace(
    make_protocol(None, b"\r\n", DEFAULT_REGEX),
    description=(
        "configurable ASCII: streamed CR LF lines '[+-] <weight> <unit> [?]' (OL/UL out of "
        "range) by default; request, terminator and a regex with named groups set in config; "
        "9600 8N1"
    ),
)
