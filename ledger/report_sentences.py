"""What a funder reads: a report's figures as sentences, in the staff's language and grammar.

"2016 : 25 t redistribuées à 1 482 personnes (124 par mois) orientées par 28 structures",
"dont 332 femmes avec enfants (2,2 t) orientées par 4 hôpitaux, 1 CHU et 1 CASO", "215 femmes
avec enfants de janvier à avril 2017, +55 % par rapport à la même période de 2016". Numbers take
the singular or plural by the language's rule (ngettext); the French participle agrees with the
noun's gender, given per profile tag (report_model.PROFILE_GENDERS, or the registry's
``gender``): a feminine noun fills ``{who_f}``, a masculine one ``{who}``, so each has its own
message and its own agreement in the catalogue.
"""

from __future__ import annotations

from decimal import Decimal

from common.i18n import _, ngettext, speaking
from common.units import format_number, round_half_up

from .report_model import Figures, Report, Subgroup, format_count

__all__ = ["change_text", "mass", "row_sentences", "summary_lines"]


def mass(net_mg: int, lang: str | None = None) -> str:
    """For sentences: "25 t", "2,2 t" from one tonne, else "850 kg" ("8,5 kg" under 10 kg); a
    decimal that reads ",0" is left out."""
    if abs(net_mg) >= 1_000_000_000:
        return _tidy(format_number(Decimal(net_mg) / 10**9, 1, lang)) + " t"
    kg = Decimal(net_mg) / 10**6
    return _tidy(format_number(kg, 1 if abs(kg) < 10 else 0, lang)) + " kg"


def _tidy(number: str) -> str:
    return number[:-2] if number.endswith((",0", ".0")) else number


def _average(n: float, lang: str | None = None) -> str:
    """A monthly average of persons: "124", but "0,2" rather than a "0" that reads as nobody."""
    return format_number(n, 1 if 0 < abs(n) < 10 else 0, lang)


def change_text(pct: float | None) -> str:
    """ "+55 %" (rounded half up), "-3 %", or "-" when there is nothing to compare with."""
    if pct is None:
        return "-"
    return f"{round_half_up(Decimal(str(pct)), 0):+} %"


def _given(net_mg: int, lang: str) -> str:
    """ "25 t redistributed" / "850 kg redistributed": the participle agrees with the unit."""
    text = mass(net_mg, lang)
    whole = int(abs(net_mg) // (10**9 if text.endswith(" t") else 10**6))
    if text.endswith(" t"):
        return ngettext("{tonnes} redistributed", "{tonnes} redistributed", whole).format(
            tonnes=text
        )
    return ngettext("{kg} redistributed", "{kg} redistributed", whole).format(kg=text)


def _persons(n: int) -> str:
    return ngettext("{n} person", "{n} persons", n).format(n=format_count(n))


def _structures(n: int) -> str:
    return ngettext("{n} structure", "{n} structures", n).format(n=format_count(n))


def _and(items: list[str]) -> str:
    """ "A, B and C" in the current language."""
    if len(items) < 2:
        return "".join(items)
    return _("{items} and {last}").format(items=", ".join(items[:-1]), last=items[-1])


def summary_lines(report: Report, lang: str | None = None) -> list[str]:
    """What a funder reads: the total sentence, the change, the averages, and the subgroups'
    sentences when the report is by profile (or by type of referring structure)."""
    with speaking(lang) as lang:
        t = report.total
        n = t.beneficiaries
        lines = [
            ngettext(
                "{period}: {given} to {persons} ({monthly} a month) referred by {structures}",
                "{period}: {given} to {persons} ({monthly} a month) referred by {structures}",
                n,
            ).format(
                period=report.period.label,
                given=_given(t.net_mg, lang),
                persons=_persons(n),
                monthly=_average(t.monthly_avg_beneficiaries, lang),
                structures=_structures(report.referrers),
            )
        ]
        if report.change_kg_pct is not None:
            lines.append(
                _("{change} over the same period last year").format(
                    change=change_text(report.change_kg_pct)
                )
            )
        persons_change = report.changes.persons_pct
        if persons_change is not None:
            lines.append(_year_on_year(report, n, ngettext("person", "persons", n), persons_change))
        average = t.monthly_avg_beneficiaries
        lines.append(
            ngettext(
                "{period}: {mass}, monthly average {kg} kg and {persons} beneficiary",
                "{period}: {mass}, monthly average {kg} kg and {persons} beneficiaries",
                int(round_half_up(Decimal(str(average)), 0)),
            ).format(
                period=report.period.label,
                mass=mass(t.net_mg, lang),
                kg=format_number(t.monthly_avg_kg, 1, lang),
                persons=_average(average, lang),
            )
        )
        per = t.kg_per_beneficiary
        lines.append(
            _("{per} kg per beneficiary; {visits}, {items}").format(
                per="-" if per is None else format_number(per, 1, lang),
                visits=ngettext("{n} visit", "{n} visits", t.visits).format(
                    n=format_count(t.visits)
                ),
                items=ngettext("{n} item", "{n} items", t.items).format(n=format_count(t.items)),
            )
        )
        lines.append(
            _("manual entries {manual} %, voided {voided} %").format(
                manual=format_number(100 * t.manual_share, 1, lang),
                voided=format_number(100 * t.voided_share, 1, lang),
            )
        )
        note = report.purged_note()  # kg kept for purged months, persons not
        if note:
            lines.append(note)
        lines += row_sentences(report, lang)
        return lines


def _year_on_year(report: Report, n: int, who: str, pct: float) -> str:
    """ "215 women with children from January to April 2017, +55 % over the same period of
    2016"."""
    return _("{n} {who} {when}, {change} over {before}").format(
        n=format_count(n),
        who=who,
        when=report.period.words(),
        change=change_text(pct),
        before=report.period.previous_year().reference(),
    )


def _subgroup(report: Report, group: Subgroup, lang: str) -> list[str]:
    f = group.figures
    n = f.beneficiaries
    who, feminine = report.names.profile_noun(group.tag, n)
    structures = _and([report.names.structures(kind, k) for kind, k in group.structures])
    if not structures:
        line = _("of whom {n} {who} ({mass})").format(
            n=format_count(n), who=who, mass=mass(f.net_mg, lang)
        )
    elif feminine:
        line = ngettext(
            "of whom {n} {who_f} ({mass}) referred by {structures}",
            "of whom {n} {who_f} ({mass}) referred by {structures}",
            n,
        ).format(n=format_count(n), who_f=who, mass=mass(f.net_mg, lang), structures=structures)
    else:
        line = ngettext(
            "of whom {n} {who} ({mass}) referred by {structures}",
            "of whom {n} {who} ({mass}) referred by {structures}",
            n,
        ).format(n=format_count(n), who=who, mass=mass(f.net_mg, lang), structures=structures)
    lines = [line]
    if group.changes.persons_pct is not None:
        lines.append(_year_on_year(report, n, who, group.changes.persons_pct))
    return lines


def row_sentences(report: Report, lang: str | None = None) -> list[str]:
    """By profile: one sentence per tag with its structures by type ("of whom 332 women with
    children (2.2 t) referred by 4 hospitals, 1 CHU and 1 CASO") and its persons year on year.
    By type of referring structure alone: "1,482 persons (25 t) referred by 4 hospitals"."""
    with speaking(lang) as lang:
        if report.subgroups:
            return [line for group in report.subgroups for line in _subgroup(report, group, lang)]
        if report.by != ("referrer_type",):
            return []
        out = []
        for row in report.rows:
            f: Figures = row.figures
            if not row.key[0] or not f.beneficiaries:
                continue
            out.append(
                ngettext(
                    "{persons} ({mass}) referred by {structures}",
                    "{persons} ({mass}) referred by {structures}",
                    f.beneficiaries,
                ).format(
                    persons=_persons(f.beneficiaries),
                    mass=mass(f.net_mg, lang),
                    structures=report.names.structures(row.key[0], f.referrers),
                )
            )
        return out
