"""Manual entry: a technician records weights by hand (scale broken), checked like a weighing."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from drivers.base import FrameError, format_mg, parse_mass
from sync.i18n import _
from sync.wire import MAX_MG

from .codes import CodeBook, Kind
from .config import Config, Technician
from .pinhash import verify_pin

__all__ = [
    "ManualError",
    "ManualRequest",
    "authenticate",
    "check",
    "parse_weight",
    "record_fields",
]

_WEIGHT = re.compile(r"^\s*(\d+(?:[.,]\d+)?|[.,]\d+)\s*(mg|g|kg|t|lb|oz)\s*$", re.IGNORECASE)


class ManualError(Exception):
    """An entry refused before anything is written; ``kind`` is ``auth`` or ``invalid``."""

    def __init__(self, message: str, kind: str = "invalid") -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True, slots=True)
class ManualRequest:
    """What the technician typed; one request is one visit with one record per weight."""

    weights_mg: tuple[int, ...]
    category: str
    beneficiary: str
    technician: str  # the technician's name, checked against the config
    referrer: str | None = None
    pieces: int | None = None
    note: str | None = None
    auth: str = "pin"  # how the technician proved who they are: "pin" or "badge"

    def to_json(self) -> dict[str, Any]:
        return {
            "weights_mg": list(self.weights_mg),
            "category": self.category,
            "beneficiary": self.beneficiary,
            "technician": self.technician,
            "referrer": self.referrer,
            "pieces": self.pieces,
            "note": self.note,
            "auth": self.auth,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ManualRequest:
        try:
            weights = tuple(int(w) for w in data["weights_mg"])
            pieces = data.get("pieces")
            return cls(
                weights_mg=weights,
                category=str(data["category"]),
                beneficiary=str(data["beneficiary"]),
                technician=str(data["technician"]),
                referrer=None if data.get("referrer") is None else str(data["referrer"]),
                pieces=None if pieces is None else int(pieces),
                note=None if data.get("note") is None else str(data["note"]),
                auth=str(data.get("auth") or "pin"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ManualError(_("malformed manual entry: {error}").format(error=exc)) from exc


def parse_weight(text: str) -> int:
    """``"2,5kg"``, ``"2.5 kg"``, ``"750 g"`` → milligrams, exactly (the unit is required)."""
    match = _WEIGHT.match(text)
    if not match:
        raise ManualError(
            _("{text!r} is not a weight: give a number and its unit, e.g. 2,5kg or 750g").format(
                text=text
            )
        )
    try:
        return parse_mass(match.group(1), match.group(2).lower())
    except FrameError as exc:  # pragma: no cover - the regex already guards this
        raise ManualError(str(exc)) from exc


def authenticate(config: Config, pin: str | None = None, badge: str | None = None) -> Technician:
    """The technician whose PIN or badge this is; :class:`ManualError` (``auth``) otherwise."""
    if not config.technicians:
        raise ManualError(
            _("no [[technicians]] in the config: manual entry is not allowed on this station"),
            "auth",
        )
    if badge:
        for tech in config.technicians:
            if tech.badge and tech.badge == badge.strip():
                return tech
        raise ManualError(_("unknown technician badge"), "auth")
    if not pin:
        raise ManualError(_("a technician PIN or badge is required"), "auth")
    for tech in config.technicians:
        if tech.pin and verify_pin(pin, tech.pin):
            return tech
    raise ManualError(_("wrong PIN"), "auth")


def _kg(mg: int) -> str:
    return format_mg(mg, "kg", 3)


def check(config: Config, codes: CodeBook, request: ManualRequest) -> dict[str, Any]:
    """Refuse what a scale weighing would refuse; returns the resolved names
    (``category_name``, ``referrer``) or raises :class:`ManualError`."""
    if not any(t.name == request.technician for t in config.technicians):
        raise ManualError(_("unknown technician {name!r}").format(name=request.technician), "auth")
    if not request.weights_mg:
        raise ManualError(_("give at least one weight"))
    cfg = config.scale
    for mg in request.weights_mg:
        if mg <= 0 or mg > MAX_MG:
            raise ManualError(_("weight {w}: must be above zero").format(w=_kg(mg)))
        if mg < cfg.min_weight:
            raise ManualError(
                _("weight {w} is below the minimum weight {min}").format(
                    w=_kg(mg), min=_kg(cfg.min_weight)
                )
            )
        if cfg.capacity is not None and mg > cfg.capacity:
            raise ManualError(
                _("weight {w} is above the scale's capacity {max}").format(
                    w=_kg(mg), max=_kg(cfg.capacity)
                )
            )
    if request.pieces is not None and not 1 <= request.pieces <= 100_000:
        raise ManualError(_("pieces must be between 1 and 100000"))
    category = _category(config, codes, request.category)
    who = codes.classify(request.beneficiary)
    if who.kind is Kind.MISREAD:
        raise ManualError(
            _("beneficiary code {code}: wrong check digit or length (typing mistake?)").format(
                code=request.beneficiary
            )
        )
    if who.kind is not Kind.BENEFICIARY:
        raise ManualError(
            _("{code} is not a beneficiary code of this station").format(code=request.beneficiary)
        )
    referrer = who.referrer
    if request.referrer:
        referrer = _referrer(config, codes, request.referrer)
    return {"category": category, "referrer": referrer}


def _category(config: Config, codes: CodeBook, text: str) -> str:
    """A category by its code (``CAT-VET``) or its name (``Vêtements``, any case)."""
    found = codes.classify(text)
    if found.kind is Kind.CATEGORY:
        return found.code
    for cat in config.categories:
        if cat.name.casefold() == text.strip().casefold():
            return cat.code
    known = ", ".join(f"{c.code} ({c.name})" for c in config.categories)
    raise ManualError(_("unknown category {code!r}; known: {known}").format(code=text, known=known))


def _referrer(config: Config, codes: CodeBook, text: str) -> str:
    """A referring structure by its code (``001``) or its barcode (``S-001``)."""
    text = text.strip()
    if any(r.code == text for r in config.referrers):
        return text
    found = codes.classify(text)
    if found.kind is Kind.REFERRER and found.referrer:
        return found.referrer
    raise ManualError(_("unknown referring structure {code!r}").format(code=text))


def record_fields(request: ManualRequest, resolved: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``weighing`` records of one request (without the clock fields the writer adds)."""
    visit = uuid.uuid4().hex
    data: dict[str, Any] = {"technician": request.technician, "auth": request.auth}
    if request.note:
        data["note"] = request.note
    return [
        {
            "visit": visit,
            "beneficiary": request.beneficiary.strip(),
            "referrer": resolved["referrer"] or None,
            "category": resolved["category"],
            "operator": request.technician,
            "source": "manual",
            "net_mg": mg,
            "unit": "kg",
            "pieces": request.pieces,
            "data": data,
        }
        for mg in request.weights_mg
    ]
