"""Eco-organism tonnages: the period's live weighings ("sortie réemploi : don") in tonnes per
declaration category of one eco-organism, from a mapping kept as data in the office registry.

The mapping is the registry's ``eco`` table (``ledger registry import``; example:
ledger/eco.example.toml)::

    [[eco.organisms]]        code, name
    [[eco.categories]]       organism, code, name, stream (the declaration's own wording)
    [[eco.mappings]]         organism, category (a Pesée category code), declares (a code above)

Another eco-organism is more rows, never code. Sources of the category names: Ecomaison's
quarterly declaration for social-economy bodies (furniture DEA: Assises/Sièges, Couchages,
Rangements, Tables et plans de pose/de travail, Décoration textile; toys: Jeux de plein air,
Jeux de société et puzzles, Autres jeux d'intérieur; DIY and garden: Matériel de bricolage dont
l'outillage à main, Articles d'aménagement et d'entretien du jardin), declared in tonnes, with
supporting documents for an audit; textiles, linen and shoes go to Refashion (docs/reports.md).

Every figure is exact: milligrams summed by the database, tonnes rounded half up once, on each
declared total (never per record). A category of the period mapped to no declaration category of
the organism is listed with its mass (mapped to another organism, or to none), so the declared,
the others' and the unmapped masses add up to every live weighing of the period.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from common.i18n import _
from common.units import round_half_up

from ..period import Period
from ..report_model import load_names
from ..store.eco import records_of, weights_by_category

__all__ = [
    "EcoLine",
    "EcoMapping",
    "EcoReport",
    "Unmapped",
    "build_eco",
    "load_mapping",
    "parse_mapping",
    "tonnes_text",
]


def tonnes_text(mg: int) -> str:
    """Tonnes for a declaration form and machines: ``'0.330'`` (3 decimals, half up, once)."""
    rounded = round_half_up(Decimal(mg) / 10**9, 3)
    return f"{abs(rounded) if rounded == 0 else rounded:.3f}"


@dataclass(frozen=True)
class EcoMapping:
    """The registry's ``eco`` table, checked: organisms (code -> name), their declaration
    categories (organism -> [{code, name, stream}] in file order) and the mappings (organism
    -> Pesée category -> declaration code)."""

    organisms: Mapping[str, str]
    categories: Mapping[str, list[dict[str, str]]]
    mappings: Mapping[str, dict[str, str]]

    def declared_by(self, organism: str, code: str) -> list[str]:
        """The counter categories ``organism`` declares as ``code``, in mapping order."""
        return [c for c, d in self.mappings.get(organism, {}).items() if d == code]

    def unmapped(self, categories: Iterable[str]) -> list[str]:
        """Of ``categories`` (the registry's), those no organism declares."""
        mapped = {c for m in self.mappings.values() for c in m}
        return [c for c in categories if c not in mapped]

    def as_dict(self) -> dict[str, Any]:
        return {
            "organisms": [
                {
                    "code": code,
                    "name": name,
                    "categories": [
                        {**c, "counter_categories": self.declared_by(code, c["code"])}
                        for c in self.categories[code]
                    ],
                }
                for code, name in self.organisms.items()
            ]
        }

    def organism_of(self, category: str, but: str) -> str | None:
        """The other organism ``category`` is declared to, if any."""
        for organism, mapped in self.mappings.items():
            if organism != but and category in mapped:
                return organism
        return None


def _items(eco: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    value = eco.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ValueError(_("eco.{key}: expected [[eco.{key}]] tables").format(key=key))
    return value


def _text(item: Mapping[str, Any], name: str, where: str) -> str:
    value = str(item.get(name) or "").strip()
    if not value:
        raise ValueError(_("{where}: {field} is required").format(where=where, field=name))
    return value


def parse_mapping(eco: Any) -> EcoMapping:
    """The ``eco`` table as stored in the registry; raises ValueError naming the bad item."""
    if eco is None:
        eco = {}
    if not isinstance(eco, dict):
        raise ValueError(_("eco: expected a table"))
    organisms: dict[str, str] = {}
    for n, item in enumerate(_items(eco, "organisms"), start=1):
        where = f"[[eco.organisms]] #{n}"
        organisms[_text(item, "code", where)] = str(item.get("name") or item["code"]).strip()
    categories: dict[str, list[dict[str, str]]] = {code: [] for code in organisms}
    for n, item in enumerate(_items(eco, "categories"), start=1):
        where = f"[[eco.categories]] #{n}"
        organism = _text(item, "organism", where)
        if organism not in organisms:
            raise ValueError(
                _("{where}: unknown organism {code!r}").format(where=where, code=organism)
            )
        code = _text(item, "code", where)
        if any(c["code"] == code for c in categories[organism]):
            raise ValueError(_("{where}: {code!r} given twice").format(where=where, code=code))
        categories[organism].append(
            {
                "code": code,
                "name": _text(item, "name", where),
                "stream": str(item.get("stream") or "").strip(),
            }
        )
    mappings: dict[str, dict[str, str]] = {code: {} for code in organisms}
    for n, item in enumerate(_items(eco, "mappings"), start=1):
        where = f"[[eco.mappings]] #{n}"
        organism = _text(item, "organism", where)
        if organism not in organisms:
            raise ValueError(
                _("{where}: unknown organism {code!r}").format(where=where, code=organism)
            )
        category = _text(item, "category", where)
        declares = _text(item, "declares", where)
        if not any(c["code"] == declares for c in categories[organism]):
            raise ValueError(
                _("{where}: {organism} has no declaration category {code!r}").format(
                    where=where, organism=organism, code=declares
                )
            )
        before = mappings[organism].get(category)
        if before is not None and before != declares:
            raise ValueError(
                _("{where}: category {category!r} is already declared as {code!r}").format(
                    where=where, category=category, code=before
                )
            )
        mappings[organism][category] = declares
    return EcoMapping(organisms, categories, mappings)


def load_mapping(store: Any) -> EcoMapping:
    """The mapping of the registry in force for every station (scope ``all``)."""
    registry = store.registries().get("all")
    extra = registry.extra if registry is not None else {}
    return parse_mapping(extra.get("eco"))


@dataclass(frozen=True)
class EcoLine:
    """One declaration category: its mass and the Pesée categories it gathers."""

    code: str
    name: str
    stream: str
    net_mg: int = 0
    items: int = 0
    categories: tuple[str, ...] = ()

    @property
    def tonnes(self) -> str:
        return tonnes_text(self.net_mg)


@dataclass(frozen=True)
class Unmapped:
    """A category of the period not in this declaration: ``organism`` is the other one it is
    declared to, or None (declared to nobody)."""

    category: str
    name: str
    net_mg: int
    items: int
    organism: str | None
    organism_name: str = ""


@dataclass(frozen=True)
class EcoReport:
    period: Period
    organism: str
    organism_name: str
    lines: list[EcoLine]
    unmapped: list[Unmapped]
    total_mg: int  # every live weighing of the period (and stations)
    stations: tuple[str, ...] | None = None
    records: dict[str, list[dict[str, Any]]] | None = field(default=None)  # code -> records

    @property
    def declared_mg(self) -> int:
        return sum(line.net_mg for line in self.lines)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "period": {
                "label": self.period.label,
                "from": self.period.start.isoformat(),
                "to": self.period.last_day.isoformat(),
            },
            "organism": self.organism,
            "organism_name": self.organism_name,
            "flow": "sortie réemploi (don)",
            "stations": list(self.stations) if self.stations is not None else None,
            "lines": [
                {
                    "code": line.code,
                    "name": line.name,
                    "stream": line.stream,
                    "tonnes": line.tonnes,
                    "net_mg": line.net_mg,
                    "items": line.items,
                    "categories": list(line.categories),
                }
                for line in self.lines
            ],
            "declared_tonnes": tonnes_text(self.declared_mg),
            "declared_mg": self.declared_mg,
            "not_declared": [
                {
                    "category": u.category,
                    "name": u.name,
                    "net_mg": u.net_mg,
                    "items": u.items,
                    "organism": u.organism,
                }
                for u in self.unmapped
            ],
            "total_mg": self.total_mg,
        }
        if self.records is not None:
            out["records"] = {
                code: [
                    {
                        "occurred_at": r["occurred_at"],
                        "station": r["station"],
                        "epoch": r["epoch"],
                        "seq": int(r["seq"]),
                        "uuid": r["uuid"],
                        "category": r["category"],
                        "net_mg": int(r["net_mg"]),
                    }
                    for r in recs
                ]
                for code, recs in self.records.items()
            }
        return out


def build_eco(
    store: Any,
    period: Period,
    organism: str,
    *,
    mapping: EcoMapping | None = None,
    category_names: Mapping[str, str] | None = None,
    stations: Sequence[str] | None = None,
    with_records: bool = False,
) -> EcoReport:
    """``organism``'s declaration for ``period``: every declaration category (zero ones too, so
    each box of the form is filled), what is not declared, and with ``with_records`` the
    records behind each line. Raises ValueError for an organism the mapping does not know."""
    mapping = mapping if mapping is not None else load_mapping(store)
    if organism not in mapping.organisms:
        known = ", ".join(mapping.organisms) or _("none: add an [eco] table to the registry")
        raise ValueError(
            _("unknown eco-organism {code!r} (known: {known})").format(code=organism, known=known)
        )
    if category_names is None:
        category_names = load_names(store).categories
    names = dict(category_names)
    mapped = mapping.mappings[organism]
    bounds = period.bounds()
    by_code: dict[str, dict[str, Any]] = {
        c["code"]: {"net_mg": 0, "items": 0, "categories": []} for c in mapping.categories[organism]
    }
    unmapped: list[Unmapped] = []
    total = 0
    for row in weights_by_category(store, bounds, stations):
        total += row["net_mg"]
        declares = mapped.get(row["category"])
        if declares is None:
            other = mapping.organism_of(row["category"], organism)
            unmapped.append(
                Unmapped(
                    row["category"],
                    names.get(row["category"], ""),
                    row["net_mg"],
                    row["items"],
                    other,
                    mapping.organisms.get(other, "") if other else "",
                )
            )
            continue
        acc = by_code[declares]
        acc["net_mg"] += row["net_mg"]
        acc["items"] += row["items"]
        acc["categories"].append(row["category"])
    lines = [
        EcoLine(
            c["code"],
            c["name"],
            c["stream"],
            by_code[c["code"]]["net_mg"],
            by_code[c["code"]]["items"],
            tuple(by_code[c["code"]]["categories"]),
        )
        for c in mapping.categories[organism]
    ]
    records = None
    if with_records:
        records = {
            line.code: records_of(store, bounds, line.categories, stations) for line in lines
        }
    unmapped.sort(key=lambda u: (u.organism is not None, -u.net_mg, u.category))
    return EcoReport(
        period,
        organism,
        mapping.organisms[organism],
        lines,
        unmapped,
        total,
        tuple(stations) if stations is not None else None,
        records,
    )
