"""Barcodes on a PDF page, sized for a 200-dpi office printer: Code 128 and QR (reportlab).

The figures, and where they come from:

* A 200-dpi printer lays dots 25.4 / 200 = 0.127 mm apart. Every module below is a whole
  number of dots, so no bar is widened or narrowed by a rounding of half a dot: 3 dots
  (0.381 mm, 15 mil) on labels and cards, 4 dots (0.508 mm, 20 mil, GS1's 0.495 mm target
  X-dimension for scanning in general distribution) on the counter sheet. Both are well above
  the 0.25 mm that a 200-dpi print reads reliably at (docs/printing.md; DESIGN's reference
  reports-devices-2026.md §5).
* Code 128 (ISO/IEC 15417:2007): 11 modules a character, 13 for the stop; a quiet zone of at
  least 10 modules each side (we leave 12, a guillotine cut or a label's edge eats a little);
  bars at least 15 % of the symbol's width and never under 6.35 mm (0.25 in: the usual
  linear-symbol guideline, so a scanner's line crosses the bars even when held askew; not a
  figure of ISO/IEC 15417 itself).
* QR (ISO/IEC 18004:2015 §6.3.8; Denso Wave, "QR Code Essentials"): a quiet zone of at least
  4 modules on every side; error correction level M (15 %) for a card carried in a pocket.
* Code 128 is what every scanner reads (a CCD or laser one too); QR needs an imager, so a card
  carries both and the counter's sheets only Code 128.
"""

from __future__ import annotations

from dataclasses import dataclass

from reportlab.graphics import renderPDF  # type: ignore[import-untyped,unused-ignore]
from reportlab.graphics.barcode.code128 import Code128Auto  # type: ignore[import-untyped,unused-ignore]
from reportlab.graphics.barcode.qr import QrCodeWidget  # type: ignore[import-untyped,unused-ignore]
from reportlab.graphics.shapes import Drawing  # type: ignore[import-untyped,unused-ignore]
from reportlab.lib.units import mm  # type: ignore[import-untyped,unused-ignore]
from reportlab.pdfgen.canvas import Canvas  # type: ignore[import-untyped,unused-ignore]

__all__ = [
    "DOT_MM",
    "LINEAR_QUIET",
    "MIN_BAR_MM",
    "QR_QUIET",
    "Symbol",
    "code128",
    "qr",
]

DOT_MM = 25.4 / 200  # one dot of a 200-dpi printer
LINEAR_QUIET = 12  # modules of quiet zone each side of a Code 128 (ISO/IEC 15417: >= 10)
QR_QUIET = 4  # modules of quiet zone around a QR (ISO/IEC 18004: >= 4)
MIN_BAR_MM = 6.35  # the shortest bars worth printing (0.25 in)


@dataclass(frozen=True)
class Symbol:
    """One barcode, ready to draw: its size (points, quiet zones included) and how."""

    value: str
    kind: str  # "code128" | "qr"
    width: float
    height: float
    module: float  # points

    def draw(self, canvas: Canvas, x: float, y: float) -> None:
        """Draw with the lower-left corner of the quiet zone at (x, y)."""
        if self.kind == "code128":
            bars = self._code128(self.height)
            bars.drawOn(canvas, x, y)
        else:
            widget = QrCodeWidget(
                self.value,
                barLevel="M",
                barBorder=QR_QUIET,
                barWidth=self.width,
                barHeight=self.height,
            )
            drawing = Drawing(self.width, self.height)
            drawing.add(widget)
            renderPDF.draw(drawing, canvas, x, y)

    def _code128(self, height: float) -> Code128Auto:
        quiet = LINEAR_QUIET * self.module
        return Code128Auto(
            self.value,
            barWidth=self.module,
            barHeight=height,
            lquiet=quiet,
            rquiet=quiet,
            humanReadable=False,
        )


def _dots(n: int) -> float:
    return float(n * DOT_MM * mm)


def code128(value: str, dots: int = 3, height_mm: float | None = None) -> Symbol:
    """A Code 128 of ``value`` with ``dots``-dot modules; bars ``height_mm`` high (at least
    15 % of the width and 6.35 mm when not given or smaller)."""
    module = _dots(dots)
    probe = Code128Auto(
        value,
        barWidth=module,
        barHeight=10,
        lquiet=LINEAR_QUIET * module,
        rquiet=LINEAR_QUIET * module,
        humanReadable=False,
    )
    width = float(probe.width)
    floor = max(MIN_BAR_MM * mm, 0.15 * (width - 2 * LINEAR_QUIET * module))
    height = max(floor, (height_mm or 0) * mm)
    return Symbol(value, "code128", width, height, module)


def qr(value: str, dots: int = 4) -> Symbol:
    """A QR of ``value`` (level M) with ``dots``-dot modules, quiet zone included."""
    module = _dots(dots)
    widget = QrCodeWidget(value, barLevel="M", barBorder=QR_QUIET)
    widget.qr.make()
    side = (widget.qr.getModuleCount() + 2 * QR_QUIET) * module
    return Symbol(value, "qr", side, side, module)
