"""Printed codes: barcodes sized for 200-dpi printing, A4 sheets, labels and cards, patterns.

Shared by the station (``station codes print``) and the ledger (``ledger codes cards`` and
``ledger codes sheet``); imports none of them (docs/printing.md). reportlab (the ``print``
extra) is loaded only when a PDF is made: a command line that lists these choices, or a station
without the extra, never pays for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import BinaryIO

from common.i18n import _

from .layout import GRIDS, LAYOUTS, Card, Label, Section, TooWide
from .patterns import DEFAULT_PATTERN, Pattern, PatternError, check_digit_ok, with_check_digit

__all__ = [
    "DEFAULT_PATTERN",
    "GRIDS",
    "LAYOUTS",
    "Card",
    "Label",
    "Pattern",
    "PatternError",
    "PrintingUnavailable",
    "Section",
    "TooWide",
    "check_digit_ok",
    "render_cards",
    "render_labels",
    "require_pdf",
    "with_check_digit",
]


class PrintingUnavailable(RuntimeError):
    """reportlab is not installed (the ``print`` extra)."""


def _pages() -> ModuleType:
    try:
        from . import pages
    except ImportError as exc:
        raise PrintingUnavailable(
            _("printing needs reportlab, which is not installed: pip install 'pesee[print]'")
        ) from exc
    return pages


def require_pdf() -> None:
    """Raise :class:`PrintingUnavailable` now, before anything is issued, if no PDF can be made."""
    _pages()


def render_labels(
    out: Path | BinaryIO,
    sections: Sequence[Section],
    *,
    layout: str = "sheet",
    grid: str = "3x8",
    title: str = "",
    footer: str = "",
) -> int:
    """``sections`` as an A4 PDF of big codes or labels (``common.printing.pages``)."""
    pages: int = _pages().render_labels(
        out, sections, layout=layout, grid=grid, title=title, footer=footer
    )
    return pages


def render_cards(out: Path | BinaryIO, cards: Sequence[Card], *, title: str = "") -> int:
    """``cards`` ten to an A4 page (``common.printing.pages``)."""
    pages: int = _pages().render_cards(out, cards, title=title)
    return pages
