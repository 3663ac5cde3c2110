"""FEAD / ESF+ indicators and eco-organism declarations as a terminal table, CSV, JSON or one
standalone HTML page, in the staff's language (French by default)."""

from __future__ import annotations

import csv
import html
import io
import json
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from common.i18n import _, speaking
from common.text import visible
from common.units import format_mass, format_number, kg_text

from ..report_render import spreadsheet_text
from .eco import EcoReport, tonnes_text
from .fead import INDICATORS, FeadReport, label, sentences, source

__all__ = [
    "eco_csv",
    "eco_html",
    "eco_json",
    "eco_sentences",
    "eco_table",
    "fead_csv",
    "fead_html",
    "fead_json",
    "fead_table",
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


def _table(page: Page, width: int) -> str:
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


def _html(page: Page, lang: str) -> str:
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


def _csv(header: list[str], rows: list[list[Any]], sep: str, excel: bool) -> bytes:
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


def _decimal(text: str, comma: bool) -> str:
    return text.replace(".", ",") if comma else text


def _period_line(start: str, last: str, stations: Sequence[str] | None) -> str:
    line = f"{start} → {last}"
    if stations is not None:
        line += " · " + _("stations: {list}").format(list=", ".join(stations) or DASH)
    return line


# -- FEAD / ESF+ ----------------------------------------------------------------------------------
def _fead_page(report: FeadReport, lang: str) -> Page:
    def n(value: int) -> str:
        return format_number(value, 0, lang)

    complete = not report.unknown
    estimated = report.estimated is not None and not complete
    heads = [_("indicator"), _("counted")]
    if estimated:
        heads += [_("estimated"), _("total")]
    heads.append(_("source"))
    rows = []
    for indicator in INDICATORS:
        row = [label(indicator), n(report.counted[indicator.key])]
        if estimated:
            assert report.estimated is not None
            row += [n(report.estimated[indicator.key]), n(report.total(indicator.key) or 0)]
        rows.append([*row, source(indicator)])
    notes = [
        _(
            "A household is a beneficiary code with a weighing in the period; its members are "
            "counted from its composition on the day of each visit (the most of each kind)."
        ),
        _(
            "FEAD: Delegated Regulation (EU) No 1255/2014, Annex, indicator 14. ESF+: Regulation "
            "(EU) 2021/1057, Annex III, indicator 2.1. Definitions: docs/reports.md."
        ),
    ]
    if not complete and not estimated:
        notes.insert(0, _("Counted figures only: households without a composition are left out."))
    return Page(
        _("FEAD / ESF+ indicators {period}").format(period=report.period.label),
        _period_line(
            report.period.start.isoformat(), report.period.last_day.isoformat(), report.stations
        ),
        [
            *sentences(report, lang),
            _("given out: {mass}").format(
                mass=format_mass(report.net_mg, "t" if report.net_mg >= 10**9 else "kg", 3, lang)
            ),
        ],
        [Section(_("Persons helped"), heads, rows, set(range(1, len(heads) - 1)))],
        notes,
    )


def fead_table(report: FeadReport, lang: str | None = None, *, width: int = 100) -> str:
    with speaking(lang) as lang:
        return _table(_fead_page(report, lang), width)


def fead_html(report: FeadReport, lang: str | None = None) -> str:
    with speaking(lang) as lang:
        return _html(_fead_page(report, lang), lang)


def fead_json(report: FeadReport, lang: str | None = None) -> str:
    with speaking(lang) as lang:
        body = report.as_dict()
        body["summary"] = sentences(report, lang)
        return json.dumps(body, ensure_ascii=False, indent=1)


def fead_csv(
    report: FeadReport, *, sep: str = ",", excel: bool = False, lang: str | None = None
) -> bytes:
    """One row per figure: the households first, then each indicator (``counted``,
    ``estimated`` when asked, ``total`` when complete or estimated, else empty)."""
    with speaking(lang):
        if excel:
            header = [_("figure"), _("name"), _("counted"), _("estimated"), _("total"), _("source")]
        else:
            header = ["key", "name", "counted", "estimated", "total", "source"]
        rows: list[list[Any]] = [
            ["households", _("households helped"), report.households, "", report.households, ""],
            ["households_known", _("households with a composition"), report.known, "", "", ""],
            [
                "households_unknown",
                _("households without a composition"),
                report.unknown,
                "",
                "",
                "",
            ],
            ["persons_at_least", _("persons helped, at least"), report.at_least, "", "", ""],
        ]
        for indicator in INDICATORS:
            est = "" if report.estimated is None else report.estimated[indicator.key]
            total = report.total(indicator.key)
            rows.append(
                [
                    indicator.key,
                    label(indicator),
                    report.counted[indicator.key],
                    est,
                    "" if total is None else total,
                    indicator.source,
                ]
            )
        kg = _decimal(kg_text(report.net_mg), excel)
        rows.append(["kg", _("kg given out"), kg, "", kg, ""])
        return _csv(header, rows, sep, excel)


# -- eco-organisms ---------------------------------------------------------------------------------
def eco_sentences(report: EcoReport, lang: str | None = None) -> list[str]:
    with speaking(lang) as lang:
        lines = [
            _("{organism}, {period}: {tonnes} t declared as given out for reuse (donation)").format(
                organism=report.organism_name,
                period=report.period.label,
                tonnes=format_number(Decimal(tonnes_text(report.declared_mg)), 3, lang),
            )
        ]
        others = sum(u.net_mg for u in report.unmapped if u.organism is not None)
        nobody = sum(u.net_mg for u in report.unmapped if u.organism is None)
        if report.unmapped:
            lines.append(
                _(
                    "not in this declaration: {others} declared to other eco-organisms, "
                    "{nobody} mapped to none (listed below)"
                ).format(
                    others=format_mass(others, "kg", 3, lang),
                    nobody=format_mass(nobody, "kg", 3, lang),
                )
            )
        lines.append(
            _("every weighing of the period: {total} = declared + others + unmapped").format(
                total=format_mass(report.total_mg, "kg", 3, lang)
            )
        )
        return lines


def _eco_page(report: EcoReport, lang: str) -> Page:
    def n(value: int) -> str:
        return format_number(value, 0, lang)

    def kg(mg: int) -> str:
        return format_number(Decimal(kg_text(mg)), 3, lang)

    def t(mg: int) -> str:
        return format_number(Decimal(tonnes_text(mg)), 3, lang)

    heads = [_("stream"), _("declaration category"), _("t"), _("kg"), _("items"), _("categories")]
    rows = [
        [
            line.stream,
            line.name,
            t(line.net_mg),
            kg(line.net_mg),
            n(line.items),
            ", ".join(line.categories) or DASH,
        ]
        for line in report.lines
    ]
    total = [
        _("declared"),
        "",
        t(report.declared_mg),
        kg(report.declared_mg),
        n(sum(line.items for line in report.lines)),
        "",
    ]
    sections = [Section(_("Sortie réemploi (don)"), heads, rows, {2, 3, 4}, total)]
    if report.unmapped:
        sections.append(
            Section(
                _("Not in this declaration"),
                [_("category"), _("name"), _("kg"), _("items"), _("declared to")],
                [
                    [
                        u.category or _("(none)"),
                        u.name or DASH,
                        kg(u.net_mg),
                        n(u.items),
                        u.organism_name or u.organism or _("nobody: map it in the registry"),
                    ]
                    for u in report.unmapped
                ],
                {2, 3},
            )
        )
    if report.records is not None:
        for line in report.lines:
            recs = report.records.get(line.code, [])
            sections.append(
                Section(
                    _("Records behind {name}").format(name=line.name),
                    [_("time"), _("station"), _("seq"), _("category"), _("kg")],
                    [
                        [
                            str(r["occurred_at"]),
                            str(r["station"]),
                            str(r["seq"]),
                            str(r["category"]),
                            kg(int(r["net_mg"])),
                        ]
                        for r in recs
                    ],
                    {2, 4},
                )
            )
    return Page(
        _("{organism}: declaration {period}").format(
            organism=report.organism_name, period=report.period.label
        ),
        _period_line(
            report.period.start.isoformat(), report.period.last_day.isoformat(), report.stations
        ),
        eco_sentences(report, lang),
        sections,
        [
            _(
                "Each live weighing is an item given out; voided weighings are left out. "
                "Tonnes are rounded half up once, on each total (docs/reports.md)."
            )
        ],
    )


def eco_table(report: EcoReport, lang: str | None = None, *, width: int = 100) -> str:
    with speaking(lang) as lang:
        return _table(_eco_page(report, lang), width)


def eco_html(report: EcoReport, lang: str | None = None) -> str:
    with speaking(lang) as lang:
        return _html(_eco_page(report, lang), lang)


def eco_json(report: EcoReport, lang: str | None = None) -> str:
    with speaking(lang) as lang:
        body = report.as_dict()
        body["summary"] = eco_sentences(report, lang)
        return json.dumps(body, ensure_ascii=False, indent=1)


def eco_csv(
    report: EcoReport, *, sep: str = ",", excel: bool = False, lang: str | None = None
) -> bytes:
    """The declaration, one row per declaration category, then the categories not declared
    (``kind`` says which); with records, one row per record behind each line instead."""
    with speaking(lang):
        comma = excel
        if report.records is not None:
            header = [
                "code",
                "name",
                "occurred_at",
                "station",
                "epoch",
                "seq",
                "uuid",
                "category",
                "net_mg",
                "kg",
            ]
            rows: list[list[Any]] = [
                [
                    line.code,
                    line.name,
                    r["occurred_at"],
                    r["station"],
                    r["epoch"],
                    int(r["seq"]),
                    r["uuid"],
                    r["category"],
                    int(r["net_mg"]),
                    _decimal(kg_text(int(r["net_mg"])), comma),
                ]
                for line in report.lines
                for r in report.records.get(line.code, [])
            ]
            return _csv(header, rows, sep, excel)
        header = ["kind", "stream", "code", "name", "tonnes", "kg", "net_mg", "items", "categories"]
        if excel:
            header = [
                _("kind"),
                _("stream"),
                _("code"),
                _("name"),
                _("t"),
                _("kg"),
                _("net (mg)"),
                _("items"),
                _("categories"),
            ]
        rows = [
            [
                "declared",
                line.stream,
                line.code,
                line.name,
                _decimal(line.tonnes, comma),
                _decimal(kg_text(line.net_mg), comma),
                line.net_mg,
                line.items,
                " ".join(line.categories),
            ]
            for line in report.lines
        ]
        rows.append(
            [
                "total_declared",
                "",
                "",
                "",
                _decimal(tonnes_text(report.declared_mg), comma),
                _decimal(kg_text(report.declared_mg), comma),
                report.declared_mg,
                sum(line.items for line in report.lines),
                "",
            ]
        )
        rows += [
            [
                "other_organism" if u.organism else "unmapped",
                u.organism or "",
                u.category,
                u.name,
                _decimal(tonnes_text(u.net_mg), comma),
                _decimal(kg_text(u.net_mg), comma),
                u.net_mg,
                u.items,
                u.category,
            ]
            for u in report.unmapped
        ]
        rows.append(
            [
                "total_period",
                "",
                "",
                "",
                _decimal(tonnes_text(report.total_mg), comma),
                _decimal(kg_text(report.total_mg), comma),
                report.total_mg,
                "",
                "",
            ]
        )
        return _csv(header, rows, sep, excel)
