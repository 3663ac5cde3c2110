"""FEAD / ESF+ indicators of a period: persons helped and, of them, women, children, seniors,
disabled, migrants, homeless and single parents, from the household compositions the office
imported (``ledger households import``), counted where known and estimated only when asked.

Sources (the definitions funders use, docs/reports.md "FEAD and ESF+ indicators"):

- FEAD, 2014–2020: Regulation (EU) No 223/2014, Art. 13; Commission Delegated Regulation (EU)
  No 1255/2014, Annex (common indicators), result indicator 14 for food support: persons
  receiving food support, of which children aged 15 or below, persons aged 65 or above, women,
  migrants / participants with a foreign background / minorities (including marginalised
  communities such as the Roma), persons with disabilities, homeless persons.
- ESF+, 2021–2027: Regulation (EU) 2021/1057, Annex III (common indicators for ESF+ support
  addressing material deprivation), result indicator 2.1: end recipients of food support, of
  which children below 18, women, end recipients aged 65 and above, with disabilities, third-
  country nationals, with a foreign background and minorities, homeless or affected by housing
  exclusion (the last four may be informed estimates). Single parents: asked in the ESF+
  structured survey of end recipients, not an Annex III figure.

A household is a beneficiary code (one card per household); its members are counted from its
composition on the day of each visit (ledger/store/households.py). Households without a
composition are never guessed silently: the report counts what is known, says how many
households are unknown, and adds an estimate only when ``estimate=True``, labelled as such.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from common.i18n import _, ngettext, speaking
from common.units import format_number, round_half_up

from ..period import Period
from ..store.households import fead_counts, fead_mass

__all__ = ["INDICATORS", "FeadReport", "Indicator", "build_fead", "label", "sentences", "source"]


@dataclass(frozen=True, slots=True)
class Indicator:
    """One figure: its key (a :data:`ledger.store.households.FIGURES` name), what funders call
    it, and where it comes from."""

    key: str
    label: str  # English msgid, shown through _()
    source: str  # the funders' reference, as written on their forms


INDICATORS = (
    Indicator("persons", "persons helped (members of the households)", "FEAD 14 · ESF+ 2.1"),
    Indicator("women", "women (adults)", "FEAD 14 · ESF+ 2.1"),
    Indicator("children_15", "children aged 15 or under", "FEAD 14"),
    Indicator("children_17", "children under 18", "ESF+ 2.1"),
    Indicator("seniors", "persons aged 65 or over", "FEAD 14 · ESF+ 2.1"),
    Indicator("disabled", "persons with disabilities", "FEAD 14 · ESF+ 2.1"),
    Indicator("migrants", "migrants, foreign background, minorities", "FEAD 14 · ESF+ 2.1"),
    Indicator("homeless", "homeless persons", "FEAD 14 · ESF+ 2.1"),
    Indicator("single_parents", "single parents", "ESF+ survey"),
)


def label(indicator: Indicator) -> str:
    """The indicator's name in the current language."""
    names = {
        "persons": _("persons helped (members of the households)"),
        "women": _("women (adults)"),
        "children_15": _("children aged 15 or under"),
        "children_17": _("children under 18"),
        "seniors": _("persons aged 65 or over"),
        "disabled": _("persons with disabilities"),
        "migrants": _("migrants, foreign background, minorities"),
        "homeless": _("homeless persons"),
        "single_parents": _("single parents"),
    }
    return names.get(indicator.key, indicator.label)


def source(indicator: Indicator) -> str:
    """Where the indicator comes from, as funders write it in the current language."""
    return " · ".join(
        {"ESF+ 2.1": _("ESF+ 2.1"), "ESF+ survey": _("ESF+ survey")}.get(part, part)
        for part in indicator.source.split(" · ")
    )


@dataclass(frozen=True)
class FeadReport:
    """The indicators of ``period``: ``counted`` from the households with a composition;
    ``estimated`` (None unless asked, or when nothing is known to estimate from) for the
    households without one, at the known households' average per household."""

    period: Period
    households: int  # beneficiary codes with a live weighing in the period
    known: int  # of them, with a composition at one of their visits at least
    partly: int  # known, but one of their visits had no composition in force
    counted: dict[str, int]
    estimated: dict[str, int] | None
    estimate_asked: bool
    net_mg: int
    items: int
    anonymous: int  # live weighings with no beneficiary code
    stations: tuple[str, ...] | None = None  # None: every station

    @property
    def unknown(self) -> int:
        """Households of the period without any composition."""
        return self.households - self.known

    @property
    def at_least(self) -> int:
        """Persons helped for sure: the members counted, and one per unknown household."""
        return self.counted["persons"] + self.unknown

    def total(self, key: str) -> int | None:
        """Counted plus estimated; None when the figure cannot be complete (unknown households
        and no estimate)."""
        if not self.unknown:
            return self.counted[key]
        if self.estimated is None:
            return None
        return self.counted[key] + self.estimated[key]

    def as_dict(self) -> dict[str, Any]:
        return {
            "period": {
                "label": self.period.label,
                "from": self.period.start.isoformat(),
                "to": self.period.last_day.isoformat(),
            },
            "stations": list(self.stations) if self.stations is not None else None,
            "households": self.households,
            "households_known": self.known,
            "households_partly_known": self.partly,
            "households_unknown": self.unknown,
            "persons_at_least": self.at_least,
            "complete": not self.unknown,
            "estimate": self.estimate_asked,
            "net_mg": self.net_mg,
            "items": self.items,
            "items_without_code": self.anonymous,
            "indicators": [
                {
                    "key": i.key,
                    "label": label(i),
                    "source": i.source,
                    "counted": self.counted[i.key],
                    "estimated": None if self.estimated is None else self.estimated[i.key],
                    "total": self.total(i.key),
                }
                for i in INDICATORS
            ],
        }


def _estimate(counted: dict[str, int], known: int, unknown: int) -> dict[str, int]:
    """The unknown households at the known ones' average: unknown × counted ÷ known, each
    figure rounded half up on its own (so they need not add up)."""
    return {
        key: int(round_half_up(Decimal(unknown) * value / known, 0))
        for key, value in counted.items()
    }


def build_fead(
    store: Any,
    period: Period,
    *,
    estimate: bool = False,
    stations: Sequence[str] | None = None,
) -> FeadReport:
    """The FEAD / ESF+ figures of ``period`` (of ``stations`` when given)."""
    bounds = period.bounds()
    found = fead_counts(store, bounds, stations)
    mass = fead_mass(store, bounds, stations)
    counted = {i.key: found[i.key] for i in INDICATORS}
    households, known = found["households"], found["known"]
    estimated = None
    if estimate and known and households > known:
        estimated = _estimate(counted, known, households - known)
    elif estimate and households == known:
        estimated = dict.fromkeys(counted, 0)  # nothing to estimate
    return FeadReport(
        period,
        households,
        known,
        found["partly"],
        counted,
        estimated,
        estimate,
        mass["net_mg"],
        mass["items"],
        mass["anonymous"],
        tuple(stations) if stations is not None else None,
    )


def sentences(report: FeadReport, lang: str | None = None) -> list[str]:
    """What the report says first: the households, what is counted and what is not."""
    with speaking(lang) as lang:

        def n(value: int) -> str:
            return format_number(value, 0, lang)

        lines = [
            ngettext(
                "{period}: {n} household helped",
                "{period}: {n} households helped",
                report.households,
            ).format(period=report.period.label, n=n(report.households)),
        ]
        if not report.households:
            return lines
        lines.append(
            ngettext(
                "{known} of them with a composition: {persons} person counted",
                "{known} of them with a composition: {persons} persons counted",
                report.counted["persons"],
            ).format(known=n(report.known), persons=n(report.counted["persons"]))
        )
        if not report.unknown:
            lines.append(_("every household has a composition: the figures are complete"))
        if report.unknown:
            lines.append(
                ngettext(
                    "{n} household has no composition: its members are not counted "
                    "(at least {least} persons helped in all)",
                    "{n} households have no composition: their members are not counted "
                    "(at least {least} persons helped in all)",
                    report.unknown,
                ).format(n=n(report.unknown), least=n(report.at_least))
            )
            if report.estimated is not None:
                lines.append(
                    _(
                        "estimated: the {n} unknown households at the average of the {known} "
                        "known ones"
                    ).format(n=n(report.unknown), known=n(report.known))
                )
            elif report.estimate_asked:
                lines.append(_("no estimate: no household of the period has a composition"))
            else:
                lines.append(_("import their compositions, or ask for an estimate (--estimate)"))
        if report.partly:
            lines.append(
                ngettext(
                    "{n} household had a visit with no composition in force: counted from "
                    "its other visits",
                    "{n} households had a visit with no composition in force: counted from "
                    "their other visits",
                    report.partly,
                ).format(n=n(report.partly))
            )
        if report.anonymous:
            lines.append(
                ngettext(
                    "{n} item was given with no beneficiary code (nobody to count)",
                    "{n} items were given with no beneficiary code (nobody to count)",
                    report.anonymous,
                ).format(n=n(report.anonymous))
            )
        return lines
