"""Manual entry: a technician records weights by hand (scale broken), checked like a weighing."""

from __future__ import annotations

import hmac
import logging
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from common.i18n import _
from common.units import MassError, format_mass, parse_mass_text
from sync.wire import MAX_MG

from .codes import CodeBook, Kind
from .config import Config, Technician
from .outcomes import Outcome
from .pinhash import verify_pin
from .store import Store, StoreError

__all__ = [
    "MAX_WEIGHTS",
    "Entered",
    "ManualError",
    "ManualRequest",
    "Proof",
    "Written",
    "authenticate",
    "check",
    "check_count",
    "enter",
    "new_request_id",
    "parse_weight",
    "record_fields",
    "write",
]

log = logging.getLogger("station")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9-]{8,64}$")
# one request is one transaction in the loop: a bound keeps the counter and the watchdog moving
MAX_WEIGHTS = 50


def new_request_id() -> str:
    return uuid.uuid4().hex


class ManualError(Exception):
    """An entry refused before anything is written; ``kind`` is ``auth``, ``invalid``, or
    (over the daemon's socket) ``locked`` after wrong PINs, ``busy`` when checks queue up."""

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
    # how the technician proved who they are, "pin" or "badge": set by whoever checked the
    # proof (the CLI, or the daemon for a request over its socket), never taken from a request
    auth: str = "pin"
    # the same id again is recorded at most once (a retry after a timeout); kept in data.request
    request_id: str = field(default_factory=new_request_id)

    def to_json(self) -> dict[str, Any]:
        return {
            "weights_mg": list(self.weights_mg),
            "category": self.category,
            "beneficiary": self.beneficiary,
            "technician": self.technician,
            "referrer": self.referrer,
            "pieces": self.pieces,
            "note": self.note,
            "request_id": self.request_id,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ManualRequest:
        """A request from the socket; its ``auth`` is left to the caller (see above)."""
        try:
            raw = data["weights_mg"]
            if not isinstance(raw, list):
                raise TypeError("weights_mg is not a list")
            check_count(len(raw))
            weights = tuple(int(w) for w in raw)
            pieces = data.get("pieces")
            request_id = data.get("request_id")
            return cls(
                weights_mg=weights,
                category=str(data["category"]),
                beneficiary=str(data["beneficiary"]),
                technician=str(data["technician"]),
                referrer=None if data.get("referrer") is None else str(data["referrer"]),
                pieces=None if pieces is None else int(pieces),
                note=None if data.get("note") is None else str(data["note"]),
                request_id=new_request_id() if request_id is None else valid_id(str(request_id)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ManualError(_("malformed manual entry: {error}").format(error=exc)) from exc


@dataclass(frozen=True, slots=True)
class Proof:
    """Who a PIN or badge belongs to, and which of the two was checked."""

    technician: Technician
    method: str  # "pin" or "badge"


def valid_id(text: str) -> str:
    """A request id as given (``--request-id``): 8 to 64 letters, digits or dashes."""
    if not _REQUEST_ID.match(text):
        raise ManualError(
            _("request id {id!r}: give 8 to 64 letters, digits or dashes").format(id=text)
        )
    return text


def check_count(n: int) -> None:
    """At most :data:`MAX_WEIGHTS` weights in one entry."""
    if n > MAX_WEIGHTS:
        raise ManualError(
            _("{n} weights: at most {max} in one entry; split it into several").format(
                n=n, max=MAX_WEIGHTS
            )
        )


def parse_weight(text: str) -> int:
    """``"2,5kg"``, ``"2.5 kg"``, ``"750 g"`` → milligrams, exactly (the unit is required)."""
    problem = _("{text!r} is not a weight: give a number and its unit, e.g. 2,5kg or 750g")
    if text.strip()[:1] in ("", "+", "-"):  # a manual weight is a positive mass, signless
        raise ManualError(problem.format(text=text))
    try:
        return parse_mass_text(text)
    except MassError as exc:
        raise ManualError(problem.format(text=text)) from exc


def authenticate(config: Config, pin: str | None = None, badge: str | None = None) -> Proof:
    """The technician whose PIN or badge this is; :class:`ManualError` (``auth``) otherwise.

    A badge alone is enough (the issue asks for "a PIN or a technician badge"); the records say
    which it was, and a station that wants PINs only lists no badges in ``[[technicians]]``."""
    if not config.technicians:
        raise ManualError(
            _("no [[technicians]] in the config: manual entry is not allowed on this station"),
            "auth",
        )
    if badge:
        given = badge.strip().encode("utf-8")
        found = None
        for tech in config.technicians:  # every badge compared, in constant time each
            if tech.badge and hmac.compare_digest(tech.badge.encode("utf-8"), given):
                found = found or tech
        if found is None:
            raise ManualError(_("unknown technician badge"), "auth")
        return Proof(found, "badge")
    if not pin:
        raise ManualError(_("a technician PIN or badge is required"), "auth")
    for tech in config.technicians:
        if tech.pin and verify_pin(pin, tech.pin):
            return Proof(tech, "pin")
    raise ManualError(_("wrong PIN"), "auth")


def _kg(mg: int) -> str:
    return format_mass(mg)


def check(config: Config, codes: CodeBook, request: ManualRequest) -> dict[str, Any]:
    """Refuse what a scale weighing would refuse; returns the resolved names
    (``category_name``, ``referrer``) or raises :class:`ManualError`."""
    if not any(t.name == request.technician for t in config.technicians):
        raise ManualError(_("unknown technician {name!r}").format(name=request.technician), "auth")
    if not request.weights_mg:
        raise ManualError(_("give at least one weight"))
    check_count(len(request.weights_mg))
    cfg = config.scale
    for mg in request.weights_mg:
        if mg <= 0:
            raise ManualError(_("weight {w}: must be above zero").format(w=_kg(mg)))
        if mg < cfg.min_weight:
            raise ManualError(
                _("weight {w} is below the minimum weight {min}").format(
                    w=_kg(mg), min=_kg(cfg.min_weight)
                )
            )
        if cfg.minimum_load is not None and mg < cfg.minimum_load:
            # as at the counter (OIML R 76 Min): the scale's relative error is too large below
            raise ManualError(
                _("weight {w} is below the scale's minimum capacity Min {min}").format(
                    w=_kg(mg), min=_kg(cfg.minimum_load)
                )
            )
        if cfg.capacity is not None and mg > cfg.capacity:
            raise ManualError(
                _("weight {w} is above the scale's capacity {max}").format(
                    w=_kg(mg), max=_kg(cfg.capacity)
                )
            )
        if mg > MAX_MG:
            raise ManualError(
                _("weight {w} is above the most a station records ({max})").format(
                    w=_kg(mg), max=_kg(MAX_MG)
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
    data: dict[str, Any] = {
        "technician": request.technician,
        "auth": request.auth,
        "request": request.request_id,
    }
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


@dataclass(frozen=True, slots=True)
class Written:
    """What :func:`write` did: the records' seqs, or those of an earlier try (``repeat``)."""

    seqs: list[int]
    recorded_at: str | None = None
    repeat: bool = False


def recorded(store: Store, request_id: str) -> list[int]:
    """The seqs of the manual records an earlier try of ``request_id`` wrote (oldest first)."""
    return store.request_seqs(request_id)


def write(
    store: Store,
    request: ManualRequest,
    resolved: dict[str, Any],
    *,
    boot_id: str,
    clock_synced: bool,
) -> Written:
    """Append one request's records in ONE transaction: all of them or none.

    A request id already in the journal writes nothing (``repeat``). :meth:`Store.transaction`
    takes the write lock first, so the repeat check and the appends see the same journal as
    any other process.
    Raises :class:`StoreError` with nothing written."""
    rows: list[dict[str, Any]] = []
    with store.transaction():
        earlier = store.request_seqs(request.request_id)
        if earlier:
            return Written(earlier, repeat=True)
        rows = [
            store.append(
                "weighing",
                mono_ns=time.monotonic_ns(),
                boot_id=boot_id,
                clock_synced=clock_synced,
                **fields,
            )
            for fields in record_fields(request, resolved)
        ]
    return Written([r["seq"] for r in rows], rows[-1]["recorded_at"])


@dataclass(frozen=True, slots=True)
class Entered:
    """What the loop does with a technician's entry: the reply for the technician, and the
    panel's refusal when the journal could not take it (``DISK_FULL``, ``STORE_ERROR``)."""

    reply: dict[str, Any]
    refusal: Outcome | None = None
    written: Written | None = None


def enter(
    store: Store,
    config: Config,
    codes: CodeBook,
    request: ManualRequest,
    *,
    disk_full: bool,
    boot_id: str,
    clock_synced: bool,
) -> Entered:
    """Check ``request`` against the live config and write it (the loop's side of
    ``station manual-entry``: the journal keeps one writer, the counter's visit is left alone)."""
    try:
        resolved = check(config, codes, request)
    except ManualError as exc:
        return Entered({"ok": False, "kind": exc.kind, "error": str(exc)})
    if disk_full:
        error = _("less than {n} MB free: nothing recorded").format(n=config.station.min_free_mb)
        return Entered({"ok": False, "kind": "store", "error": error}, Outcome.DISK_FULL)
    try:
        done = write(store, request, resolved, boot_id=boot_id, clock_synced=clock_synced)
    except (StoreError, OSError, ValueError, OverflowError) as exc:
        log.error(_("cannot write the store: %s"), exc)
        error = _("the store refused the records ({error}): nothing recorded").format(error=exc)
        return Entered({"ok": False, "kind": "store", "error": error}, Outcome.STORE_ERROR)
    if done.repeat:
        log.info(_("manual entry %s repeated: already records %s"), request.request_id, done.seqs)
        return Entered({"ok": True, "seqs": done.seqs, "repeat": True}, written=done)
    log.info(_("manual entry by %s: records %s"), request.technician, done.seqs)
    return Entered({"ok": True, "seqs": done.seqs}, written=done)
