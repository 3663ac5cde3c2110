"""The counter's visit/press/code state machine (DESIGN §3), pure: events in, outcomes out.

No thread, no store, no panel, no clock of its own: the loop (:mod:`station.loop`) hands it each
event with the time, writes the record a :class:`Step` asks for, and gives the stored row back
(:meth:`Step.then`), so the state only moves once the journal has the record.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from common.i18n import _, ngettext
from common.units import format_mass
from drivers.base import Reading, ScaleError
from drivers.scale import Ack, Command, Reply
from drivers.scale.capture import is_net
from drivers.serialio import escape_frame
from sync.wire import MAX_MG

from .codes import Classified, CodeBook, Kind
from .config import Config
from .outcomes import Outcome

__all__ = [
    "RETRY_CLOSE_S",
    "Append",
    "Counter",
    "Item",
    "PieceWeight",
    "Signal",
    "Step",
    "Visit",
    "mask",
    "profile_of",
]

RETRY_CLOSE_S = 30.0  # a visit whose close could not be written: tried again this much later
# a weight label waits this long for its press: a label left pending must not be recorded for
# the next item, weighed on the serial scale minutes later
LABEL_HOLD_S = 120.0


def mask(code: str, keep: int = 4) -> str:
    """Hide a beneficiary code but its last characters: ``'••••••1234'``."""
    return "•" * max(0, len(code) - keep) + code[-keep:]


def profile_of(data: str | None) -> list[str]:
    """The profile tags a weighing's ``data`` carries (none when absent or unreadable)."""
    try:
        tags = json.loads(data or "{}").get("profile", [])
    except (ValueError, AttributeError):
        return []
    return [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else []


@dataclass(frozen=True, slots=True)
class Item:
    seq: int
    net_mg: int
    category: str


@dataclass
class Visit:
    id: str
    beneficiary: str
    referrer: str | None
    items: list[Item] = field(default_factory=list)
    profile: list[str] = field(default_factory=list)  # household profile tags scanned


@dataclass
class _Press:
    """A press waiting for its stable weight, with what staff had scanned when they pressed."""

    t: float
    deadline: float
    visit: Visit | None
    category: Classified
    container: Classified | None
    operator: Classified | None
    sample: int = 0  # > 0: not a weighing but a counting sample of that many pieces
    seen_reading: bool = False


@dataclass(frozen=True, slots=True)
class Signal:
    """An outcome to show staff (panel, screen, log), as the loop's ``Result`` will carry it."""

    outcome: Outcome
    detail: str = ""
    seq: int | None = None
    net_mg: int | None = None
    t: float = 0.0


@dataclass(frozen=True, slots=True)
class Append:
    """A journal record to append (the loop adds the clock fields: mono_ns, boot, sync)."""

    kind: str
    fields: dict[str, Any]
    t: float  # the staff action it answers


@dataclass(frozen=True, slots=True)
class PieceWeight:
    """A piece weight learnt by sampling, to keep in the journal's meta."""

    category: str
    mg: int
    t: float


Then = Callable[[dict[str, Any] | None], "Step"]


@dataclass(frozen=True, slots=True)
class Step:
    """What the loop does for one event, in order: the scale effects, the signals, then the
    write (if any), whose stored row (None: refused, already signalled by the loop) goes to
    ``then`` for the next step."""

    signals: tuple[Signal, ...] = ()
    write: Append | PieceWeight | None = None
    then: Then | None = None
    poll_until: float | None = None  # ask the scale for weights until then
    relax: bool = False  # back to the normal polling pace
    command: tuple[Command, str] | None = None  # a command for the scale, with its token
    note: str = ""  # for the log: why an event changed nothing

    def __add__(self, other: Step) -> Step:
        """This step's effects and signals, then ``other``'s (``self`` must not write)."""
        assert self.write is None
        return Step(
            self.signals + other.signals,
            other.write,
            other.then,
            other.poll_until if other.poll_until is not None else self.poll_until,
            self.relax or other.relax,
            other.command or self.command,
            other.note or self.note,
        )


NOTHING = Step()


def _say(outcome: Outcome, detail: str = "", *, t: float = 0.0, **kw: Any) -> Step:
    return Step((Signal(outcome, detail, t=t, **kw),))


class Counter:
    """The workflow of one counter: visit, category, container, operator, press, hold, codes.

    Every method takes the event's time ``t`` and the current time ``now`` (monotonic seconds)
    and returns a :class:`Step`. Staff-visible state is readable (``visit``, ``category``, …)
    for the loop's snapshot; change it only through the methods.
    """

    def __init__(
        self,
        config: Config,
        *,
        piece_weights: dict[str, int] | None = None,
        calibration_id: str | None = None,
        new_id: Callable[[], str],
    ) -> None:
        self.config = config
        self.codes = CodeBook(config)
        self.calibration_id = calibration_id
        self._new_id = new_id  # visit ids (uuid4().hex in the loop; predictable in tests)
        self.scale_ok = False
        self.scale_id = config.scale.scale_id or ""
        self.reading: Reading | None = None
        self.piece_weights = dict(piece_weights or {})
        self.visit: Visit | None = None
        self.visit_deadline: float | None = None
        self.category: Classified | None = None
        self.operator: Classified | None = None
        self.container: Classified | None = None
        self.referrer: str | None = None  # a structure scanned apart, before the visit opened
        self.profile: list[str] = []  # profile tags scanned before the visit opened
        self._press: _Press | None = None
        self.label: Classified | None = None  # a weight label scanned, waiting for the press
        self._label_until = 0.0
        self._recorded_net: int | None = None  # the scale's net at the last weighing
        self._rearmed = True
        self._last_code: tuple[str, float] = ("", -1e9)

    # -- state for the loop ----------------------------------------------------------------
    @property
    def waiting(self) -> bool:
        """A press (or sample) waits for its stable weight."""
        return self._press is not None

    def next_deadline(self) -> float | None:
        """When :meth:`tick` has something to do next (None: nothing is waiting)."""
        times = [] if self.visit_deadline is None else [self.visit_deadline]
        if self._press is not None:
            times.append(self._press.deadline)
        return min(times, default=None)

    def reconfigure(self, config: Config) -> None:
        self.config = config
        self.codes = CodeBook(config)

    # -- scale -------------------------------------------------------------------------------
    def scale_state(self, ok: bool) -> Step:
        self.scale_ok = ok
        if not ok:
            self.reading = None
            return NOTHING
        if not self.config.scale.scale_id:
            return Step(command=(Command.IDENTIFY, "identify"))
        return NOTHING

    def scale_reply(self, token: object, outcome: Reply | ScaleError) -> Step:
        if token == "identify":
            if isinstance(outcome, Ack) and outcome.params:
                self.scale_id = f"{self.config.scale.protocol}:{outcome.params[0]}"
            elif not self.scale_id:
                self.scale_id = self.config.scale.protocol
            return NOTHING
        if token in ("tare", "zero"):
            if isinstance(outcome, ScaleError):
                return _say(Outcome.SCALE_REFUSED, str(outcome))
            return _say(Outcome.TARED if token == "tare" else Outcome.ZEROED)
        return NOTHING

    def weight(self, reading: Reading, t: float) -> Step:
        """A (corrected) reading asked or streamed at ``t``."""
        self.reading = reading
        if not reading.stable or reading.net_mg != self._recorded_net:
            self._rearmed = True  # the pan moved since the last record: a new item is there
        press = self._press
        if press is None or t < press.t:
            # a weight asked before the press may predate the item (swapped as the button
            # went down): only one asked after the press describes what was weighed
            return NOTHING
        press.seen_reading = True
        if reading.overload or reading.underload:
            self._press = None
            outcome = Outcome.OVERLOAD if reading.overload else Outcome.UNDERLOAD
            return Step(relax=True) + _say(outcome, t=press.t)
        if not reading.stable or reading.net_mg is None:
            return NOTHING  # keep waiting for a stable weight until the deadline
        self._press = None
        done = self._learn(reading, press) if press.sample else self._weigh(reading, press)
        return Step(relax=True) + done

    # -- button ------------------------------------------------------------------------------
    def press(self, t: float, now: float) -> Step:
        self._touch(now)
        if self._press is not None:
            return Step(note=_("press ignored: already waiting for a stable weight"))
        if self.visit is None:
            return _say(Outcome.NO_BENEFICIARY, t=t)
        if self.label is not None and now < self._label_until:
            return self._weigh_label(self.label, self.visit, t)
        self.label = None
        return self._start_press(t, 0)

    def _start_press(self, t: float, sample: int) -> Step:
        if self.category is None:
            return _say(Outcome.NO_CATEGORY, t=t)
        if not self.scale_ok:
            return _say(Outcome.NO_SCALE, t=t)
        deadline = t + self.config.scale.stable_wait
        self._press = _Press(
            t, deadline, self.visit, self.category, self.container, self.operator, sample
        )
        return Step(poll_until=deadline)

    def hold(self, t: float, now: float) -> Step:
        """Void the last weighing of the visit still standing."""
        self._touch(now)
        visit = self.visit
        if visit is None or not visit.items:
            return _say(Outcome.NOTHING_TO_VOID, t=t)
        target = visit.items[-1]
        record = Append(
            "void",
            {
                "visit": visit.id,
                "beneficiary": visit.beneficiary,
                "referrer": visit.referrer,
                "category": target.category,
                "operator": self.operator.code if self.operator else None,
                "voids": target.seq,
                "reason": "button_hold",
            },
            t,
        )

        def voided(row: dict[str, Any] | None) -> Step:
            if row is None:
                return NOTHING
            visit.items = [i for i in visit.items if i.seq != target.seq]
            self._rearmed = True  # the usual correction is to weigh the same item again
            # the hold asks no confirmation: the banner is where staff see what went
            detail = _("{weight} {category} (record {seq})").format(
                weight=format_mass(target.net_mg),
                category=self.codes.classify(target.category).name or target.category,
                seq=target.seq,
            )
            return _say(Outcome.VOIDED, detail, seq=row["seq"], t=t)

        return Step(write=record, then=voided)

    # -- weighing ----------------------------------------------------------------------------
    def _learn(self, reading: Reading, press: _Press) -> Step:
        assert reading.net_mg is not None
        box = press.container.tare_mg if press.container is not None else 0
        net = reading.net_mg - box
        piece = int((Decimal(net) / press.sample).to_integral_value())  # exact, half-even
        if net < self.config.scale.min_weight or piece <= 0:
            return _say(Outcome.BELOW_MINIMUM, format_mass(self.config.scale.min_weight))
        category = press.category

        def learnt(row: dict[str, Any] | None) -> Step:
            if row is None:
                return NOTHING
            self.piece_weights[category.code] = piece
            self._rearmed = True  # the sample is not an item: weighing it next is allowed
            detail = _("{n} pieces of {category}, {weight} per piece").format(
                n=press.sample, category=category.name, weight=format_mass(piece, "g", 1)
            )
            return _say(Outcome.SAMPLED, detail, t=press.t)

        return Step(write=PieceWeight(category.code, piece, press.t), then=learnt)

    def _pieces(
        self, reading: Reading, net: int, category: str
    ) -> tuple[int | None, int | None, bool | None]:
        """(pieces, unit weight, computed): the scale's count, else ours from a sample."""
        if reading.pieces is not None:
            return reading.pieces, reading.unit_weight_mg, False
        piece = self.piece_weights.get(category)
        if piece is None:
            return None, None, None
        return int((Decimal(net) / piece).to_integral_value()), piece, True

    def _weigh(self, reading: Reading, press: _Press) -> Step:
        visit = press.visit
        if reading.net_mg is None or visit is None:
            return NOTHING
        t = press.t
        container = press.container
        box_tare = container.tare_mg if container is not None else 0
        net = reading.net_mg - box_tare
        cfg = self.config.scale
        if max(abs(net), abs(reading.gross_mg or 0)) > MAX_MG:
            # beyond any counter scale (a garbled or misconfigured frame): never record it
            return _say(Outcome.ABOVE_CAPACITY, format_mass(MAX_MG), t=t)
        if net < cfg.min_weight:
            return _say(Outcome.BELOW_MINIMUM, format_mass(cfg.min_weight), t=t)
        if cfg.minimum_load is not None and net < cfg.minimum_load:
            # OIML R 76 Min: below it the scale's relative error is too large for a record
            return _say(Outcome.BELOW_MIN_LOAD, format_mass(cfg.minimum_load), t=t)
        loaded = reading.gross_mg if reading.gross_mg is not None else reading.net_mg
        if cfg.capacity is not None and loaded > cfg.capacity:
            return _say(Outcome.ABOVE_CAPACITY, format_mass(cfg.capacity), t=t)
        if not self._rearmed and reading.net_mg == self._recorded_net:
            # a second press on the same load would count the same item twice
            return _say(Outcome.SAME_ITEM, t=t)
        pieces, unit_weight, computed = self._pieces(reading, net, press.category.code)
        tare = reading.tare_mg
        if box_tare:
            tare = (tare or 0) + box_tare
        data: dict[str, Any] = {}
        if container is not None:
            data = {"container": container.code, "container_tare_mg": box_tare}
        if visit.profile:
            data["profile"] = visit.profile  # the office's reports count by it
        weighed = is_net(reading)  # the frame's own net/gross marker, else what gross/tare imply
        if weighed is not None:
            # kept in data: a record column would change the hash of every record (wire v1)
            data["weighed"] = "net" if weighed else "gross"
        record = Append(
            "weighing",
            {
                "visit": visit.id,
                "beneficiary": visit.beneficiary,
                "referrer": visit.referrer,
                "category": press.category.code,
                "operator": press.operator.code if press.operator else None,
                "source": "scale",
                "stable": reading.stable,
                "gross_mg": reading.gross_mg,
                "tare_mg": tare,
                "net_mg": net,
                "unit": reading.unit,
                "pieces": pieces,
                "unit_weight_mg": unit_weight,
                "pieces_computed": computed,
                "scale_id": self.scale_id or cfg.protocol,
                "calibration_id": self.calibration_id,
                "raw": escape_frame(reading.raw),
                "data": data or None,
            },
            t,
        )
        scale_net = reading.net_mg
        category = press.category

        def recorded(row: dict[str, Any] | None) -> Step:
            if row is None:
                return NOTHING
            self._recorded_net = scale_net
            self._rearmed = False
            visit.items.append(Item(row["seq"], net, category.code))
            detail = f"{format_mass(net)} {category.name}"
            return _say(Outcome.RECORDED, detail, seq=row["seq"], net_mg=net, t=t)

        return Step(write=record, then=recorded)

    def _weigh_label(self, label: Classified, visit: Visit, t: float) -> Step:
        """The press after a weight label: the certified scale's weight, not the serial
        scale's (its Min, Max, calibration and container tare are not this weight's)."""
        if self.category is None:
            return _say(Outcome.NO_CATEGORY, t=t)
        net = label.weight_mg
        if net > MAX_MG:
            return _say(Outcome.ABOVE_CAPACITY, format_mass(MAX_MG), t=t)
        if net < self.config.scale.min_weight:
            return _say(Outcome.BELOW_MINIMUM, format_mass(self.config.scale.min_weight), t=t)
        pattern = label.label
        assert pattern is not None
        category = self.category
        pieces, unit_weight, computed = self._pieces(
            Reading(net, pattern.unit, True), net, category.code
        )
        data: dict[str, Any] = {"label": label.code, "label_pattern": pattern.name}
        if visit.profile:
            data["profile"] = visit.profile
        record = Append(
            "weighing",
            {
                "visit": visit.id,
                "beneficiary": visit.beneficiary,
                "referrer": visit.referrer,
                "category": category.code,
                "operator": self.operator.code if self.operator else None,
                "source": "label",
                "stable": True,
                "gross_mg": None,
                "tare_mg": None,
                "net_mg": net,
                "unit": pattern.unit,
                "pieces": pieces,
                "unit_weight_mg": unit_weight,
                "pieces_computed": computed,
                "scale_id": pattern.scale_id or "label",
                "calibration_id": None,
                "raw": label.code,
                "data": data,
            },
            t,
        )

        def recorded(row: dict[str, Any] | None) -> Step:
            if row is None:
                return NOTHING  # the label stays: the next press tries again
            self.label = None
            visit.items.append(Item(row["seq"], net, category.code))
            detail = _("{weight} {category} (label)").format(
                weight=format_mass(net), category=category.name
            )
            return _say(Outcome.RECORDED, detail, seq=row["seq"], net_mg=net, t=t)

        return Step(write=record, then=recorded)

    # -- codes -------------------------------------------------------------------------------
    def unreadable(self, detail: str, t: float, now: float) -> Step:
        self._touch(now)
        return _say(Outcome.MISREAD, detail, t=t)

    def code(self, code: str, t: float, now: float) -> Step:
        last_code, last_t = self._last_code
        self._last_code = (code, t)
        if code == last_code and t - last_t < self.config.scanner.dedupe_window:
            # the scanner read the same sheet twice
            return Step(note=_("code %s read twice, second read ignored") % code)
        self._touch(now)
        c = self.codes.classify(code)
        if c.kind is Kind.BENEFICIARY:
            if self.visit is not None and self.visit.beneficiary == c.code:
                return _say(Outcome.VISIT_OPENED, self._opened_detail(c.code), t=t)
            return self._close_visit("new_beneficiary", t, now, then=lambda: self._open(c, t, now))
        if c.kind is Kind.CATEGORY:
            self.category = c
            return _say(Outcome.CATEGORY_SET, c.name, t=t)
        if c.kind is Kind.END_VISIT:
            if self.visit is None:
                return _say(Outcome.VISIT_CLOSED, _("no visit was open"), t=t)
            return self._close_visit("end_code", t, now)
        if c.kind is Kind.CONTAINER:
            self.container = c
            return _say(Outcome.CONTAINER_SET, f"{c.name} ({format_mass(c.tare_mg)})", t=t)
        if c.kind is Kind.OPERATOR:
            self.operator = c
            return _say(Outcome.OPERATOR_SET, c.name, t=t)
        if c.kind is Kind.REFERRER:
            self.referrer = c.referrer
            if self.visit is not None:
                self.visit.referrer = c.referrer
            return _say(Outcome.REFERRER_SET, c.name or c.code, t=t)
        if c.kind is Kind.PROFILE:
            tags = self.visit.profile if self.visit is not None else self.profile
            if c.tag not in tags:
                tags.append(c.tag)
            return _say(Outcome.PROFILE_SET, c.name, t=t)
        if c.kind in (Kind.TARE, Kind.ZERO):
            self.container = None
            if not self.scale_ok:
                return _say(Outcome.NO_SCALE, t=t)
            if c.kind is Kind.TARE:
                return Step(command=(Command.TARE, "tare"))
            return Step(command=(Command.ZERO, "zero"))
        if c.kind is Kind.SAMPLE:
            if self._press is not None:
                return Step(note=_("sample ignored: already waiting for a stable weight"))
            return self._start_press(t, c.pieces)
        if c.kind is Kind.WEIGHT_LABEL:
            self.label = c
            self._label_until = now + LABEL_HOLD_S
            # staff see and hear it was read: the press that follows records this weight
            return _say(Outcome.LABEL_READ, format_mass(c.weight_mg), t=t)
        if c.kind is Kind.BAD_LABEL:
            return _say(Outcome.MISREAD if c.misread else Outcome.UNKNOWN_CODE, c.name, t=t)
        if c.kind is Kind.MISREAD:
            # most misreads are beneficiary codes: shown masked, as a good one would be
            sample = self.config.codes.sample_prefix
            shown = code if sample and code.startswith(sample) else mask(code)
            return _say(Outcome.MISREAD, shown, t=t)
        return _say(Outcome.UNKNOWN_CODE, code, t=t)

    # -- visits ------------------------------------------------------------------------------
    def _opened_detail(self, code: str) -> str:
        """The masked code, and the category that carries into this visit: staff must see it
        before the first press, or the next person's items go to the last person's category."""
        if self.category is None:
            return mask(code)
        return _("{code}, category {category}").format(code=mask(code), category=self.category.name)

    def _open(self, c: Classified, t: float, now: float) -> Step:
        referrer = self.referrer or c.referrer  # a code scanned apart is a deliberate choice
        visit = Visit(self._new_id(), c.code, referrer, profile=self.profile)
        record = Append(
            "visit_open",
            {
                "visit": visit.id,
                "beneficiary": visit.beneficiary,
                "referrer": referrer,
                "operator": self.operator.code if self.operator else None,
            },
            t,
        )

        def opened(row: dict[str, Any] | None) -> Step:
            if row is None:
                return NOTHING
            self.visit = visit
            self.referrer = None
            self.profile = []
            if self.config.visit.category_resets:
                self.category = None  # each person's items start without a category
            self._touch(now)
            return _say(Outcome.VISIT_OPENED, self._opened_detail(c.code), seq=row["seq"], t=t)

        return Step(write=record, then=opened)

    def _close_visit(
        self, reason: str, t: float, now: float, then: Callable[[], Step] | None = None
    ) -> Step:
        """Close the open visit, then run ``then`` (not when the close could not be written:
        the visit stays open and its close is tried again later)."""
        visit = self.visit
        if visit is None:
            self.visit_deadline = None
            return then() if then is not None else NOTHING
        cancel = self._cancel_press()
        total = sum(i.net_mg for i in visit.items)
        record = Append(
            "visit_close",
            {
                "visit": visit.id,
                "beneficiary": visit.beneficiary,
                "referrer": visit.referrer,
                "reason": reason,
                "data": {"items": len(visit.items), "net_mg": total},
            },
            t,
        )

        def closed(row: dict[str, Any] | None) -> Step:
            if row is None:
                self.visit_deadline = now + RETRY_CLOSE_S  # storage failing: not every turn
                return NOTHING
            self.visit = None
            self.visit_deadline = None
            self.container = None
            self.label = None  # a label scanned for this person is not the next one's
            self.referrer = None
            self.profile = []
            n = len(visit.items)
            detail = ngettext("{n} item, {weight}", "{n} items, {weight}", n).format(
                n=n, weight=format_mass(total)
            )
            done = _say(Outcome.VISIT_CLOSED, detail, seq=row["seq"], t=t)
            return done + then() if then is not None else done

        return cancel + Step(write=record, then=closed)

    def _cancel_press(self) -> Step:
        """The visit changes under a waiting press: its item must not go to another visit."""
        press = self._press
        if press is None:
            return NOTHING
        self._press = None
        return Step(relax=True) + _say(Outcome.CANCELLED, t=press.t)

    def restore(
        self,
        opened: dict[str, Any],
        weighings: list[dict[str, Any]],
        last: dict[str, Any],
        *,
        idle_s: float,
        same_boot: bool,
        now: float,
    ) -> Step:
        """After a daemon restart, carry on with the visit that was open (staff saw it open),
        only within the same boot and the visit timeout: after a power cut or a night, the
        next person must not inherit yesterday's beneficiary (the visit is closed instead)."""
        visit = Visit(opened["visit"], opened["beneficiary"], opened["referrer"])
        visit.items = [Item(w["seq"], w["net_mg"] or 0, w["category"] or "") for w in weighings]
        self.visit = visit
        if not same_boot or not 0 <= idle_s < self.config.visit.timeout:
            return self._close_visit("restart", now, now)
        if weighings and weighings[-1]["referrer"]:
            visit.referrer = weighings[-1]["referrer"]  # a structure scanned apart mid-visit
        if weighings:
            visit.profile = profile_of(weighings[-1]["data"])  # profiles scanned mid-visit
        self._touch(now)
        return NOTHING

    # -- time --------------------------------------------------------------------------------
    def tick(self, now: float) -> Step:
        """Deadlines: a press that saw no stable weight in time, a visit left idle."""
        step = NOTHING
        press = self._press
        if press is not None and now >= press.deadline:
            self._press = None
            outcome = Outcome.UNSTABLE if press.seen_reading else Outcome.NO_SCALE
            step = Step(relax=True) + _say(outcome, t=press.t)
        if self.visit_deadline is not None and now >= self.visit_deadline:
            return step + self._close_visit("timeout", now, now)
        return step

    def _touch(self, now: float) -> None:
        if self.visit is not None:
            self.visit_deadline = now + self.config.visit.timeout
