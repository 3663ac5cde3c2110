"""Beneficiary code patterns as the station reads them, and fresh codes made to fit them.

A pattern is a prefix (with an optional length) or a regex whose named group ``referrer``
carries the referring structure; a check digit (``luhn``, ``mod10``, ``mod11`` or ``none``) is
taken over every digit of the code after the prefix, the last digit being the check. This is
the rule of ``station/codes.py`` (the code book) written for the ledger, which may not import
the station: tests feed every code made here to the station's code book.

Codes are made from a regex only when it is a template: literal characters, ``\\d`` or
``[0-9]`` (optionally ``{n}`` / ``{n,m}``), simple classes such as ``[A-Z]``, plain groups and
the ``(?P<referrer>...)`` group; anything else (``|``, ``*``, ``+``, ``?``, ``.``) is refused
with a line naming the pattern.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from common.checkdigit import SCHEMES, check_digit_ok, with_check_digit
from common.i18n import _

__all__ = [
    "DEFAULT_PATTERN",
    "Pattern",
    "PatternError",
    "check_digit_ok",
    "with_check_digit",
]

DEFAULT_BODY_DIGITS = 9  # a prefix rule without a length: 9 random digits, then the check


class PatternError(ValueError):
    """A pattern no code can be made from (or a referrer it cannot carry)."""


# a slot of a template: fixed text, or a choice of characters; the referrer's slot is "R"
Slot = tuple[Literal["text", "chars", "referrer"], str]
DIGITS = "0123456789"


def _class(body: str) -> str:
    """The characters of a simple class body (``0-9``, ``A-Z``, ``ABC``)."""
    chars: list[str] = []
    i = 0
    while i < len(body):
        if i + 2 < len(body) and body[i + 1] == "-":
            chars += [chr(c) for c in range(ord(body[i]), ord(body[i + 2]) + 1)]
            i += 3
        else:
            chars.append(body[i])
            i += 1
    return "".join(dict.fromkeys(chars))


def _template(regex: str, name: str) -> list[Slot]:
    """The regex as slots, or PatternError when it is not a plain template."""
    slots: list[Slot] = []
    i = 0
    refuse = PatternError(
        _(
            "pattern {name}: codes can be made only from a prefix or a regex of literals, "
            "\\d{{n}}, [0-9]{{n}} and (?P<referrer>…)"
        ).format(name=name)
    )
    while i < len(regex):
        ch = regex[i]
        unit: Slot
        if regex.startswith("(?P<referrer>", i):
            depth, j = 1, i + len("(?P<referrer>")
            while j < len(regex) and depth:
                depth += {"(": 1, ")": -1}.get(regex[j], 0)
                j += 1
            if depth:
                raise refuse
            slots.append(("referrer", regex[i + len("(?P<referrer>") : j - 1]))
            i = j
            continue
        if regex.startswith("(?:", i):
            i += 3
            continue
        if ch in "()":
            i += 1
            continue
        if ch == "\\" and i + 1 < len(regex):
            nxt = regex[i + 1]
            if nxt == "d":
                unit = ("chars", DIGITS)
            elif nxt.isalnum():
                raise refuse
            else:
                unit = ("text", nxt)
            i += 2
        elif ch == "[":
            end = regex.find("]", i)
            if end < 0 or regex[i + 1 : i + 2] == "^":
                raise refuse
            unit = ("chars", _class(regex[i + 1 : end]))
            i = end + 1
        elif ch in "|*+?.^$":
            raise refuse
        else:
            unit = ("text", ch)
            i += 1
        count = 1
        m = re.match(r"\{(\d+)(?:,(\d+))?\}", regex[i:])
        if m:
            count = int(m.group(2) or m.group(1))
            i += m.end()
        slots += [unit] * count
    return slots


@dataclass(frozen=True, slots=True)
class Pattern:
    """One beneficiary code rule (``[[codes.beneficiary]]`` at the station, the registry's
    ``[[beneficiary_patterns]]`` at the office)."""

    name: str = "beneficiary"
    prefix: str | None = None
    regex: str | None = None
    length: int | None = None
    check_digit: str = "none"

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> Pattern:
        scheme = str(raw.get("check_digit") or "none")
        if scheme not in SCHEMES:
            raise PatternError(_("unknown check digit {scheme!r}").format(scheme=scheme))
        length = raw.get("length")
        return cls(
            name=str(raw.get("name") or "beneficiary"),
            prefix=raw.get("prefix") or None,
            regex=raw.get("regex") or None,
            length=int(length) if length is not None else None,
            check_digit=scheme,
        )

    @property
    def carries_referrer(self) -> bool:
        return bool(self.regex) and "(?P<referrer>" in (self.regex or "")

    def match(self, code: str) -> str | Literal[False] | None:
        """None: not this pattern. False: this pattern, but a wrong length or check digit.
        Otherwise the referrer the code carries ("" when none): the station's rule."""
        referrer = ""
        if self.regex:
            m = re.fullmatch(self.regex, code)
            if m is None:
                return None
            referrer = m.groupdict().get("referrer") or ""
            prefix = self.prefix or ""
            body = code[len(prefix) :] if prefix and code.startswith(prefix) else code
        else:
            if not self.prefix or not code.startswith(self.prefix):
                return None
            body = code[len(self.prefix) :]
        if self.length is not None and len(code) != self.length:
            return False
        if self.check_digit != "none":
            digits = "".join(ch for ch in body if ch.isdigit())
            if digits != body and not self.regex:
                return False
            if not check_digit_ok(self.check_digit, digits):
                return False
        return referrer

    def valid(self, code: str) -> bool:
        """``code`` is this pattern's, with a good check digit."""
        return self.match(code) not in (None, False)

    def _slots(self, referrer: str | None) -> list[Slot]:
        if self.regex:
            slots = _template(self.regex, self.name)
            for kind, inner in slots:
                if kind == "referrer" and (
                    referrer is None or re.fullmatch(inner, referrer) is None
                ):
                    raise PatternError(
                        _(
                            "pattern {name}: the referring structure's code {code!r} does not "
                            "fit its referrer group ({group})"
                        ).format(name=self.name, code=referrer or "", group=inner)
                    )
            text: Slot = ("text", referrer or "")
            return [text if k == "referrer" else (k, v) for k, v in slots]
        prefix = self.prefix or ""
        check = 0 if self.check_digit == "none" else 1
        body = (self.length - len(prefix) - check) if self.length else DEFAULT_BODY_DIGITS
        if body < 1:
            raise PatternError(
                _("pattern {name}: length {n} leaves no room for digits").format(
                    name=self.name, n=self.length
                )
            )
        head: Slot = ("text", prefix)
        digit: Slot = ("chars", DIGITS)
        return [head] + [digit] * (body + check)

    def make(self, referrer: str | None, pick: Callable[[str], str] = secrets.choice) -> str:
        """A random code of this pattern (carrying ``referrer`` where the pattern has a group
        for it) with a good check digit; PatternError when the pattern cannot give one."""
        slots = self._slots(referrer)
        free = [i for i, (kind, _chars) in enumerate(slots) if kind == "chars"]
        if not free:  # a fixed code (a referring structure's): valid as it is, or never
            code = "".join(v for _k, v in slots)
            if self.valid(code):
                return code
            raise PatternError(
                _("pattern {name}: no free character to make codes from").format(name=self.name)
            )
        last_digit = next((i for i in reversed(free) if slots[i][1] == DIGITS), None)
        for _attempt in range(50):  # mod11 leaves one body in 11 without a check digit
            chars = [pick(v) if k == "chars" else v for k, v in slots]
            if self.check_digit == "none" or last_digit is None:
                code = "".join(chars)
                if self.valid(code):
                    return code
                continue
            for d in DIGITS:
                chars[last_digit] = d
                code = "".join(chars)
                if self.valid(code):
                    return code
        raise PatternError(
            _("pattern {name}: no code made fits its own rule").format(name=self.name)
        )


# the station's default rule when neither its config nor the office gives one
DEFAULT_PATTERN = Pattern(name="beneficiary", prefix="B", check_digit="luhn")
