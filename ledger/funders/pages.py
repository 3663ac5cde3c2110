"""The pages funders' reports are made of: sentences and titled tables, as a terminal table,
one standalone HTML file (inline CSS, no script, nothing fetched) or CSV for a spreadsheet."""

from __future__ import annotations

import csv
import html
import io
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from common.i18n import _
from common.text import visible

from ..report_render import spreadsheet_text

__all__ = [
    "DASH",
    "Page",
    "Section",
    "csv_bytes",
    "decimal_text",
    "page_html",
    "page_table",
    "period_line",
]

DASH = "–"


@dataclass
class Section:
    """A titled table: ``numeric`` columns are right-aligned."""

    title: str
    heads: list[str]
    rows: list[list[str]]
    numeric: set[int] = field(default_factory=set)
    total: list[str] | None = None


@dataclass
class Page:
    title: str
    subtitle: str
    sentences: list[str]
    sections: list[Section]
    notes: list[str] = field(default_factory=list)


# -- generic renderings ----------------------------------------------------------------------------
def _line(section: Section, widths: list[int], cells: Sequence[str]) -> str:
    parts = []
    for i, (cell, w) in enumerate(zip(cells, widths, strict=True)):
        text = cell if len(cell) <= w else cell[: w - 1] + "…"
        parts.append(text.rjust(w) if i in section.numeric else text.ljust(w))
    return "  ".join(parts).rstrip()


def _cells(section: Section, row: Sequence[str], tag: str = "td") -> str:
    esc = html.escape
    return "".join(
        f'<{tag} class="n">{esc(c)}</{tag}>' if i in section.numeric else f"<{tag}>{esc(c)}</{tag}>"
        for i, c in enumerate(row)
    )


def page_table(page: Page, width: int) -> str:
    out = [page.title, "=" * min(len(page.title), width), page.subtitle]
    for sentence in page.sentences:
        out += textwrap.wrap(sentence, width, subsequent_indent="  ")
    for section in page.sections:
        rows = section.rows + ([section.total] if section.total else [])
        widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(section.heads)]
        # the widest text column gives way when the table is wider than the terminal
        spare = width - (sum(widths) + 2 * (len(widths) - 1))
        if spare < 0:
            texts = [i for i in range(len(widths)) if i not in section.numeric]
            if texts:
                widest = max(texts, key=lambda i: widths[i])
                widths[widest] = max(8, widths[widest] + spare)

        rule = "-" * min(width, sum(widths) + 2 * (len(widths) - 1))
        out += ["", section.title, _line(section, widths, section.heads), rule]
        out += [_line(section, widths, r) for r in section.rows]
        if section.total:
            out += [rule, _line(section, widths, section.total)]
    if page.notes:
        out.append("")
        for note in page.notes:
            out += textwrap.wrap(note, width)
    # station-supplied codes and names: shown, never run by the terminal
    return "\n".join(visible(text.rstrip()) for text in out).rstrip() + "\n"


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
margin:2rem auto;max-width:60rem;padding:0 1rem;color:#1d2733}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.1rem;margin-top:2rem}
.summary{font-size:1.1rem;line-height:1.5}.summary p{margin:.2rem 0}.muted{color:#5b6b7a}
table{border-collapse:collapse;width:100%;font-size:.9rem;margin-top:.5rem}
th,td{padding:.25rem .5rem;border-bottom:1px solid #dde3ea}th{text-align:left;background:#f1f4f7}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}tr.total td{font-weight:bold}
@media print{body{margin:0}}
"""


def page_html(page: Page, lang: str) -> str:
    """One self-contained file: inline CSS, no script, nothing fetched."""
    esc = html.escape
    parts = [
        "<!DOCTYPE html>",
        f'<html lang="{esc(lang)}"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(page.title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{esc(page.title)}</h1>",
        f'<p class="muted">{esc(page.subtitle)}</p>',
        '<div class="summary">' + "".join(f"<p>{esc(s)}</p>" for s in page.sentences) + "</div>",
    ]
    for section in page.sections:
        parts.append(f"<h2>{esc(section.title)}</h2><table><thead><tr>")
        parts.append(_cells(section, section.heads, "th") + "</tr></thead><tbody>")
        parts += [f"<tr>{_cells(section, r)}</tr>" for r in section.rows]
        if section.total:
            parts.append(f'<tr class="total">{_cells(section, section.total)}</tr>')
        parts.append("</tbody></table>")
    parts += [f'<p class="muted">{esc(note)}</p>' for note in page.notes]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def csv_bytes(header: list[str], rows: list[list[Any]], sep: str, excel: bool) -> bytes:
    if excel:
        sep = ";"
    if len(sep) != 1:
        raise ValueError(_("the separator must be one character"))
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=sep, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([spreadsheet_text(c) if isinstance(c, str) else c for c in row])
    text = buf.getvalue()
    return ("\ufeff" + text if excel else text).encode("utf-8")


def decimal_text(text: str, comma: bool) -> str:
    return text.replace(".", ",") if comma else text


def period_line(start: str, last: str, stations: Sequence[str] | None) -> str:
    line = f"{start} → {last}"
    if stations is not None:
        line += " · " + _("stations: {list}").format(list=", ".join(stations) or DASH)
    return line
