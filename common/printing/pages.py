"""A4 pages of barcodes: counter sheets (one big code a cell), label sheets (3×8, 2×7), cards.

Every cell holds its code as Code 128 (a card adds a QR) with its meaning written above and
the code itself below, so a person can key it in when a scanner fails. Sizes follow
``common.printing.symbols``; a code too long for its cell at the finest module allowed is
refused (:class:`TooWide`), never printed too small to read.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from reportlab.lib.colors import Color  # type: ignore[import-untyped,unused-ignore]
from reportlab.lib.pagesizes import A4  # type: ignore[import-untyped,unused-ignore]
from reportlab.lib.units import mm  # type: ignore[import-untyped,unused-ignore]
from reportlab.pdfbase.pdfmetrics import stringWidth  # type: ignore[import-untyped,unused-ignore]
from reportlab.pdfgen.canvas import Canvas  # type: ignore[import-untyped,unused-ignore]

from common.i18n import _
from common.text import visible

from .layout import BOARD, CARD_H, CARD_W, CARDS, GRIDS, Card, Grid, Label, Section, TooWide
from .symbols import Symbol, code128, qr

__all__ = ["render_cards", "render_labels"]

PAGE_W, PAGE_H = A4
GREY = Color(0.6, 0.6, 0.6)
BOLD, REGULAR, MONO = "Helvetica-Bold", "Helvetica", "Courier"


def _fit(text: str, font: str, size: float, room: float) -> str:
    """``text`` shown safely and cut with "…" to fit ``room`` points."""
    text = visible(text)
    if stringWidth(text, font, size) <= room:
        return text
    while text and stringWidth(text + "…", font, size) > room:
        text = text[:-1]
    return text + "…"


def _symbol(code: str, room: float, dots: Sequence[int], height_mm: float) -> Symbol:
    """The Code 128 with the coarsest module in ``dots`` that fits ``room`` points."""
    for n in dots:
        symbol = code128(code, n, height_mm)
        if symbol.width <= room:
            return symbol
    raise TooWide(code, room / mm)


def _cell(
    canvas: Canvas, label: Label, x: float, y: float, w: float, h: float, big: bool, kind: str
) -> None:
    """One label in the box whose lower-left corner is (x, y), w × h points."""
    pad = (4 if big else 2.5) * mm
    room = w - 2 * pad
    title_size, code_size = (20, 11) if big else (10, 8)
    symbol = _symbol(label.code, w - 2 * mm, (4, 3) if big else (3, 2), 28 if big else 11)
    gap = (3 if big else 1.5) * mm
    kind_h = 8 if kind else 0
    detail_h = code_size + 2 if label.detail else 0
    used = kind_h + title_size + gap + symbol.height + code_size + 1 + detail_h
    top = y + h - max(pad, (h - used) / 2)  # centred in its box
    if kind:
        canvas.setFont(REGULAR, 7)
        canvas.setFillColor(GREY)
        canvas.drawString(x + pad, top - 7, _fit(kind, REGULAR, 7, room))
        canvas.setFillColor(Color(0, 0, 0))
        top -= 8
    canvas.setFont(BOLD, title_size)
    canvas.drawCentredString(x + w / 2, top - title_size, _fit(label.title, BOLD, title_size, room))
    top -= title_size + gap
    bars_y = top - symbol.height
    symbol.draw(canvas, x + (w - symbol.width) / 2, bars_y)
    canvas.setFont(MONO, code_size)
    canvas.drawCentredString(
        x + w / 2, bars_y - code_size - 1, _fit(label.code, MONO, code_size, room)
    )
    if label.detail:
        canvas.setFont(REGULAR, code_size)
        canvas.drawCentredString(
            x + w / 2, bars_y - 2 * code_size - 3, _fit(label.detail, REGULAR, code_size, room)
        )


def _box(grid: Grid, i: int) -> tuple[float, float, float, float]:
    """The i-th label's box on its page, in points: x, y (lower left), width, height."""
    col, row = i % grid.columns, i // grid.columns
    x = (grid.left + col * grid.pitch_x) * mm
    y = PAGE_H - (grid.top + row * grid.pitch_y + grid.label_h) * mm
    return x, y, grid.label_w * mm, grid.label_h * mm


def _footer(canvas: Canvas, text: str) -> None:
    if text:
        canvas.setFont(REGULAR, 7)
        canvas.setFillColor(GREY)
        canvas.drawCentredString(PAGE_W / 2, 6 * mm, _fit(text, REGULAR, 7, PAGE_W - 20 * mm))
        canvas.setFillColor(Color(0, 0, 0))


def _canvas(out: Path | BinaryIO, title: str) -> Canvas:
    canvas = Canvas(str(out) if isinstance(out, Path) else out, pagesize=A4)
    canvas.setTitle(title)
    canvas.setAuthor("Pesée")
    canvas.setCreator("Pesée")
    return canvas


def render_labels(
    out: Path | BinaryIO,
    sections: Sequence[Section],
    *,
    layout: str = "sheet",
    grid: str = "3x8",
    title: str = "",
    footer: str = "",
) -> int:
    """Write ``sections`` as an A4 PDF; returns the pages written.

    ``sheet``: the counter board, big codes, each section from a new page under its heading.
    ``labels``: a label sheet (``grid`` 3x8 or 2x7), every label naming its kind."""
    for section in sections:  # refuse before writing anything
        for label in section.labels:
            width = (BOARD if layout == "sheet" else GRIDS[grid]).label_w * mm - 2 * mm
            _symbol(label.code, width, (4, 3) if layout == "sheet" else (3, 2), 0)
    canvas = _canvas(out, title or _("Counter codes"))
    pages = 0
    if layout == "sheet":
        for section in sections:
            for start in range(0, len(section.labels), BOARD.columns * BOARD.rows):
                canvas.setFont(BOLD, 16)
                canvas.drawString(
                    10 * mm, PAGE_H - 14 * mm, _fit(section.title, BOLD, 16, 190 * mm)
                )
                chunk = section.labels[start : start + BOARD.columns * BOARD.rows]
                for i, label in enumerate(chunk):
                    x, y, w, h = _box(BOARD, i)
                    canvas.setStrokeColor(GREY)
                    canvas.setLineWidth(0.3)
                    canvas.rect(x, y, w, h, stroke=1, fill=0)
                    _cell(canvas, label, x, y, w, h, True, "")
                _footer(canvas, footer)
                canvas.showPage()
                pages += 1
    else:
        sheet = GRIDS[grid]
        flat = [(s.title, label) for s in sections for label in s.labels]
        per_page = sheet.columns * sheet.rows
        for start in range(0, len(flat), per_page):
            for i, (kind, label) in enumerate(flat[start : start + per_page]):
                _cell(canvas, label, *_box(sheet, i), False, kind)
            canvas.showPage()
            pages += 1
    if pages == 0:
        canvas.setFont(REGULAR, 12)
        canvas.drawString(20 * mm, PAGE_H - 30 * mm, _("No code to print."))
        canvas.showPage()
        pages = 1
    canvas.save()
    return pages


def _card(canvas: Canvas, card: Card, x: float, y: float) -> None:
    w, h = CARD_W * mm, CARD_H * mm
    canvas.setStrokeColor(GREY)
    canvas.setLineWidth(0.3)
    canvas.roundRect(x, y, w, h, 3 * mm, stroke=1, fill=0)  # the cutting line
    pad = 4 * mm
    square = qr(card.code)
    bars = _symbol(card.code, w - 2 * mm, (3, 2), 11)
    square.draw(canvas, x + w - square.width - 2 * mm, y + h - square.height - 2 * mm)
    room = w - square.width - pad - 2 * mm
    canvas.setFont(REGULAR, 8)
    canvas.drawString(x + pad, y + h - pad - 8, _fit(card.heading, REGULAR, 8, room))
    canvas.setFont(BOLD, 12)
    canvas.drawString(x + pad, y + h - pad - 22, _fit(card.structure, BOLD, 12, room))
    bars_y = y + 9 * mm
    bars.draw(canvas, x + (w - bars.width) / 2, bars_y)
    canvas.setFont(MONO, 10)
    canvas.drawCentredString(x + w / 2, bars_y - 11, _fit(card.code, MONO, 10, w - 2 * pad))
    if card.footer:
        canvas.setFont(REGULAR, 6.5)
        canvas.drawCentredString(
            x + w / 2, y + 2.2 * mm, _fit(card.footer, REGULAR, 6.5, w - 2 * pad)
        )


def render_cards(out: Path | BinaryIO, cards: Sequence[Card], *, title: str = "") -> int:
    """Write ``cards`` ten to an A4 page (2 × 5, ID-1 size, cutting lines); the pages written."""
    for card in cards:
        _symbol(card.code, CARD_W * mm - 2 * mm, (3, 2), 0)
    canvas = _canvas(out, title or _("Beneficiary cards"))
    per_page = CARDS.columns * CARDS.rows
    pages = 0
    for start in range(0, len(cards), per_page):
        for i, card in enumerate(cards[start : start + per_page]):
            x, y, _w, _h = _box(CARDS, i)
            _card(canvas, card, x, y)
        canvas.showPage()
        pages += 1
    canvas.save()
    return pages
