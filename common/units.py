"""Masses and numbers: the one exact parser (text → mg) and the one formatter (mg → text)."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, localcontext

from .i18n import _, language

__all__ = [
    "LB_OZ",
    "MG_PER_UNIT",
    "MassError",
    "count",
    "format_mass",
    "format_mass_exact",
    "format_number",
    "is_mass_unit",
    "kg_text",
    "mass_mg",
    "number",
    "parse_mass_text",
    "round_half_up",
    "to_mg",
]


class MassError(ValueError):
    """A text is not a number, a mass, or a piece count this module can read exactly."""


# Exact factors to milligrams (reference §9.8). Keys are lower-case units as scales send them.
MG_PER_UNIT: dict[str, Decimal] = {
    "mg": Decimal(1),
    "g": Decimal(1000),
    "kg": Decimal(1_000_000),
    "t": Decimal(1_000_000_000),
    "lb": Decimal("453592.37"),
    "oz": Decimal("28349.523125"),
    "ozt": Decimal("31103.4768"),
    "ct": Decimal(200),
    "gn": Decimal("64.79891"),
}
LB_OZ = "lb:oz"

# One decimal number: optional sign, blanks allowed between sign and digits (Ohaus polarity
# column), zero padding, one decimal separator (point or comma). No exponent, no grouping.
_NUMBER = re.compile(r"( *)([+-]?)( *)(\d+(?:[.,]\d*)?|[.,]\d+) *")
# Composite pounds and ounces: ``12:07.50`` (MT-SICS style) with the unit ``lb:oz``.
_LB_OZ = re.compile(r"( *)([+-]?)( *)(\d{1,6}):(\d{1,2}(?:[.,]\d*)?) *")
_COUNT = re.compile(r"( *)([+-]?)( *)(\d+) *")
# What people type: "2,5 kg", "750g", "0.020 kg" (the unit is required: "2,5" alone is ambiguous)
_TYPED = re.compile(r"^\s*([+-]?\s*(?:\d+(?:[.,]\d*)?|[.,]\d+))\s*([a-zA-Z]+)\s*$")
_MAX_CHARS = 16  # no scale sends a longer number; a longer "number" is garbage, not a huge mass
_OZ_PER_LB = 16


def _signed(match: re.Match[str] | None, text: str, what: str) -> tuple[str, str]:
    if match is None:
        raise MassError(f"not {what}: {text!r}")
    lead, sign, gap, digits = match.groups()[:4]
    if sign and lead and gap:
        raise MassError(f"sign inside the padding: {text!r}")
    return sign, digits


def number(text: str) -> Decimal:
    """The exact value of a decimal field (``' +0012,50'``, ``'-   0.20'``); never via float.

    The sign is either the field's first character (a polarity column) or touches the digits:
    a sign alone inside the blank padding is line noise, not a negative weight.
    """
    if len(text.strip()) > _MAX_CHARS:
        raise MassError(f"number field too long: {text!r}")
    sign, digits = _signed(_NUMBER.fullmatch(text), text, "a number")
    value = Decimal(digits.replace(",", "."))
    return -value if sign == "-" else value


def is_mass_unit(unit: str) -> bool:
    """Whether ``unit`` (any case) is a mass unit this module converts, ``lb:oz`` included."""
    key = unit.strip().lower()
    return key in MG_PER_UNIT or key == LB_OZ


def to_mg(value: Decimal, unit: str) -> int:
    """An exact decimal mass in ``unit`` as integer milligrams (half-even rounding, once).

    >>> to_mg(Decimal("1.250"), "kg")
    1250000
    """
    factor = MG_PER_UNIT.get(unit.strip().lower())
    if factor is None:
        raise MassError(f"not a mass unit: {unit!r}")
    with localcontext() as ctx:
        ctx.prec = 60  # exact: 16 digits times any factor fits, so the only rounding is ours
        return int((value * factor).to_integral_value())


def mass_mg(value: str, unit: str, *, units: frozenset[str] | None = None) -> int:
    """Exact integer milligrams of ``value`` in ``unit`` (half-even rounding, once, at the end).

    ``unit`` is compared case-insensitively (``Kg``, ``KG``); ``units`` restricts the accepted
    units (lower-case) to those a protocol documents. ``lb:oz`` takes ``'12:07.50'``.
    """
    key = unit.strip().lower()
    if (units is not None and key not in units) or not is_mass_unit(key):
        raise MassError(f"not a mass unit: {unit!r}")
    if key != LB_OZ:
        return to_mg(number(value), key)
    if len(value.strip()) > _MAX_CHARS:
        raise MassError(f"not a lb:oz value: {value!r}")
    match = _LB_OZ.fullmatch(value)
    sign, pounds = _signed(match, value, "a lb:oz value")
    assert match is not None
    oz = Decimal(match.group(5).replace(",", "."))
    if oz >= _OZ_PER_LB:
        raise MassError(f"ounces out of range in {value!r}")
    with localcontext() as ctx:
        ctx.prec = 60
        total = Decimal(pounds) * MG_PER_UNIT["lb"] + oz * MG_PER_UNIT["oz"]
        return int((-total if sign == "-" else total).to_integral_value())


def count(text: str) -> int:
    """A piece count: digits with an optional sign (a counting scale shows a negative count when
    pieces are taken off after a tare); the sign follows the same rule as in :func:`number`."""
    if len(text.strip()) > _MAX_CHARS:
        raise MassError(f"piece count too long: {text!r}")
    sign, digits = _signed(_COUNT.fullmatch(text), text, "a piece count")
    return -int(digits) if sign == "-" else int(digits)


def parse_mass_text(text: str) -> int:
    """What a person types or writes in a config (``"2,5 kg"``, ``"750g"``) → milligrams, exactly.

    The unit is required. :class:`MassError` carries a translated message with an example."""
    match = _TYPED.match(text) if isinstance(text, str) else None
    try:
        if match is None:
            raise MassError(text)
        return mass_mg(
            match.group(1).replace(" ", ""),
            match.group(2),
            units=frozenset(("mg", "g", "kg", "t", "lb", "oz")),
        )
    except MassError as exc:
        raise MassError(_('a mass with its unit, e.g. "20 g" or "1.5 kg"')) from exc


def round_half_up(value: Decimal, places: int) -> Decimal:
    """``value`` to ``places`` decimals, halves away from zero (as people and spreadsheets do)."""
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def format_number(
    value: Decimal | int | float, places: int = 0, lang: str | None = None, *, group: bool = True
) -> str:
    """``1 482,5`` in French (narrow no-break space, decimal comma), ``1,482.5`` in English.

    A float is taken through its shortest repr, so ``0.1`` stays 0.1 before rounding."""
    exact = value if isinstance(value, Decimal) else Decimal(str(value))
    rounded = round_half_up(exact, places)
    if rounded == 0:
        rounded = abs(rounded)  # no "-0,0"
    text = f"{rounded:,.{places}f}" if group else f"{rounded:.{places}f}"
    if (lang or language()) == "fr":
        text = text.replace(",", "\u202f").replace(".", ",")
    return text


def kg_text(mg: int, places: int = 3) -> str:
    """Kilograms for machines (CSV, JSON): ``'1.235'``; the same rounding as :func:`format_mass`."""
    rounded = round_half_up(Decimal(mg) / MG_PER_UNIT["kg"], places)
    return f"{abs(rounded) if rounded == 0 else rounded:.{places}f}"  # never "-0.000"


def format_mass(
    mg: int, unit: str = "kg", places: int = 3, lang: str | None = None, *, group: bool = True
) -> str:
    """Milligrams for people, in their language: ``format_mass(1234567) == '1,235 kg'`` (fr).

    Rounded half up, as :func:`kg_text` is: the screen, the terminal and a CSV always agree."""
    value = Decimal(mg) / MG_PER_UNIT[unit]
    return f"{format_number(value, places, lang, group=group)} {unit}"


def format_mass_exact(
    mg: int, unit: str = "kg", min_places: int = 3, lang: str | None = None
) -> str:
    """Every digit, at least ``min_places`` decimals: ``1,250 kg``, ``0,0125 kg`` (a technician
    checking a scale must see each digit it sent; nothing is rounded away)."""
    value = (Decimal(mg) / MG_PER_UNIT[unit]).normalize()
    exponent = value.as_tuple().exponent
    places = max(min_places, -exponent if isinstance(exponent, int) else min_places)
    return format_mass(mg, unit, places, lang)
