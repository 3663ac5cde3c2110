"""FEAD / ESF+ indicators and eco-organism declarations as a terminal table, CSV, JSON or one
standalone HTML page, in the staff's language (French by default)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from common.i18n import _, ngettext, speaking
from common.units import format_mass, format_number, kg_text

from .eco import EcoMapping, EcoReport, tonnes_text
from .fead import INDICATORS, FeadReport, label, sentences, source
from .pages import DASH, Page, Section, csv_bytes, decimal_text, page_html, page_table, period_line

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
    "mapping_table",
]


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
        period_line(
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
        return page_table(_fead_page(report, lang), width)


def fead_html(report: FeadReport, lang: str | None = None) -> str:
    with speaking(lang) as lang:
        return page_html(_fead_page(report, lang), lang)


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
        kg = decimal_text(kg_text(report.net_mg), excel)
        rows.append(["kg", _("kg given out"), kg, "", kg, ""])
        return csv_bytes(header, rows, sep, excel)


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
        period_line(
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
        return page_table(_eco_page(report, lang), width)


def eco_html(report: EcoReport, lang: str | None = None) -> str:
    with speaking(lang) as lang:
        return page_html(_eco_page(report, lang), lang)


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
                    decimal_text(kg_text(int(r["net_mg"])), comma),
                ]
                for line in report.lines
                for r in report.records.get(line.code, [])
            ]
            return csv_bytes(header, rows, sep, excel)
        header = [
            "kind",
            "stream",
            "code",
            "name",
            "tonnes",
            "kg",
            "net_mg",
            "items",
            "categories",
            "organism",
        ]
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
                _("eco-organism"),
            ]
        rows = [
            [
                "declared",
                line.stream,
                line.code,
                line.name,
                decimal_text(line.tonnes, comma),
                decimal_text(kg_text(line.net_mg), comma),
                line.net_mg,
                line.items,
                " ".join(line.categories),
                report.organism,
            ]
            for line in report.lines
        ]
        rows.append(
            [
                "total_declared",
                "",
                "",
                "",
                decimal_text(tonnes_text(report.declared_mg), comma),
                decimal_text(kg_text(report.declared_mg), comma),
                report.declared_mg,
                sum(line.items for line in report.lines),
                "",
                report.organism,
            ]
        )
        rows += [
            [
                "other_organism" if u.organism else "unmapped",
                "",
                u.category,
                u.name,
                decimal_text(tonnes_text(u.net_mg), comma),
                decimal_text(kg_text(u.net_mg), comma),
                u.net_mg,
                u.items,
                u.category,
                u.organism or "",
            ]
            for u in report.unmapped
        ]
        rows.append(
            [
                "total_period",
                "",
                "",
                "",
                decimal_text(tonnes_text(report.total_mg), comma),
                decimal_text(kg_text(report.total_mg), comma),
                report.total_mg,
                "",
                "",
                "",
            ]
        )
        return csv_bytes(header, rows, sep, excel)


def mapping_table(
    mapping: EcoMapping, names: Mapping[str, str], lang: str | None = None, *, width: int = 100
) -> str:
    """The mapping in force: each organism's declaration categories with the counter categories
    they gather, and the registry's categories no organism declares (to map before a
    declaration)."""
    with speaking(lang) as lang:
        sections = []
        for code, name in mapping.organisms.items():
            rows = [
                [
                    c["stream"] or DASH,
                    f"{c['name']} ({c['code']})",
                    ", ".join(mapping.declared_by(code, c["code"])) or DASH,
                ]
                for c in mapping.categories[code]
            ]
            heads = [_("stream"), _("declaration category"), _("categories")]
            sections.append(Section(f"{name} ({code})", heads, rows))
        nobody = mapping.unmapped(names)
        if nobody:
            sections.append(
                Section(
                    _("Categories no eco-organism declares"),
                    [_("category"), _("name")],
                    [[c, names[c]] for c in nobody],
                )
            )
        if not mapping.organisms:
            lines = [
                _("No eco-organism in the registry: add an [eco] table (ledger/eco.example.toml).")
            ]
        else:
            lines = [
                ngettext(
                    "{n} eco-organism in the registry",
                    "{n} eco-organisms in the registry",
                    len(mapping.organisms),
                ).format(n=len(mapping.organisms))
            ]
        page = Page(_("Eco-organism mapping"), "", lines, sections)
        return page_table(page, width)
