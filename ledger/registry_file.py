"""The office's registry file (TOML or CSV) and its merge, by code, into the registry in force.

An import adds and renames: a code the file gives replaces that code's fields, a code it does
not give stays as it was. A code goes only when the file retires it (``retired = true``); the
retired codes travel with the registry (``retired``) so a station drops them too. Example file:
ledger/registry.example.toml.
"""

from __future__ import annotations

import csv
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.i18n import _
from sync.wire import Registry

__all__ = ["LISTS", "RegistryFile", "merge_registry", "read_registry_file"]

# the lists merged by code, and what each item needs besides its code (unless retired)
LISTS: dict[str, tuple[str, ...]] = {
    "categories": ("name",),
    "referrers": ("name",),
    "referrer_types": ("name",),
    "profiles": ("tag", "name"),
    # the ledger's names of profile tags for its reports (code = the tag): singular name,
    # plural and gender; apart from [[profiles]], whose items the stations validate
    "profile_names": ("name",),
}
# CSV ``kind`` column -> list
KINDS = {
    "category": "categories",
    "referrer": "referrers",
    "referrer_type": "referrer_types",
    "profile": "profiles",
    "profile_name": "profile_names",
}
RETIRED = "retired"  # an item's flag in the file; the registry's list of retired codes
YES = {"1", "true", "yes", "y", "x", "oui", "o", "vrai"}
# grammatical gender of a name ("femmes … orientées", "parents isolés … orientés")
GENDERS = {
    "f": "f",
    "feminine": "f",
    "féminin": "f",
    "feminin": "f",
    "m": "m",
    "masculine": "m",
    "masculin": "m",
}


@dataclass(frozen=True)
class RegistryFile:
    """What a file says: items per list in file order (a retired one is ``{code, retired}``),
    the beneficiary patterns when it gives them, and any other table, passed on as it is."""

    items: Mapping[str, list[dict[str, Any]]]
    patterns: list[dict[str, Any]] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


def _item(raw: Any, where: str, required: tuple[str, ...]) -> dict[str, Any]:
    """One item of a list, checked: a table with a code; its required fields unless retired."""
    if not isinstance(raw, dict):
        raise ValueError(_("{where}: expected a table with code and name").format(where=where))
    code = str(raw.get("code") or "").strip()
    if not code:
        raise ValueError(_("{where}: code is required").format(where=where))
    retired = raw.get(RETIRED, False)
    if not isinstance(retired, bool):
        raise ValueError(_("{where}: retired is true or false").format(where=where))
    if retired:
        return {"code": code, RETIRED: True}
    item = {k: v for k, v in raw.items() if k != RETIRED}
    item["code"] = code
    for name in required:
        if not str(item.get(name) or "").strip():
            raise ValueError(
                _("{where} ({code}): {field} is required").format(
                    where=where, code=code, field=name
                )
            )
    if isinstance(item.get("type"), str):  # type of a referring structure: a lower-case code
        item["type"] = item["type"].strip().lower()
    if "gender" in item:  # of a type's or a profile's name, for the sentences' agreement
        gender = GENDERS.get(str(item["gender"]).strip().lower())
        if gender is None:
            raise ValueError(
                _("{where} ({code}): gender is f or m, not {value!r}").format(
                    where=where, code=code, value=item["gender"]
                )
            )
        item["gender"] = gender
    return item


def _from_toml(text: str) -> RegistryFile:
    raw = tomllib.loads(text)
    items: dict[str, list[dict[str, Any]]] = {}
    for key, required in LISTS.items():
        value = raw.get(key, [])
        if not isinstance(value, list):
            raise ValueError(_("{key}: expected [[{key}]] tables").format(key=key))
        items[key] = [_item(v, f"[[{key}]] #{n}", required) for n, v in enumerate(value, start=1)]
    patterns = raw.get("beneficiary_patterns")
    if patterns is not None and not isinstance(patterns, list):
        raise ValueError(_("beneficiary_patterns: expected [[beneficiary_patterns]] tables"))
    known = {*LISTS, "beneficiary_patterns", "version", RETIRED}
    extra = {k: v for k, v in raw.items() if k not in known}
    return RegistryFile(items, patterns, extra)


def _from_csv(path: Path) -> RegistryFile:
    """Columns ``kind,code,name`` and, as needed, ``type`` (of a referring structure), ``tag``
    (of a profile), ``plural`` and ``gender`` (f or m: of a structure type's or a profile's
    name, for the reports' sentences) and ``retired`` (yes/oui/1)."""
    items: dict[str, list[dict[str, Any]]] = {key: [] for key in LISTS}
    with path.open(encoding="utf-8-sig", newline="") as f:
        for n, row in enumerate(csv.DictReader(f), start=2):
            kind = (row.get("kind") or "").strip()
            if kind not in KINDS:
                raise ValueError(
                    _(
                        "line {n}: kind must be category, referrer, referrer_type, profile or "
                        "profile_name, not {kind!r}"
                    ).format(n=n, kind=kind)
                )
            key = KINDS[kind]
            item: dict[str, Any] = {"code": (row.get("code") or "").strip()}
            for column in ("name", "type", "tag", "plural", "gender"):
                if (row.get(column) or "").strip():
                    item[column] = row[column] if column == "name" else row[column].strip()
            if (row.get(RETIRED) or "").strip().lower() in YES:
                item[RETIRED] = True
            elif not item["code"] or not str(item.get("name") or "").strip():
                raise ValueError(_("line {n}: code and name are required").format(n=n))
            items[key].append(_item(item, _("line {n}").format(n=n), LISTS[key]))
    return RegistryFile(items)


def read_registry_file(path: Path) -> RegistryFile:
    """A registry file: TOML (``[[categories]]``, ``[[referrers]]``, ``[[referrer_types]]``,
    ``[[profiles]]``, ``[[profile_names]]``, ``[[beneficiary_patterns]]``) or CSV. Raises
    ValueError (or ``tomllib.TOMLDecodeError``) with a line for a person."""
    if path.suffix.lower() == ".toml":
        return _from_toml(path.read_text(encoding="utf-8"))
    return _from_csv(path)


def _current(registry: Registry | None, key: str) -> list[dict[str, Any]]:
    if registry is None:
        return []
    if key == "categories":
        return [dict(i) for i in registry.categories]
    if key == "referrers":
        return [dict(i) for i in registry.referrers]
    value = registry.extra.get(key) or []
    return [dict(i) for i in value if isinstance(i, dict) and i.get("code")]


def merge_registry(current: Registry | None, imported: RegistryFile, version: int) -> Registry:
    """``current`` (the scope's registry in force, None for a first import) with ``imported``
    merged by code: new codes added at the end, known ones updated field by field, retired ones
    removed and listed in ``retired``; the beneficiary patterns replaced when the file gives
    them, kept otherwise."""
    extra: dict[str, Any] = dict(current.extra) if current is not None else {}
    extra.update(imported.extra)
    previous = extra.get(RETIRED)
    retired_before: Mapping[str, Any] = previous if isinstance(previous, dict) else {}
    lists: dict[str, list[dict[str, Any]]] = {}
    retired: dict[str, list[str]] = {}
    for key in LISTS:
        by_code = {str(item["code"]): item for item in _current(current, key)}
        gone = {str(c) for c in retired_before.get(key, []) or []}
        for item in imported.items.get(key, []):
            code = item["code"]
            if item.get(RETIRED):
                by_code.pop(code, None)
                gone.add(code)
            else:
                by_code[code] = {**by_code.get(code, {}), **item}  # dicts keep the first order
                gone.discard(code)
        lists[key] = list(by_code.values())
        if gone:
            retired[key] = sorted(gone)
    for key in ("referrer_types", "profiles", "profile_names"):
        if lists[key]:
            extra[key] = lists[key]
        else:
            extra.pop(key, None)
    if retired:
        extra[RETIRED] = retired
    else:
        extra.pop(RETIRED, None)
    if imported.patterns is not None:
        patterns = tuple(dict(p) for p in imported.patterns)
    else:
        patterns = tuple(current.beneficiary_patterns) if current is not None else ()
    return Registry(version, tuple(lists["categories"]), tuple(lists["referrers"]), patterns, extra)
