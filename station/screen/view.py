"""The counter screen's data: a JSON-ready view of the loop's Snapshot, in the page's language."""

from __future__ import annotations

import gettext
from functools import cache
from typing import Any

from common.i18n import DOMAIN, LOCALE_DIR, pick_language
from common.units import format_mass, format_number
from drivers.base import Reading

from ..codes import CodeBook, Kind
from ..config import Config
from ..loop import Snapshot, mask
from ..outcomes import Outcome, describe

__all__ = ["build", "catalogue", "pick_language"]


@cache
def catalogue(lang: str) -> gettext.NullTranslations:
    """The shared catalogue in ``lang``: the page may speak another language than the station's
    logs (``?lang=en``), so it cannot use the process-wide ``common.i18n._``."""
    return gettext.translation(DOMAIN, LOCALE_DIR, languages=[lang], fallback=True)


def _kg(mg: int, lang: str) -> str:
    return format_mass(mg, lang=lang)


def _on_pan(snap: Snapshot) -> int | None:
    """What a press would record now: the scale's net less a scanned container's tare."""
    reading = snap.weight
    if not snap.scale_ok or reading is None or reading.net_mg is None:
        return None
    if reading.overload or reading.underload:
        return None
    return reading.net_mg - snap.container_tare_mg


def _above_capacity(reading: Reading, config: Config) -> bool:
    loaded = reading.gross_mg if reading.gross_mg is not None else reading.net_mg
    capacity = config.scale.capacity
    return capacity is not None and loaded is not None and loaded > capacity


def _weight(snap: Snapshot, config: Config, lang: str) -> dict[str, Any]:
    """The big number and its state; the state is said in words and in a colour class."""
    _ = catalogue(lang).gettext
    reading = snap.weight
    state, words, number = "offline", _("Scale not answering"), "—"
    net = _on_pan(snap)
    if snap.scale_ok and reading is None:
        state, words = "offline", _("Waiting for the scale")
    elif snap.scale_ok and reading is not None:
        if reading.overload:
            state, words = "over", _("Overload: take the load off")
        elif reading.underload:
            state, words = "under", _("Under zero: zero the scale")
        elif net is None:
            state, words = "offline", _("No weight")
        elif snap.container and net < 0:
            # the container is not on the pan yet: a negative "weight" would only puzzle
            state, words = "empty", _("Container not on the scale")
        else:
            number = _kg(net, lang).removesuffix(" kg")
            if _above_capacity(reading, config):
                state = "over"
                words = _("Above capacity ({capacity})").format(
                    capacity=_kg(config.scale.capacity or 0, lang)
                )
            elif reading.stable:
                state, words = "stable", _("Stable")
            else:
                state, words = "motion", _("In motion")
    return {"number": number, "unit": "kg", "state": state, "words": words}


_books: dict[int, tuple[Config, CodeBook]] = {}


def _codebook(config: Config) -> CodeBook:
    """The config's code book, built once per config (the view is rebuilt many times a second)."""
    cached = _books.get(id(config))
    if cached is None or cached[0] is not config:
        _books.clear()  # only the live config matters
        cached = _books[id(config)] = (config, CodeBook(config))
    return cached[1]


def _masked_misread(text: str, config: Config) -> str:
    """A misread beneficiary code is still a beneficiary code: mask it as the others.

    The loop's words are in the station's language (the process-wide one, as ``describe``
    uses): the code is what sits where ``{detail}`` goes."""
    before, _sep, after = describe(Outcome.MISREAD, "\0").partition("\0")
    if not (text.startswith(before) and text.endswith(after)) or len(text) < len(before + after):
        return text
    code = text[len(before) : len(text) - len(after)]
    if _codebook(config).classify(code).kind is not Kind.MISREAD:
        return text  # the scanner's own report (a garbled frame), not a code
    return before + mask(code) + after


def _short_mask(masked: str) -> str:
    """At most three dots before the visible end: on a narrow screen an ellipsis must never
    eat the characters staff compare with the letter."""
    shown = masked.lstrip("•")
    return "•" * min(3, len(masked) - len(shown)) + shown


def _last(snap: Snapshot, config: Config) -> dict[str, Any] | None:
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
    text = last.text
    if last.outcome is Outcome.MISREAD:
        text = _masked_misread(text, config)
    return {"text": text, "kind": kind, "outcome": last.outcome.value, "key": last.t_done}


def _hint(snap: Snapshot, config: Config, lang: str) -> tuple[str, str]:
    """The next step, following the last outcome and the state; and its tone (ok/warn/bad).

    It never contradicts the banner above it: after "take it off" it does not say "put it on",
    and it never asks for an item while the scale does not answer."""
    _ = catalogue(lang).gettext
    outcome = snap.last.outcome if snap.last is not None else None
    # store_fault: the loop's flag for a journal it cannot write (full card, failing storage)
    if outcome in (Outcome.STORE_ERROR, Outcome.DISK_FULL) or getattr(snap, "store_fault", False):
        return _("Call the technician: nothing can be recorded"), "bad"
    if outcome is Outcome.MISREAD:
        return _("Scan the code again"), "warn"
    if snap.beneficiary is None:
        return _("Scan the beneficiary's code"), "ok"
    if snap.category is None:
        return _("Scan a category sheet"), "warn" if outcome is Outcome.VISIT_OPENED else "ok"
    reading = snap.weight
    if not snap.scale_ok or reading is None:
        return _("The scale does not answer: check that it is on and plugged in"), "bad"
    if snap.waiting:
        return _("Weighing: waiting for a stable weight…"), "ok"
    if outcome is Outcome.VISIT_OPENED:
        name = snap.category_name or snap.category
        return _("Category still {name}: scan a sheet to change it").format(name=name), "warn"
    if reading.overload or _above_capacity(reading, config):
        return _("Take the load off the scale"), "bad"
    if reading.underload:
        return _("Empty the pan, then scan {code}").format(code=config.codes.zero), "bad"
    net = _on_pan(snap)
    if net is None:
        return _("The scale does not answer: check that it is on and plugged in"), "bad"
    if snap.container and net < 0:
        return _("Put the container on the scale, then the item in it"), "ok"
    if (
        outcome in (Outcome.RECORDED, Outcome.SAME_ITEM)
        and snap.items
        and net == snap.items[-1].net_mg
    ):
        # the item just recorded is still on the pan
        tone = "warn" if outcome is Outcome.SAME_ITEM else "ok"
        return _("Take the item off the scale, then put the next one on"), tone
    light = outcome in (Outcome.BELOW_MINIMUM, Outcome.BELOW_MIN_LOAD)
    if light and net > 0:
        # the light item is still there: "put the item on" would contradict the refusal
        return _("Too light: weigh it together with other items"), "warn"
    if net < config.scale.min_weight:
        return _("Put the item on the scale, then press the button"), "ok"
    if not reading.stable:
        return _("Wait for a stable weight, then press the button"), "ok"
    return _("Press the button to record this item"), "ok"


def build(snap: Snapshot, config: Config, lang: str, *, sync_enabled: bool) -> dict[str, Any]:
    """Everything the page shows, as strings ready to put in the DOM (numbers formatted)."""
    tr = catalogue(lang)
    _ = tr.gettext
    names = {c.code: c.name for c in config.categories}
    items = [
        {"seq": i.seq, "weight": _kg(i.net_mg, lang), "category": names.get(i.category, i.category)}
        for i in snap.items
    ]
    hint, tone = _hint(snap, config, lang)
    if not sync_enabled:
        sync = {"state": "local", "words": _("Records kept on this station")}
    elif snap.backlog:
        words = _("To send: {n}").format(n=format_number(snap.backlog, lang=lang))
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
        container = _("Container {name}: {tare} deducted").format(
            name=snap.container, tare=_kg(snap.container_tare_mg, lang)
        )
    # the touch button's second tap voids the visit's last item: the hint names it meanwhile
    void = _("Nothing to void in this visit")
    if items:
        void = _("Void {weight} {category}? Tap the button again").format(**items[-1])
    # "category" is the one that applies now; flagged when a visit has just opened with it
    carried = snap.last is not None and snap.last.outcome is Outcome.VISIT_OPENED
    return {
        "weight": _weight(snap, config, lang),
        "waiting": snap.waiting,
        "beneficiary": _short_mask(snap.beneficiary or ""),
        "referrer": referrer,
        "category": snap.category_name or snap.category or "",
        "category_state": ("carried" if snap.category else "missing") if carried else "",
        "container": container,
        "operator": snap.operator,
        "items": items,
        "count": _("Items: {n}").format(n=format_number(len(items), lang=lang)),
        # "+{n}" above the list: the page knows how many rows fit, the server says the words
        "more": {
            "one": tr.ngettext("+{n} earlier item", "+{n} earlier items", 1),
            "many": tr.ngettext("+{n} earlier item", "+{n} earlier items", 2),
        },
        "total": _kg(snap.visit_total_mg, lang),
        "last": _last(snap, config),
        "hint": hint,
        "hint_tone": tone,
        "void_confirm": void,
        "sync": sync,
        "warnings": warnings,
    }
