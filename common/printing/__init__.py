"""Printed codes: barcodes sized for 200-dpi printing, A4 sheets, labels and cards, patterns.

Shared by the station (``station codes print``) and the ledger (``ledger codes cards`` and
``ledger codes sheet``); imports none of them (docs/printing.md).
"""

from __future__ import annotations

from .pages import GRIDS, LAYOUTS, Card, Label, Section, TooWide, render_cards, render_labels
from .patterns import DEFAULT_PATTERN, Pattern, PatternError, check_digit_ok, with_check_digit

__all__ = [
    "DEFAULT_PATTERN",
    "GRIDS",
    "LAYOUTS",
    "Card",
    "Label",
    "Pattern",
    "PatternError",
    "Section",
    "TooWide",
    "check_digit_ok",
    "render_cards",
    "render_labels",
    "with_check_digit",
]
