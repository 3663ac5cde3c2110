"""The counter screen's data: a JSON-ready view of the loop's Snapshot, in the page's language."""

from __future__ import annotations

import gettext
from functools import cache
from typing import Any

from common.i18n import DOMAIN, LANGUAGES, LOCALE_DIR
from common.units import format_mass

from ..config import Config
from ..loop import Snapshot
from ..outcomes import Outcome

__all__ = ["build", "catalogue", "pick_language"]


@cache
def catalogue(lang: str) -> gettext.NullTranslations:
    """The shared catalogue in ``lang``: the page may speak another language than the station's
    logs (``?lang=en``), so it cannot use the process-wide ``common.i18n._``."""
    return gettext.translation(DOMAIN, LOCALE_DIR, languages=[lang], fallback=True)


def pick_language(asked: str | None, default: str) -> str:
    asked = (asked or "").split("-")[0].split("_")[0].lower()
    return asked if asked in LANGUAGES else default


def _kg(mg: int, lang: str) -> str:
    return format_mass(mg, lang=lang)


def _weight(snap: Snapshot, config: Config, lang: str) -> dict[str, Any]:
    """The big number and its state; the state is said in words and in a colour class."""
    _ = catalogue(lang).gettext
    reading = snap.weight
    state, words, number = "offline", _("Scale not answering"), "—"
    capacity = config.scale.capacity
    if snap.scale_ok and reading is None:
        state, words = "offline", _("Waiting for the scale")
    elif snap.scale_ok and reading is not None:
        loaded = reading.gross_mg if reading.gross_mg is not None else reading.net_mg
        if reading.overload:
            state, words = "over", _("Overload: take the load off")
        elif reading.underload:
            state, words = "under", _("Under zero: zero the scale")
        elif reading.net_mg is None:
            state, words = "offline", _("No weight")
        else:
            # what a press would record: the scale's net less a scanned container's tare
            net = reading.net_mg - snap.container_tare_mg
            number = _kg(net, lang).removesuffix(" kg")
            if capacity is not None and loaded is not None and loaded > capacity:
                state = "over"
                words = _("Above capacity ({capacity})").format(capacity=_kg(capacity, lang))
            elif reading.stable:
                state, words = "stable", _("Stable")
            else:
                state, words = "motion", _("In motion")
    return {"number": number, "unit": "kg", "state": state, "words": words}


def _last(snap: Snapshot) -> dict[str, Any] | None:
    last = snap.last
    if last is None:
        return None
    if last.outcome is Outcome.RECORDED:
        kind = "recorded"
    elif last.outcome is Outcome.VOIDED:
        kind = "voided"
    elif not last.ok:
        kind = "refused"
    else:
        kind = "info"
    # the loop's own words (station/outcomes.py), so the screen says what the panel meant
    return {"text": last.text, "kind": kind, "outcome": last.outcome.value, "key": last.t_done}


def build(snap: Snapshot, config: Config, lang: str, *, sync_enabled: bool) -> dict[str, Any]:
    """Everything the page shows, as strings ready to put in the DOM (numbers formatted)."""
    _ = catalogue(lang).gettext
    names = {c.code: c.name for c in config.categories}
    items = [
        {"seq": i.seq, "weight": _kg(i.net_mg, lang), "category": names.get(i.category, i.category)}
        for i in snap.items
    ]
    if snap.beneficiary is None:
        hint = _("Scan the beneficiary's code")
    elif snap.category is None:
        hint = _("Scan a category sheet")
    elif snap.waiting:
        hint = _("Weighing: waiting for a stable weight…")
    else:
        hint = _("Put the item on the scale, then press the button")
    if not sync_enabled:
        sync = {"state": "local", "words": _("Records kept on this station")}
    elif snap.backlog:
        words = _("To send: {n}").format(n=snap.backlog)
        sync = {"state": "pending", "words": words}
    else:
        sync = {"state": "ok", "words": _("All records sent")}
    warnings = []
    if not snap.clock_synced:
        warnings.append(_("Clock not synchronised"))
    if not snap.scanner_ok:
        warnings.append(_("Scanner not connected"))
    referrer = snap.referrer_name or snap.referrer or ""
    container = ""
    if snap.container:
        container = _("Container {name}: −{tare} deducted").format(
            name=snap.container, tare=_kg(snap.container_tare_mg, lang)
        )
    return {
        "weight": _weight(snap, config, lang),
        "waiting": snap.waiting,
        "beneficiary": snap.beneficiary or "",
        "referrer": referrer,
        "category": snap.category_name or snap.category or "",
        "container": container,
        "operator": snap.operator,
        "items": items,
        "count": _("Items: {n}").format(n=len(items)),
        "total": _kg(snap.visit_total_mg, lang),
        "last": _last(snap),
        "hint": hint,
        "sync": sync,
        "warnings": warnings,
    }
