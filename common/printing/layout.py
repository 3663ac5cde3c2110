"""What a printed page holds, without drawing it: labels, sections, cards, the sheet grids.

Kept apart from ``pages`` (which needs reportlab) so the command lines can build their pages
and name their choices without loading the PDF library until they print.
"""

from __future__ import annotations

from dataclasses import dataclass

from common.i18n import _

__all__ = [
    "BOARD",
    "CARDS",
    "CARD_H",
    "CARD_W",
    "GRIDS",
    "LAYOUTS",
    "Card",
    "Grid",
    "Label",
    "Section",
    "TooWide",
]


@dataclass(frozen=True, slots=True)
class Grid:
    """A sheet of labels: columns × rows of label_w × label_h mm, from a top-left origin."""

    columns: int
    rows: int
    label_w: float
    label_h: float
    left: float
    top: float
    pitch_x: float
    pitch_y: float


# 3×8: 70 × 37 mm, edge to edge (Herma 4453, Avery 3475-like); 2×7: 99.1 × 38.1 mm (Avery L7163)
GRIDS = {
    "3x8": Grid(3, 8, 70.0, 37.0, 0.0, 0.5, 70.0, 37.0),
    "2x7": Grid(2, 7, 99.1, 38.1, 4.65, 15.15, 101.6, 38.1),
}
# the counter board: 2 × 4 cells a page, a section starting on a page of its own
BOARD = Grid(2, 4, 95.0, 64.0, 10.0, 20.0, 95.0, 66.0)
LAYOUTS = ("sheet", "labels")
CARD_W, CARD_H = 85.6, 53.98  # ISO/IEC 7810 ID-1, a bank card's size
CARDS = Grid(2, 5, CARD_W, CARD_H, (210 - 2 * CARD_W) / 2, (297 - 5 * CARD_H) / 2, CARD_W, CARD_H)


class TooWide(ValueError):
    """A code too long for its cell at the finest module this page may use."""

    def __init__(self, code: str, room_mm: float) -> None:
        super().__init__(
            _("code {code!r} is too long to print in {mm} mm; use a shorter code").format(
                code=code, mm=f"{room_mm:.0f}"
            )
        )
        self.code = code


@dataclass(frozen=True, slots=True)
class Label:
    """One code to print: ``code`` is what the barcode holds, ``title`` what it means."""

    code: str
    title: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Section:
    """The codes of one kind (categories, command codes…) under their heading."""

    title: str
    labels: tuple[Label, ...]


@dataclass(frozen=True, slots=True)
class Card:
    """A beneficiary card: a code and the structure that hands it out; never a person's name."""

    code: str
    structure: str
    heading: str
    footer: str = ""
