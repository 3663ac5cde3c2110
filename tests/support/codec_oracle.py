"""Test helpers for the ASCII scale codecs: an exact oracle and the properties fuzzing asserts."""

from __future__ import annotations

import re
from collections.abc import Callable
from fractions import Fraction

from drivers.base import MG_PER_UNIT, Reading, ScaleError
from drivers.scale import Reply

LB = Fraction("453592.37")
OZ = Fraction("28349.523125")

_NUMBER = re.compile(r"(\d+):(\d+(?:[.,]\d*)?)|(\d+(?:[.,]\d*)?|[.,]\d+)")
_INTEGER = re.compile(r"(?:(?!)(x)(x))?(\d+)")  # groups 1 and 2 never take part
_WORD = re.compile(r"[A-Za-z]+(?::[A-Za-z]+)?")


def exact_mg(value: str, unit: str) -> int:
    """Independent oracle: exact rational arithmetic, banker's rounding (as the codecs)."""
    text = value.replace(" ", "").replace(",", ".")
    negative = text.startswith("-")
    text = text.lstrip("+-")
    if unit.lower() == "lb:oz":
        pounds, ounces = text.split(":")
        mg = Fraction(pounds) * LB + Fraction(ounces) * OZ
    else:
        mg = Fraction(text) * Fraction(MG_PER_UNIT[unit.lower()])
    return round(-mg if negative else mg)


def decoded(decode: Callable[[bytes], Reply], frame: bytes) -> Reply | None:
    """``decode(frame)``, or None when it raised a ScaleError (anything else propagates)."""
    try:
        return decode(frame)
    except ScaleError:
        return None


def masses(reply: Reply | None) -> dict[str, int]:
    """The masses a reply carries, by field name."""
    if isinstance(reply, Reading):
        fields = {
            "net": reply.net_mg,
            "gross": reply.gross_mg,
            "tare": reply.tare_mg,
            "unit_weight": reply.unit_weight_mg,
        }
        return {k: v for k, v in fields.items() if v is not None}
    if reply is not None and reply.mass_mg is not None:
        return {"ack": reply.mass_mg}
    return {}


def assert_faithful(reply: Reply | None, frame: bytes) -> None:
    """Every mass in ``reply`` is a number printed in ``frame`` converted exactly with a unit
    printed in ``frame`` (or the sum or difference of two such: net = gross - tare)."""
    found = masses(reply)
    if not found:
        return
    text = frame.decode("ascii", "replace")
    units = {w.lower() for w in _WORD.findall(text)}
    units = {u for u in units if u in MG_PER_UNIT or u == "lb:oz"}
    assert units, f"a mass without a unit in {frame!r}"
    values: set[int] = set()
    # every number starting at every position: ".10.001" holds "10.001" as well as ".10", and
    # "2,1" in a comma-separated string holds "2" as well as "2,1"
    starts = [_NUMBER.match(text, i) for i in range(len(text))]
    starts += [_INTEGER.match(text, i) for i in range(len(text))]
    for match in (m for m in starts if m is not None):
        for unit in units:
            try:
                if match.group(1) is not None:
                    if unit != "lb:oz":
                        continue
                    mg = exact_mg(f"{match.group(1)}:{match.group(2)}", unit)
                elif unit == "lb:oz":
                    continue
                else:
                    mg = exact_mg(match.group(3), unit)
            except (ValueError, ZeroDivisionError):
                continue
            values |= {mg, -mg}
    derived = (
        values | {a + b for a in values for b in values} | {a - b for a in values for b in values}
    )
    for name, mg in found.items():
        assert mg in derived, f"{name}={mg} mg is not printed in {frame!r}"


def flip(frame: bytes, where: int, byte: int) -> bytes:
    return frame[:where] + bytes([byte]) + frame[where + 1 :]


# Bytes that make a changed frame still look like a frame: signs, digits, separators, unit
# letters, status letters. Random bytes alone rarely reach past the first check.
LIKELY = b"-+ .,:0123456789?kgmlbozKGLBPCSNTGUE\r\n"
