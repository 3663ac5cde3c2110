"""Check digits of beneficiary codes (Luhn, GS1 mod 10, mod 11): one rule for station and ledger.

The station's code book refuses a misread code by its check digit; the ledger issues fresh codes
that must pass the same rule (docs/printing.md). Both read it here.
"""

from __future__ import annotations

__all__ = ["SCHEMES", "check_digit_ok", "with_check_digit"]

SCHEMES = ("none", "luhn", "mod10", "mod11")


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _mod10_ok(digits: str) -> bool:
    """GS1 / EAN check digit: weights 3,1,3… from the right, excluding the check digit."""
    body, check = digits[:-1], int(digits[-1])
    total = sum(int(ch) * (3 if i % 2 == 0 else 1) for i, ch in enumerate(reversed(body)))
    return (10 - total % 10) % 10 == check


def _mod11_ok(digits: str) -> bool:
    """Weights 2..7 from the right; a body whose check would be 10 has no valid code (no 'X')."""
    body, check = digits[:-1], int(digits[-1])
    total = sum(int(ch) * (2 + i % 6) for i, ch in enumerate(reversed(body)))
    return (11 - total % 11) % 11 == check


def check_digit_ok(scheme: str, digits: str) -> bool:
    """True when ``digits`` (check digit last) passes ``scheme``; ``"none"`` always passes."""
    if scheme == "none":
        return True
    if len(digits) < 2 or not digits.isdigit():
        return False
    return {"luhn": _luhn_ok, "mod10": _mod10_ok, "mod11": _mod11_ok}[scheme](digits)


def with_check_digit(scheme: str, digits: str) -> str:
    """``digits`` followed by its check digit under ``scheme`` (fresh, test and demo codes)."""
    for d in "0123456789":
        if check_digit_ok(scheme, digits + d):
            return digits + d
    raise ValueError(f"no {scheme} check digit for {digits!r}")
