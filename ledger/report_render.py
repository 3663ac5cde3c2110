"""A report as a terminal table, CSV for a spreadsheet, JSON, or a standalone HTML page."""

from __future__ import annotations

import csv
import html
import io
import json
import textwrap
from typing import Any

from common.i18n import _, speaking
from common.text import visible
from common.units import format_number, kg_text

from .report_model import Changes, Figures, Report
from .report_sentences import change_text, mass, row_sentences, summary_lines

__all__ = [
    "grouping_title",
    "mass",
    "report_dict",
    "row_sentences",
    "spreadsheet_cell",
    "spreadsheet_text",
    "summary_lines",
    "to_csv",
    "to_html",
    "to_json",
    "to_table",
]


def _count(n: float, lang: str | None = None) -> str:
    return format_number(n, 0, lang)


def grouping_title(grouping: str) -> str:
    return {
        "month": _("month"),
        "category": _("category"),
        "station": _("station"),
        "group": _("group"),
        "referrer": _("referring structure"),
        "referrer_type": _("type of structure"),
        "profile": _("profile"),
        "beneficiary": _("beneficiary"),
    }.get(grouping, grouping)


# -- terminal --------------------------------------------------------------------------------------
def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _pct(share: float, lang: str) -> str:
    return format_number(100 * share, 1, lang) if share else "0"


def _compared(report: Report) -> bool:
    """Whether the report compares with the year before (rows carry their previous figures)."""
    return report.previous is not None or any(r.previous is not None for r in report.rows)


def _signed(pct: float | None) -> str:
    """A change in a table cell: "+55", "-3", "-" for none."""
    return change_text(pct).removesuffix(" %")


def to_table(report: Report, lang: str | None = None, *, width: int = 100) -> str:
    """Aligned columns within ``width`` (80 to 100 is right), the sentences above, wrapped."""
    with speaking(lang) as lang:
        rows: list[tuple[tuple[str, ...], Figures, Changes | None]]
        by = report.by or ("month",)
        compared = _compared(report)
        if report.by:
            rows = [(r.label, r.figures, r.changes if compared else None) for r in report.rows]
        else:
            rows = [((k,), f, None) for k, f in report.monthly]
        show_pieces = report.total.pieces > 0
        heads = [_("kg"), _("items")]
        if show_pieces:
            heads.append(_("pieces"))
        heads += [_("visits"), _("persons"), _("kg/pers.")]
        widths = [11, 7] + ([7] if show_pieces else []) + [6, 7, 8]
        shares = [_("manual%"), _("void%")]
        changes = [_("Δkg%"), _("Δpers%"), _("Δvis%")] if compared else []

        def room(names: list[str], least: list[int]) -> int:
            return sum(max(w, len(h)) + 1 for w, h in zip(least, names, strict=True))

        # the change a year before rather than the manual and voided shares (in the sentences)
        # when both do not fit beside labels of 10 characters
        used = room(heads, widths) + room(shares, [7, 6]) + room(changes, [5] * len(changes))
        show_shares = not compared or used + 11 * len(by) <= width
        if show_shares:
            heads += shares
            widths += [7, 6]
        heads += changes
        widths += [5] * len(changes)
        widths = [max(w, len(h)) for w, h in zip(widths, heads, strict=True)]
        numbers_width = sum(widths) + len(widths)
        label_width = max(8, (width - numbers_width) // len(by) - 1)
        span = (label_width + 1) * len(by) - 1

        def line(labels: tuple[str, ...], f: Figures, change: Changes | None = None) -> str:
            if len(labels) == 1 and len(by) > 1:  # total lines: one label over every column
                cells = [_clip(labels[0], span).ljust(span)]
            else:
                cells = [_clip(label, label_width).ljust(label_width) for label in labels]
            per = f.kg_per_beneficiary
            values = [format_number(f.kg, 1, lang), _count(f.items, lang)]
            if show_pieces:
                values.append(_count(f.pieces, lang))
            values += [
                _count(f.visits, lang) if f.counted else "-",
                _count(f.beneficiaries, lang) if f.counted else "-",
                "-" if per is None or not f.counted else format_number(per, 1, lang),
            ]
            if show_shares:
                values += [_pct(f.manual_share, lang), _pct(f.voided_share, lang)]
            if compared:
                c = change or Changes()
                values += [_signed(c.kg_pct), _signed(c.persons_pct), _signed(c.visits_pct)]
            cells += [v.rjust(w) for v, w in zip(values, widths, strict=True)]
            return " ".join(cells)

        title = _("Report {period}").format(period=report.period.label)
        if report.by:
            title += " — " + ", ".join(grouping_title(g) for g in report.by)
        out = [title, "=" * min(len(title), width)]
        for sentence in summary_lines(report, lang):
            out += textwrap.wrap(sentence, width, subsequent_indent="  ")
        out.append("")
        head_labels = tuple(_clip(grouping_title(g), label_width) for g in by)
        header = " ".join(h.ljust(label_width) for h in head_labels)
        header += " " + " ".join(h.rjust(w) for h, w in zip(heads, widths, strict=True))
        out += [header, "-" * len(header)]
        out += [line(labels, f, c) for labels, f, c in rows]
        out.append("-" * len(header))
        out.append(line((_("total"),), report.total, report.changes))
        if report.previous is not None:
            out.append(line((_("a year before"),), report.previous))
        if "profile" in report.by:
            out += textwrap.wrap(
                _("A person with several profiles is in several rows: rows do not add up."), width
            )
        # station-supplied codes and names: shown, never run by the terminal
        return "\n".join(visible(text.rstrip()) for text in out).rstrip() + "\n"


# -- CSV and JSON ----------------------------------------------------------------------------------
_FIELDS = [
    "kg",
    "net_mg",
    "items",
    "pieces",
    "visits",
    "beneficiaries",
    "referrers",
    "monthly_avg_kg",
    "monthly_avg_beneficiaries",
    "kg_per_beneficiary",
    "manual",
    "manual_share",
    "voided",
    "voided_share",
]


def _field_titles() -> dict[str, str]:
    """Column titles for people (a spreadsheet opened by the office), in the current language;
    a plain CSV keeps the field names, stable for scripts."""
    return {
        "kg": _("kg"),
        "net_mg": _("net (mg)"),
        "items": _("items"),
        "pieces": _("pieces"),
        "visits": _("visits"),
        "beneficiaries": _("persons"),
        "referrers": _("structures"),
        "monthly_avg_kg": _("kg per month"),
        "monthly_avg_beneficiaries": _("persons per month"),
        "kg_per_beneficiary": _("kg per person"),
        "manual": _("manual entries"),
        "manual_share": _("manual share"),
        "voided": _("voided"),
        "voided_share": _("voided share"),
        "previous_kg": _("kg a year before"),
        "previous_visits": _("visits a year before"),
        "previous_beneficiaries": _("persons a year before"),
        "change_kg_pct": _("kg change %"),
        "change_visits_pct": _("visits change %"),
        "change_beneficiaries_pct": _("persons change %"),
    }


# the same key over the same period a year before, and the change (empty: no comparison)
_YEAR_BEFORE = [
    "previous_kg",
    "previous_visits",
    "previous_beneficiaries",
    "change_kg_pct",
    "change_visits_pct",
    "change_beneficiaries_pct",
]


def _dec(value: float | None, places: int, comma: bool) -> str:
    if value is None:
        return ""
    text = f"{value:.{places}f}"
    return text.replace(".", ",") if comma else text


def _year_before_values(before: Figures | None, changes: Changes, comma: bool) -> list[str]:
    if before is None:
        return [""] * len(_YEAR_BEFORE)
    kg = kg_text(before.net_mg)
    n = before.counted
    return [
        kg.replace(".", ",") if comma else kg,
        str(before.visits) if n else "",
        str(before.beneficiaries) if n else "",
        _dec(changes.kg_pct, 1, comma),
        _dec(changes.visits_pct, 1, comma),
        _dec(changes.persons_pct, 1, comma),
    ]


def _csv_values(f: Figures, comma: bool) -> list[str]:
    def dec(value: float | None, places: int) -> str:
        return _dec(value, places, comma)

    kg = kg_text(f.net_mg)
    per = f.kg_per_beneficiary if f.counted else None
    n = f.counted  # quick figures (a year before) have no distinct counts: empty cells
    return [
        kg.replace(".", ",") if comma else kg,
        str(f.net_mg),
        str(f.items),
        str(f.pieces),
        str(f.visits) if n else "",
        str(f.beneficiaries) if n else "",
        str(f.referrers) if n else "",
        dec(f.monthly_avg_kg, 3),
        dec(f.monthly_avg_beneficiaries, 1) if n else "",
        dec(per, 3),
        str(f.manual),
        dec(f.manual_share, 4),
        str(f.voided),
        dec(f.voided_share, 4),
    ]


def to_csv(
    report: Report, *, sep: str = ",", decimal_comma: bool = False, excel: bool = False
) -> bytes:
    """UTF-8 CSV, one row per group then ``total`` (and ``previous_year``). ``excel``: a BOM,
    ``;``, decimal commas and column titles in the staff's language, what LibreOffice and Excel
    open as they are in France."""
    if excel:
        sep, decimal_comma = ";", True
    if len(sep) != 1:
        raise ValueError(_("the separator must be one character"))
    by = report.by or ("month",)
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=sep, lineterminator="\r\n")
    if excel:
        titles = _field_titles()
        header = [
            c
            for g in by
            for c in (grouping_title(g), _("{what} (name)").format(what=grouping_title(g)))
        ] + [titles[f] for f in _FIELDS + _YEAR_BEFORE]
    else:
        header = [c for g in by for c in (g, f"{g}_name")] + _FIELDS + _YEAR_BEFORE
    writer.writerow(header)
    comma = decimal_comma
    if report.by:
        rows = [(r.key, r.label, r.figures, r.previous, r.changes) for r in report.rows]
    else:
        rows = [((k,), (k,), f, None, Changes()) for k, f in report.monthly]
    for key, label, f, before, changes in rows:
        lead = [spreadsheet_text(c) for pair in zip(key, label, strict=True) for c in pair]
        writer.writerow(lead + _csv_values(f, comma) + _year_before_values(before, changes, comma))
    blank = [""] * (2 * len(by) - 1)
    total, previous = (
        (_("total"), _("same period last year")) if excel else ("total", "previous_year")
    )
    year_before = _year_before_values(report.previous, report.changes, comma)
    writer.writerow([total, *blank, *_csv_values(report.total, comma), *year_before])
    if report.previous is not None:
        nothing = [""] * len(_YEAR_BEFORE)
        writer.writerow([previous, *blank, *_csv_values(report.previous, comma), *nothing])
    text = buf.getvalue()
    return ("\ufeff" + text if excel else text).encode("utf-8")


# what Excel and LibreOffice read as the start of a formula (OWASP "CSV injection")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")


def spreadsheet_text(text: str) -> str:
    """Text that a spreadsheet would run as a formula (a station's code ``=HYPERLINK(…)``),
    kept as text by a leading apostrophe; other text unchanged."""
    # a spreadsheet skips leading blanks before a formula sign, and reads the full-width
    # signs as formula signs too
    return "'" + text if text.lstrip(" \u00a0\u3000").startswith(_FORMULA_START) else text


def spreadsheet_cell(value: object) -> object:
    """A CSV cell: text made safe (:func:`spreadsheet_text`); numbers, negative ones included,
    stay numbers."""
    return spreadsheet_text(value) if isinstance(value, str) else value


def report_dict(report: Report) -> dict[str, Any]:
    p = report.period
    return {
        "period": {"start": p.start.isoformat(), "end": p.end.isoformat(), "label": p.label},
        "by": list(report.by),
        "total": report.total.as_dict(),
        "previous": None if report.previous is None else report.previous.as_dict(),
        "change_kg_pct": report.change_kg_pct,
        "changes": report.changes.as_dict(),
        "referrers": report.referrers,
        "purged_months": list(report.purged_months),
        "purged_note": report.purged_note(),
        "monthly": [{"month": k, **f.as_dict()} for k, f in report.monthly],
        "rows": [
            {
                "key": list(r.key),
                "label": list(r.label),
                **{g: k for g, k in zip(report.by, r.key, strict=True)},
                **r.figures.as_dict(),
                "previous": None if r.previous is None else r.previous.as_dict(),
                "changes": r.changes.as_dict(),
            }
            for r in report.rows
        ],
        "subgroups": [
            {
                "tag": s.tag,
                "label": report.names.label("profile", s.tag),
                **s.figures.as_dict(),
                "previous": None if s.previous is None else s.previous.as_dict(),
                "changes": s.changes.as_dict(),
                "structures": [{"type": kind, "count": n} for kind, n in s.structures],
            }
            for s in report.subgroups
        ],
    }


def to_json(report: Report, lang: str | None = None) -> str:
    body = report_dict(report)
    body["summary"] = summary_lines(report, lang)
    return json.dumps(body, ensure_ascii=False, indent=1)


# -- HTML ------------------------------------------------------------------------------------------
_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
margin:2rem auto;max-width:60rem;padding:0 1rem;color:#1d2733}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.1rem;margin-top:2rem}
.summary{font-size:1.1rem;line-height:1.5}.summary p{margin:.2rem 0}.muted{color:#5b6b7a}
table{border-collapse:collapse;width:100%;font-size:.9rem;margin-top:.5rem}
th,td{padding:.25rem .5rem;border-bottom:1px solid #dde3ea}th{text-align:left;background:#f1f4f7}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}tr.total td{font-weight:bold}
svg{max-width:100%;height:auto}
@media print{body{margin:0}}
"""


def to_html(report: Report, lang: str | None = None, *, title: str | None = None) -> str:
    """One self-contained file: inline CSS and SVG charts, no script, no URL to fetch."""
    from .charts import bars_svg, monthly_kg_svg  # matplotlib only for charts, not tables

    with speaking(lang) as lang:
        esc = html.escape
        heading = title or _("Report {period}").format(period=report.period.label)
        by = report.by or ("month",)
        lines = summary_lines(report, lang)
        charts = [monthly_kg_svg(report, lang=lang)]
        if report.by and report.by != ("month",):
            charts.append(
                bars_svg(
                    report.rows,
                    _("kg by {grouping}").format(
                        grouping=" / ".join(grouping_title(g) for g in report.by)
                    ),
                    lang=lang,
                )
            )
        show_pieces = report.total.pieces > 0  # only counting scales give pieces
        heads = [
            _("kg"),
            _("items"),
            *([_("pieces")] if show_pieces else []),
            _("visits"),
            _("persons"),
            _("kg per person"),
            _("manual"),
            _("voided"),
        ]
        compared = _compared(report)
        if compared:  # the same key a year before, and the change
            heads += [
                _("kg a year before"),
                _("persons a year before"),
                _("visits a year before"),
                _("kg change %"),
                _("persons change %"),
                _("visits change %"),
            ]
        parts = [
            "<!DOCTYPE html>",
            f'<html lang="{esc(lang)}"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{esc(heading)}</title><style>{_CSS}</style></head><body>",
            f"<h1>{esc(heading)}</h1>",
            f'<p class="muted">{esc(report.period.start.isoformat())} → '
            f"{esc(report.period.last_day.isoformat())}</p>",
            '<div class="summary">' + "".join(f"<p>{esc(s)}</p>" for s in lines) + "</div>",
        ]
        parts += [f"<figure>{svg}</figure>" for svg in charts]
        parts.append(f"<h2>{esc(', '.join(grouping_title(g) for g in by))}</h2><table><thead><tr>")
        parts += [f"<th>{esc(grouping_title(g))}</th>" for g in by]
        parts += [f'<th class="n">{esc(h)}</th>' for h in heads]
        parts.append("</tr></thead><tbody>")
        rows = (
            [(r.label, r.figures, r.previous) for r in report.rows]
            if report.by
            else [((k,), f, None) for k, f in report.monthly]
        )

        def cells(
            labels: tuple[str, ...], f: Figures, before: Figures | None, css: str = ""
        ) -> str:
            per = f.kg_per_beneficiary
            values = [
                format_number(f.kg, 1, lang),
                _count(f.items, lang),
                *([_count(f.pieces, lang)] if show_pieces else []),
                _count(f.visits, lang) if f.counted else "-",
                _count(f.beneficiaries, lang) if f.counted else "-",
                "-" if per is None or not f.counted else format_number(per, 1, lang),
                _count(f.manual, lang),
                _count(f.voided, lang),
            ]
            if compared and before is not None:
                c = Changes.between(f, before)
                values += [
                    format_number(before.kg, 1, lang),
                    _count(before.beneficiaries, lang) if before.counted else "-",
                    _count(before.visits, lang) if before.counted else "-",
                    change_text(c.kg_pct),
                    change_text(c.persons_pct),
                    change_text(c.visits_pct),
                ]
            elif compared:
                values += [""] * 6
            tds = "".join(f"<td>{esc(x)}</td>" for x in labels)
            tds += "".join(f'<td class="n">{esc(v)}</td>' for v in values)
            return f'<tr class="{css}">{tds}</tr>' if css else f"<tr>{tds}</tr>"

        parts += [cells(labels, f, before) for labels, f, before in rows]
        blank = ("",) * (len(by) - 1)
        parts.append(cells((_("total"), *blank), report.total, report.previous, "total"))
        if report.previous is not None:
            parts.append(cells((_("a year before"), *blank), report.previous, None))
        parts.append("</tbody></table>")
        parts.append(
            '<p class="muted">'
            + esc(
                _(
                    "Only weighings count; voided ones are left out. Unique beneficiaries are "
                    "counted across all stations."
                )
            )
            + "</p>"
        )
        parts.append("</body></html>")
        return "\n".join(parts) + "\n"
