"""What a report says: figures, rows, the report itself, and the names of codes for people.

Plain values, no SQL: ledger/reports.py builds them from ledger/store/queries.py, the renderers
(report_render, charts) and the dashboard show them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from common.i18n import _, catalogue, language, ngettext
from common.units import format_number

from .period import Period

__all__ = [
    "AGGREGATED",
    "GROUPINGS",
    "PROFILE_GENDERS",
    "PROFILE_TAGS",
    "REFERRER_TYPES",
    "Changes",
    "Figures",
    "Names",
    "RegistrySource",
    "Report",
    "Row",
    "Subgroup",
    "format_count",
    "load_names",
    "pct_change",
    "plural_form",
    "station_groups",
]


class RegistrySource(Protocol):
    """What :func:`load_names` reads: the registries the office imported, by scope."""

    def registries(self) -> Any: ...


# what a retention purge keeps per month × station × category × referrer (the ``aggregates``
# table, docs/privacy.md), and the groupings derived from it
AGGREGATED = ("month", "station", "category", "referrer", "group", "referrer_type")


# -- figures ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Figures:
    """What a report says about a set of live weighings. ``net_mg`` is exact; the rest derives."""

    net_mg: int = 0
    items: int = 0  # live weighings
    pieces: int = 0  # sum of pieces where a counting scale gave them
    visits: int = 0  # distinct (station, visit)
    beneficiaries: int = 0  # distinct codes, all stations together
    referrers: int = 0  # distinct referring structures
    manual: int = 0  # live weighings entered by hand
    voided: int = 0  # weighings of the period cancelled by a void record
    months: float = 1.0  # the period's length, for the monthly averages
    # False: a quick figure (``Report.monthly`` unless grouped by month, ``Report.previous``)
    # without the distinct counts: visits, beneficiaries and referrers are 0, not counted
    counted: bool = True

    @property
    def weighings(self) -> int:
        """Every weighing of the period, voided ones included."""
        return self.items + self.voided

    @property
    def kg(self) -> float:
        return self.net_mg / 1_000_000

    @property
    def tonnes(self) -> float:
        return self.net_mg / 1_000_000_000

    @property
    def monthly_avg_kg(self) -> float:
        return self.kg / self.months if self.months else 0.0

    @property
    def monthly_avg_beneficiaries(self) -> float:
        """Unique beneficiaries of the period divided by its months (as funders count it)."""
        return self.beneficiaries / self.months if self.months else 0.0

    @property
    def kg_per_beneficiary(self) -> float | None:
        return self.kg / self.beneficiaries if self.beneficiaries else None

    @property
    def manual_share(self) -> float:
        return self.manual / self.items if self.items else 0.0

    @property
    def voided_share(self) -> float:
        return self.voided / self.weighings if self.weighings else 0.0

    def as_dict(self) -> dict[str, Any]:
        n = self.counted
        return {
            "net_mg": self.net_mg,
            "kg": self.kg,
            "items": self.items,
            "pieces": self.pieces,
            "visits": self.visits if n else None,
            "beneficiaries": self.beneficiaries if n else None,
            "referrers": self.referrers if n else None,
            "monthly_avg_kg": self.monthly_avg_kg,
            "monthly_avg_beneficiaries": self.monthly_avg_beneficiaries if n else None,
            "kg_per_beneficiary": self.kg_per_beneficiary if n else None,
            "manual": self.manual,
            "manual_share": self.manual_share,
            "voided": self.voided,
            "voided_share": self.voided_share,
            "months": self.months,
        }


def pct_change(now: int, before: int) -> float | None:
    """(now - before) / before in %; None when there is nothing to compare with."""
    return (now - before) * 100 / before if before else None


@dataclass(frozen=True)
class Changes:
    """Against the same period a year before, in %: kg, persons and visits (None: nothing to
    compare with, or the figure not counted)."""

    kg_pct: float | None = None
    persons_pct: float | None = None
    visits_pct: float | None = None

    @classmethod
    def between(cls, now: Figures, before: Figures | None) -> Changes:
        if before is None:
            return cls()
        counted = now.counted and before.counted
        return cls(
            pct_change(now.net_mg, before.net_mg),
            pct_change(now.beneficiaries, before.beneficiaries) if counted else None,
            pct_change(now.visits, before.visits) if counted else None,
        )

    def as_dict(self) -> dict[str, float | None]:
        return {
            "kg_pct": self.kg_pct,
            "persons_pct": self.persons_pct,
            "visits_pct": self.visits_pct,
        }


@dataclass(frozen=True)
class Row:
    key: tuple[str, ...]  # codes ("" where the record has none)
    label: tuple[str, ...]  # names for people
    figures: Figures
    # the same key over the same period a year before (a month: the same month a year before);
    # None when the report does not compare
    previous: Figures | None = None

    @property
    def changes(self) -> Changes:
        return Changes.between(self.figures, self.previous)


@dataclass(frozen=True)
class Subgroup:
    """A profile's figures for the funders' sentence ("of whom 332 women with children (2.2 t)
    referred by 4 hospitals, 1 CHU and 1 CASO"): the persons whose status at a weighing of the
    period had the tag, and the structures that referred them, by type."""

    tag: str
    figures: Figures
    previous: Figures | None
    # (type of structure, distinct structures of that type), most structures first, then kg;
    # a structure without a type is "other"
    structures: tuple[tuple[str, int], ...] = ()

    @property
    def changes(self) -> Changes:
        return Changes.between(self.figures, self.previous)


@dataclass(frozen=True)
class Report:
    period: Period
    by: tuple[str, ...]
    rows: list[Row]
    total: Figures
    previous: Figures | None  # the same period a year before
    change_kg_pct: float | None  # kg against that period, in %
    referrers: int  # distinct referring structures in the period
    monthly: list[tuple[str, Figures]]  # every month of the period, empty ones included
    names: Names = field(default_factory=lambda: Names())
    # months whose records a retention purge replaced by totals: their kg, items and pieces
    # are in the figures, their visits and persons are not (docs/reports.md)
    purged_months: tuple[str, ...] = ()
    # one per profile tag when the report is by profile, most persons first
    subgroups: tuple[Subgroup, ...] = ()

    @property
    def changes(self) -> Changes:
        """The total against the same period a year before: kg, persons, visits."""
        return Changes.between(self.total, self.previous)

    def purged_note(self) -> str | None:
        """One sentence for the reader when purged months are in the period."""
        if not self.purged_months:
            return None
        months = self.purged_months
        span = months[0] if len(months) == 1 else f"{months[0]} → {months[-1]}"
        note = _(
            "purged months ({months}): kg, items and pieces from the totals kept; visits and "
            "persons not available for purged months"
        ).format(months=span)
        lost = [g for g in self.by if g not in AGGREGATED]
        if lost:
            note += "; " + _("rows by {by} leave them out").format(by=", ".join(lost))
        return note

    def change_label(self) -> str | None:
        if self.change_kg_pct is None:
            return None
        return f"{self.change_kg_pct:+.0f} %"


# -- groupings and names ---------------------------------------------------------------------------
GROUPINGS: dict[str, str] = {
    "month": "calendar month (YYYY-MM)",
    "category": "category of goods",
    "station": "station",
    "group": "association or group of stations ([groups] in the ledger config)",
    "referrer": "referring structure",
    "referrer_type": "type of referring structure (hospital, CHRS, CCAS…)",
    "profile": "household profile tag (a person with several tags is in several rows)",
    "beneficiary": "beneficiary code",
}

# types of referring structures with readable names; the registry may name others
REFERRER_TYPES: dict[str, tuple[str, str]] = {
    # code: (singular, plural) — English source, translated at run time
    "hospital": ("hospital", "hospitals"),
    "chrs": ("CHRS", "CHRS"),
    "ccas": ("CCAS", "CCAS"),
    "social_services": ("social service", "social services"),
    "association": ("association", "associations"),
    "school": ("school", "schools"),
    "other": ("other structure", "other structures"),
}

# household profile tags (EU FSE+ breakdowns among them); the registry may name others
PROFILE_TAGS: dict[str, str] = {
    "women_with_children": "women with children",
    "single_parent": "single parents",
    "pregnant": "pregnant women",
    "worker": "workers",
    "retired": "retired people",
    "no_rsa": "people not receiving RSA",
    "woman": "women",
    "child": "children aged 15 or less",
    "senior": "people aged 65 or more",
    "disabled": "disabled people",
    "homeless": "homeless people",
}
# the grammatical gender of each built-in tag's French name ("femmes … orientées", "parents
# isolés … orientés"); a registry's [[profiles]] give theirs (gender = "f" or "m")
PROFILE_GENDERS: dict[str, str] = {
    "women_with_children": "f",
    "single_parent": "m",
    "pregnant": "f",
    "worker": "f",
    "retired": "m",
    "no_rsa": "f",
    "woman": "f",
    "child": "m",
    "senior": "f",
    "disabled": "f",
    "homeless": "f",
}


def _profile_noun(tag: str, n: int) -> str | None:
    """A built-in tag's name for ``n`` persons, singular or plural in the current language."""
    nouns = {
        "women_with_children": lambda: ngettext("woman with children", "women with children", n),
        "single_parent": lambda: ngettext("single parent", "single parents", n),
        "pregnant": lambda: ngettext("pregnant woman", "pregnant women", n),
        "worker": lambda: ngettext("worker", "workers", n),
        "retired": lambda: ngettext("retired person", "retired people", n),
        "no_rsa": lambda: ngettext("person not receiving RSA", "people not receiving RSA", n),
        "woman": lambda: ngettext("woman", "women", n),
        "child": lambda: ngettext("child aged 15 or less", "children aged 15 or less", n),
        "senior": lambda: ngettext("person aged 65 or more", "people aged 65 or more", n),
        "disabled": lambda: ngettext("disabled person", "disabled people", n),
        "homeless": lambda: ngettext("homeless person", "homeless people", n),
    }
    noun = nouns.get(tag)
    return noun() if noun else None


def plural_form(n: int) -> bool:
    """Whether ``n`` takes the plural in the current language (French: 2 and more; English:
    all but 1), from the catalogue's own plural rule."""
    rule = getattr(catalogue(language()), "plural", None)
    return bool(rule(n)) if callable(rule) else n != 1


def _builtin(text: str) -> str:
    # the builtin names above are translated where they are shown
    return {
        "hospital": _("hospital"),
        "hospitals": _("hospitals"),
        "social service": _("social service"),
        "social services": _("social services"),
        "association": _("association"),
        "associations": _("associations"),
        "school": _("school"),
        "schools": _("schools"),
        "other structure": _("other structure"),
        "other structures": _("other structures"),
        "women with children": _("women with children"),
        "single parents": _("single parents"),
        "pregnant women": _("pregnant women"),
        "workers": _("workers"),
        "retired people": _("retired people"),
        "people not receiving RSA": _("people not receiving RSA"),
        "women": _("women"),
        "children aged 15 or less": _("children aged 15 or less"),
        "people aged 65 or more": _("people aged 65 or more"),
        "disabled people": _("disabled people"),
        "homeless people": _("homeless people"),
    }.get(text, text)


@dataclass(frozen=True)
class Names:
    """Codes to names, from the registry the office imported and the ledger config."""

    categories: Mapping[str, str] = field(default_factory=dict)
    referrers: Mapping[str, str] = field(default_factory=dict)
    referrer_types: Mapping[str, str] = field(default_factory=dict)  # referrer code -> type code
    type_names: Mapping[str, tuple[str, str]] = field(default_factory=dict)  # singular, plural
    profile_names: Mapping[str, str] = field(default_factory=dict)
    groups: Mapping[str, str] = field(default_factory=dict)  # station -> group
    type_genders: Mapping[str, str] = field(default_factory=dict)  # type -> "f" | "m"
    # tag -> (singular, plural) from the registry's [[profile_names]], for sentences
    profile_nouns: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    profile_genders: Mapping[str, str] = field(default_factory=dict)  # tag -> "f" | "m"

    def label(self, grouping: str, key: str) -> str:
        if not key:
            return _("(none)")
        if grouping == "category":
            return self.categories.get(key, key)
        if grouping == "referrer":
            return self.referrers.get(key, key)
        if grouping == "referrer_type":
            return self.type_name(key, plural=False)
        if grouping == "profile":
            return self.profile_names.get(key) or _builtin(PROFILE_TAGS.get(key, key))
        return key

    def type_name(self, code: str, plural: bool) -> str:
        names = self.type_names.get(code)
        if names:
            return names[1 if plural else 0]
        known = REFERRER_TYPES.get(code.lower())
        return _builtin(known[1 if plural else 0]) if known else code

    def structures(self, code: str, n: int) -> str:
        """ "4 hospitals", "1 CHU": ``n`` structures of a type, in the number it takes."""
        return f"{format_count(n)} {self.type_name(code or 'other', plural_form(n))}"

    def profile_noun(self, tag: str, n: int) -> tuple[str, bool]:
        """A tag's name for ``n`` persons ("1 single parent", "30 single parents") and whether
        it is feminine (the French participle agrees with it)."""
        feminine = (self.profile_genders.get(tag) or PROFILE_GENDERS.get(tag, "f")) == "f"
        if tag in self.profile_nouns:
            return self.profile_nouns[tag][1 if plural_form(n) else 0], feminine
        # a built-in tag's own grammar before a counter sheet's name ("Parent isolé")
        return _profile_noun(tag, n) or self.label("profile", tag), feminine


def station_groups(
    groups: Mapping[str, str] | Mapping[str, Sequence[str]] | None,
) -> dict[str, str]:
    """station -> group, from either that or the config's ``[groups]`` (group -> stations)."""
    out: dict[str, str] = {}
    for name, value in (groups or {}).items():
        if isinstance(value, str):
            out[name] = value
        else:
            for station in value:
                out.setdefault(station, name)
    return out


def load_names(store: RegistrySource, groups: Mapping[str, Any] | None = None) -> Names:
    """Names from every registry scope (``all`` first, station scopes fill in)."""
    categories: dict[str, str] = {}
    referrers: dict[str, str] = {}
    types: dict[str, str] = {}
    type_names: dict[str, tuple[str, str]] = {}
    type_genders: dict[str, str] = {}
    profiles: dict[str, str] = {}
    nouns: dict[str, tuple[str, str]] = {}
    genders: dict[str, str] = {}
    scopes = store.registries()
    for scope in sorted(scopes, key=lambda s: s != "all"):
        reg = scopes[scope]
        for item in reg.categories:
            categories.setdefault(str(item["code"]), str(item.get("name") or item["code"]))
        for item in reg.referrers:
            code = str(item["code"])
            referrers.setdefault(code, str(item.get("name") or code))
            if item.get("type"):
                types.setdefault(code, str(item["type"]).strip().lower())
        for item in reg.extra.get("referrer_types", []) or []:
            if isinstance(item, dict) and item.get("code"):
                name = str(item.get("name") or item["code"])
                code = str(item["code"]).lower()
                type_names.setdefault(code, (name, str(item.get("plural") or name)))
                if _gender(item):
                    type_genders.setdefault(code, _gender(item))
        for item in reg.extra.get("profile_names", []) or []:
            # a tag's names for the reports: singular, plural (the rows' label), gender
            if isinstance(item, dict) and item.get("code"):
                tag = str(item["code"])
                singular = str(item.get("name") or tag)
                plural = str(item.get("plural") or singular)
                nouns.setdefault(tag, (singular, plural))
                profiles.setdefault(tag, plural)
                if _gender(item):
                    genders.setdefault(tag, _gender(item))
        for item in reg.extra.get("profiles", []) or []:
            # rows by profile are keyed by the tag the code adds (the code is the sheet's)
            if isinstance(item, dict) and (item.get("tag") or item.get("code")):
                tag = str(item.get("tag") or item["code"])
                profiles.setdefault(tag, str(item.get("name") or tag))
    return Names(
        categories,
        referrers,
        types,
        type_names,
        profiles,
        station_groups(groups),
        type_genders,
        nouns,
        genders,
    )


def _gender(item: Mapping[str, Any]) -> str:
    """A registry item's grammatical gender: "f", "m" or "" (feminine, féminin, masculin…)."""
    text = str(item.get("gender") or "").strip().lower()
    return text[:1] if text[:1] in {"f", "m"} else ""


def format_count(n: float) -> str:
    """A count for a sentence, in the current language ("1 482", "1,482")."""
    return format_number(n, 0)
