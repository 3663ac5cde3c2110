"""Report charts as inline SVG strings (matplotlib, no display, no URL), for pages and files."""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Sequence
from typing import Any

from matplotlib import rc_context
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from common.i18n import _, language
from common.units import format_number as number

from .report_model import Report, Row

__all__ = ["bars_svg", "monthly_kg_svg"]

COLOUR = "#2a6f97"
# text stays text (searchable, small), ids are stable: the same report gives the same bytes
_RC: Any = {
    "svg.fonttype": "none",
    "svg.hashsalt": "pesee",
    # labels are stations' codes and names: "$x$" is text, not TeX (mathtext raised on "$\foo$")
    "text.parse_math": False,
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


def _svg(fig: Figure) -> str:
    """The figure as an ``<svg>`` element for inline use: no XML prolog, DOCTYPE or metadata."""
    FigureCanvasSVG(fig)
    buf = io.StringIO()
    with rc_context(_RC):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None}, transparent=True)
    text = buf.getvalue()
    text = re.sub(r"<\?xml[^>]*\?>\s*", "", text)
    text = re.sub(r"<!DOCTYPE[^>]*>\s*", "", text)
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.S)
    text = text.replace(' xmlns:xlink="http://www.w3.org/1999/xlink"', "")
    return text.strip()


def _axis_kg(lang: str) -> Callable[[float, object], str]:
    return lambda value, _pos: number(value, 0, lang)


def monthly_kg_svg(
    report: Report, *, lang: str | None = None, width: float = 7.5, height: float = 2.8
) -> str:
    """kg per month over the period, as bars (empty months included)."""
    lang = lang or language()
    months = [key for key, _f in report.monthly]
    values = [f.kg for _k, f in report.monthly]
    with rc_context(_RC):
        fig = Figure(figsize=(width, height))
        ax = fig.add_subplot()
        xs = list(range(len(months)))
        ax.bar(xs, values, color=COLOUR, width=0.7, label=report.period.label)
        ax.set_xticks(xs)
        ax.set_xticklabels(
            [m[5:] if len(months) <= 12 else m[2:] for m in months],
            rotation=0 if len(months) <= 12 else 90,
        )
        ax.yaxis.set_major_formatter(FuncFormatter(_axis_kg(lang)))
        ax.set_ylabel("kg")
        ax.set_title(_("kg per month") + f" — {report.period.label}", loc="left")
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
        fig.tight_layout()
        return _svg(fig)


def bars_svg(
    rows: Sequence[Row], title: str, *, lang: str | None = None, limit: int = 15, width: float = 7.5
) -> str:
    """Horizontal bars of kg, biggest first, ``limit`` at most. The rest is summed as "others"
    and said apart, in a line under the bars: a bar for it would dwarf the named rows it sums.
    Each bar has an id (``bar-0``…), the line ``others``: pages and tests can find them."""
    lang = lang or language()
    items = sorted(((" / ".join(r.label), r.figures.kg) for r in rows), key=lambda i: -i[1])
    rest: tuple[int, float] | None = None
    if len(items) > limit:
        rest = (len(items) - (limit - 1), sum(kg for _l, kg in items[limit - 1 :]))
        items = items[: limit - 1]
    labels = [label if len(label) <= 28 else label[:27] + "…" for label, _kg in items]
    values = [kg for _l, kg in items]
    with rc_context(_RC):
        extra = 0.3 if rest else 0.0
        fig = Figure(figsize=(width, 0.9 + extra + 0.28 * max(len(items), 1)))
        ax = fig.add_subplot()
        ys = list(range(len(items)))
        bars = ax.barh(ys, values, color=COLOUR, height=0.7)
        for n, bar in enumerate(bars):
            bar.set_gid(f"bar-{n}")
        ax.set_yticks(ys)
        ax.set_yticklabels(labels)
        ax.invert_yaxis()
        ax.xaxis.set_major_formatter(FuncFormatter(_axis_kg(lang)))
        ax.set_xlabel("kg")
        ax.set_title(title, loc="left")
        ax.grid(axis="x", alpha=0.3)
        ax.set_axisbelow(True)
        top = max(values, default=0) or 1
        for y, value in zip(ys, values, strict=True):
            ax.text(value + top * 0.01, y, number(value, 0, lang), va="center", fontsize=8)
        ax.set_xlim(0, top * 1.15)
        if rest:
            count, kg = rest
            note = ax.annotate(
                _("+ {n} others: {kg} kg in all").format(n=count, kg=number(kg, 0, lang)),
                xy=(0, 0),
                xycoords="axes fraction",
                xytext=(0, -28),
                textcoords="offset points",
                va="top",
                fontsize=9,
                fontstyle="italic",
            )
            note.set_gid("others")
        fig.tight_layout()
        return _svg(fig)
