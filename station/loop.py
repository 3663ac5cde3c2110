"""The station's one owning thread: takes device events, runs the workflow, writes the store."""

from __future__ import annotations

import json
import logging
import os
import queue
import shutil
import sqlite3
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from common.i18n import _
from common.units import format_mass
from drivers.base import Reading, ScaleError
from drivers.scale import Ack, Command
from sync.wire import MAX_MG

from .calibration import CalibrationState, load_state
from .clock import ClockStatus, boot_id
from .codes import Classified, CodeBook, Kind
from .config import Config
from .events import (
    Acked,
    ButtonHeld,
    ButtonPressed,
    CodeScanned,
    CodeUnreadable,
    ConfigChanged,
    Event,
    ManualEntry,
    RegistryReceived,
    ScaleReplied,
    ScaleState,
    ScannerState,
    Stop,
    WeightRead,
)
from .outcomes import Outcome, Result, describe
from .registry import RegistryBook
from .store import Store, StoreError

__all__ = ["Snapshot", "Station"]

log = logging.getLogger("station")

QUIET_S = 60.0  # no staff action for this long: a good time for WAL checkpoints and pruning


class ScaleControl(Protocol):
    """What the loop needs from the scale's reader thread (``drivers.scale.worker.ScaleWorker``)."""

    def poll_now(self, until: float) -> None: ...

    def relax(self) -> None: ...

    @property
    def garbage_frames(self) -> int: ...

    def submit(self, command: Command, token: object = None) -> None: ...


class Signaller(Protocol):
    """What the loop needs from the panel: play the light and beep pattern of an outcome."""

    def show(self, outcome: Outcome) -> None: ...

    def ready(self, ok: bool) -> None: ...

    def fault(self, on: bool) -> None: ...


@dataclass(frozen=True, slots=True)
class Item:
    seq: int
    net_mg: int
    category: str


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything a status page may show; replaced whole by the loop, read from any thread."""

    scale_ok: bool = False
    scale_detail: str = ""
    scale_id: str = ""
    scale_rejected_frames: int = 0  # undecodable frames since start: wrong framing or protocol?
    scanner_ok: bool = True
    weight: Reading | None = None
    beneficiary: str | None = None  # masked except the last characters
    referrer: str | None = None
    referrer_name: str = ""
    category: str | None = None
    category_name: str = ""
    operator: str = ""
    container: str = ""
    container_tare_mg: int = 0
    items: tuple[Item, ...] = ()
    waiting: bool = False
    last: Result | None = None
    last_seq: int = 0
    synced_through: int = 0
    backlog: int = 0
    last_record_at: str | None = None
    clock_synced: bool = False

    @property
    def visit_total_mg(self) -> int:
        return sum(i.net_mg for i in self.items)


def _profile_of(data: str | None) -> list[str]:
    """The profile tags a weighing's ``data`` carries (none when absent or unreadable)."""
    try:
        tags = json.loads(data or "{}").get("profile", [])
    except (ValueError, AttributeError):
        return []
    return [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else []


def escape_frame(raw: bytes) -> str:
    """A frame as printable ASCII: control and 8-bit bytes (and backslash) as ``\\xNN``."""
    return "".join(chr(b) if 0x20 <= b < 0x7F and b != 0x5C else f"\\x{b:02x}" for b in raw)


def mask(code: str, keep: int = 4) -> str:
    """Hide a beneficiary code but its last characters: ``'••••••1234'``."""
    return "•" * max(0, len(code) - keep) + code[-keep:]


@dataclass
class _Visit:
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
    visit: _Visit | None
    category: Classified
    container: Classified | None
    operator: Classified | None
    sample: int = 0  # > 0: not a weighing but a counting sample of that many pieces
    seen_reading: bool = False


class Station:
    """The counter workflow of DESIGN §3, owned by one thread (the one that calls :meth:`run`).

    Device threads only :meth:`post` events. Only this thread writes the store and drives the
    panel. ``listeners`` are called on this thread with each :class:`Result`; keep them quick.
    """

    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        scale: ScaleControl | None = None,
        signaller: Signaller | None = None,
        clock: ClockStatus | None = None,
        status_path: Path | None = None,
        registry: RegistryBook | None = None,
    ) -> None:
        self.config = config
        self.registry = registry
        self.store = store
        self.scale = scale
        self.signaller = signaller
        self.clock = clock or ClockStatus()
        self.codes = CodeBook(config)
        self.status_path = status_path
        self.events: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self.listeners: list[Callable[[Result], None]] = []
        self.on_commit: list[Callable[[], None]] = []  # e.g. wake the uploader; must not block
        # more blocks for the status file, e.g. the sync link's state; called on this thread
        self.status_extras: dict[str, Callable[[], Any]] = {}
        self.snapshot = Snapshot()
        self.heartbeat = time.monotonic()
        self._boot = boot_id()
        self._scale_ok = False
        self._scale_detail = _("not connected yet")
        self._scale_id = config.scale.scale_id or ""
        # the calibration in force: its correction applies to every weight, its id to records
        try:
            self.calibration = load_state(config.station.data_dir)
        except ValueError as exc:
            log.error(_("calibration state unreadable, weights uncorrected: %s"), exc)
            self.calibration = CalibrationState()
        self._correction = self.calibration.applied()
        self._scanner_ok = True
        self._reading: Reading | None = None
        self._press: _Press | None = None
        self._piece_weights: dict[str, int] = store.piece_weights()
        self._recorded_net: int | None = None  # the scale's net at the last weighing
        self._rearmed = True
        self._visit: _Visit | None = None
        self._visit_deadline: float | None = None
        self._category: Classified | None = None
        self._operator: Classified | None = None
        self._container: Classified | None = None
        self._referrer: str | None = None
        self._profile: list[str] = []  # profile tags scanned before the visit opened
        self._last_code: tuple[str, float] = ("", -1e9)
        self._last: Result | None = None
        self._last_record_at: str | None = None
        self._full = False
        self._last_activity = time.monotonic()
        self._last_housekeeping = time.monotonic()
        self._status_written = 0.0
        self._status_dirty = True
        self._restore_visit()

    # -- thread-safe entry ---------------------------------------------------------------------
    def post(self, event: Event) -> None:
        self.events.put(event)

    def stop(self, reason: str = "") -> None:
        self.post(Stop(reason))

    # -- the loop ----------------------------------------------------------------------------
    def run(self) -> None:
        log.info(
            _("station %s ready, store %s at seq %d"),
            self.config.station.id,
            self.store.path,
            self.store.last_seq,
        )
        self._publish()
        while True:
            timeout = self._next_timer() - time.monotonic()
            try:
                event = self.events.get(timeout=max(0.0, min(timeout, 1.0)))
            except queue.Empty:
                event = None
            self.heartbeat = time.monotonic()
            if isinstance(event, Stop):
                log.info(_("station stopping: %s"), event.reason or "-")
                break
            if event is not None:
                if not isinstance(event, WeightRead):
                    self._last_activity = self.heartbeat
                try:
                    self._dispatch(event)
                except Exception:  # a bug must not take the counter down; systemd sees the log
                    log.exception("internal error while handling %r", event)
            try:
                self._timers()
                self._housekeeping(self.heartbeat)
                self._publish()
            except Exception:
                log.exception("internal error in the loop's housekeeping")
        if self.status_path is not None:  # a stopped daemon must not look alive
            self.status_path.unlink(missing_ok=True)

    def _next_timer(self) -> float:
        times = [time.monotonic() + 1.0]
        if self._press is not None:
            times.append(self._press.deadline)
        if self._visit_deadline is not None:
            times.append(self._visit_deadline)
        return min(times)

    def _timers(self) -> None:
        now = time.monotonic()
        press = self._press
        if press is not None and now >= press.deadline:
            self._end_press()
            self._finish(Outcome.UNSTABLE if press.seen_reading else Outcome.NO_SCALE, t=press.t)
        if self._visit_deadline is not None and now >= self._visit_deadline:
            self._close_visit("timeout")

    def _dispatch(self, event: Event) -> None:
        if isinstance(event, WeightRead):
            self._on_weight(event)
        elif isinstance(event, ButtonPressed):
            self._on_press(event.t)
        elif isinstance(event, ButtonHeld):
            self._on_hold(event.t)
        elif isinstance(event, CodeScanned):
            self._on_code(event.code, event.t)
        elif isinstance(event, ScaleState):
            self._on_scale_state(event)
        elif isinstance(event, ScaleReplied):
            self._on_scale_reply(event)
        elif isinstance(event, Acked):
            self.store.mark_synced(event.through)
            self._status_dirty = True
        elif isinstance(event, ConfigChanged):
            config = event.config
            if self.registry is not None:
                config = self.registry.rebase(config)  # the office's lists still apply on top
            self.config = config
            self.codes = CodeBook(config)
            self._status_dirty = True
        elif isinstance(event, RegistryReceived):
            if self.registry is not None:
                config = self.registry.receive(event.scope, event.payload)
                if config is not None:
                    self.config = config
                    self.codes = CodeBook(config)
                    self._status_dirty = True
        elif isinstance(event, CodeUnreadable):
            self._touch()
            self._finish(Outcome.MISREAD, detail=event.detail, t=event.t)
        elif isinstance(event, ManualEntry):
            self._on_manual(event)
        elif isinstance(event, ScannerState):
            self._scanner_ok = event.ok
            self._status_dirty = True
            (log.info if event.ok else log.warning)(_("scanner: %s"), event.detail)

    # -- scale -------------------------------------------------------------------------------
    def _on_scale_state(self, event: ScaleState) -> None:
        self._scale_ok = event.ok
        self._scale_detail = event.detail
        self._status_dirty = True
        if self.signaller is not None:
            self.signaller.ready(event.ok)
        if event.ok:
            log.info(_("scale connected: %s"), event.detail)
            if not self.config.scale.scale_id and self.scale is not None:
                self.scale.submit(Command.IDENTIFY, "identify")
        else:
            log.warning(_("scale unavailable: %s"), event.detail)
            self._reading = None

    def _on_scale_reply(self, event: ScaleReplied) -> None:
        outcome = event.outcome
        if event.token == "identify":
            if isinstance(outcome, Ack) and outcome.params:
                self._scale_id = f"{self.config.scale.protocol}:{outcome.params[0]}"
            elif not self._scale_id:
                self._scale_id = self.config.scale.protocol
            return
        if event.token in ("tare", "zero"):
            if isinstance(outcome, ScaleError):
                self._finish(Outcome.SCALE_REFUSED, detail=str(outcome))
            else:
                self._finish(Outcome.TARED if event.token == "tare" else Outcome.ZEROED)

    def _on_weight(self, event: WeightRead) -> None:
        reading = self._correction.apply(event.reading)  # the one place weights are corrected
        self._reading = reading
        if not reading.stable or reading.net_mg != self._recorded_net:
            self._rearmed = True  # the pan moved since the last record: a new item is there
        press = self._press
        if press is None:
            return
        if event.t < press.t:
            # asked before the press: the load may have changed since (an item swapped as the
            # button goes down); only a weight asked after the press describes what was weighed
            return
        press.seen_reading = True
        if reading.overload or reading.underload:
            self._end_press()
            self._finish(Outcome.OVERLOAD if reading.overload else Outcome.UNDERLOAD, t=press.t)
            return
        if not reading.stable or reading.net_mg is None:
            return  # keep waiting for a stable weight until the deadline
        self._end_press()
        if press.sample:
            self._learn_piece_weight(reading, press)
        else:
            self._weigh(reading, press)

    def _end_press(self) -> None:
        self._press = None
        if self.scale is not None:
            self.scale.relax()

    # -- button ------------------------------------------------------------------------------
    def _on_press(self, t: float) -> None:
        self._touch()
        if self._press is not None:
            log.info(_("press ignored: already waiting for a stable weight"))
            return
        if self._visit is None:
            self._finish(Outcome.NO_BENEFICIARY, t=t)
            return
        if self._category is None:
            self._finish(Outcome.NO_CATEGORY, t=t)
            return
        if not self._scale_ok or self.scale is None:
            self._finish(Outcome.NO_SCALE, t=t)
            return
        deadline = t + self.config.scale.stable_wait
        self._press = _Press(
            t, deadline, self._visit, self._category, self._container, self._operator
        )
        self._status_dirty = True
        self.scale.poll_now(deadline)

    def _learn_piece_weight(self, reading: Reading, press: _Press) -> None:
        assert reading.net_mg is not None
        box = press.container.tare_mg if press.container is not None else 0
        net = reading.net_mg - box
        piece = int((Decimal(net) / press.sample).to_integral_value())  # exact, half-even
        if net < self.config.scale.min_weight or piece <= 0:
            self._finish(Outcome.BELOW_MINIMUM, detail=self._kg(self.config.scale.min_weight))
            return
        try:
            self.store.set_piece_weight(press.category.code, piece)
        except (StoreError, OSError) as exc:
            log.error(_("cannot write the store: %s"), exc)
            self._finish(Outcome.STORE_ERROR, t=press.t)
            return
        self._piece_weights[press.category.code] = piece
        self._rearmed = True  # the sample is not an item: weighing it next is allowed
        detail = _("{n} pieces of {category}, {weight} per piece").format(
            n=press.sample,
            category=press.category.name,
            weight=format_mass(piece, "g", 1),
        )
        self._finish(Outcome.SAMPLED, detail=detail, t=press.t)

    def _pieces(
        self, reading: Reading, net: int, category: str
    ) -> tuple[int | None, int | None, bool | None]:
        """(pieces, unit weight, computed): the scale's count, else ours from a sample."""
        if reading.pieces is not None:
            return reading.pieces, reading.unit_weight_mg, False
        piece = self._piece_weights.get(category)
        if piece is None:
            return None, None, None
        return int((Decimal(net) / piece).to_integral_value()), piece, True

    def _start_sample(self, c: Classified, t: float) -> None:
        if self._press is not None:
            log.info(_("sample ignored: already waiting for a stable weight"))
            return
        if self._category is None:
            self._finish(Outcome.NO_CATEGORY, t=t)
            return
        if not self._scale_ok or self.scale is None:
            self._finish(Outcome.NO_SCALE, t=t)
            return
        deadline = t + self.config.scale.stable_wait
        self._press = _Press(
            t, deadline, self._visit, self._category, self._container, self._operator, c.pieces
        )
        self._status_dirty = True
        self.scale.poll_now(deadline)

    def _weigh(self, reading: Reading, press: _Press) -> None:
        if reading.net_mg is None or press.visit is None:
            return
        t = press.t
        container = press.container
        box_tare = container.tare_mg if container is not None else 0
        net = reading.net_mg - box_tare
        cfg = self.config.scale
        if max(abs(net), abs(reading.gross_mg or 0)) > MAX_MG:
            # beyond any counter scale (a garbled or misconfigured frame): never record it
            self._finish(Outcome.ABOVE_CAPACITY, detail=self._kg(MAX_MG), t=t)
            return
        if net < cfg.min_weight:
            self._finish(Outcome.BELOW_MINIMUM, detail=self._kg(cfg.min_weight), t=t)
            return
        if cfg.minimum_load is not None and net < cfg.minimum_load:
            # OIML R 76 Min: below it the scale's relative error is too large for a record
            self._finish(Outcome.BELOW_MIN_LOAD, detail=self._kg(cfg.minimum_load), t=t)
            return
        loaded = reading.gross_mg if reading.gross_mg is not None else reading.net_mg
        if cfg.capacity is not None and loaded > cfg.capacity:
            self._finish(Outcome.ABOVE_CAPACITY, detail=self._kg(cfg.capacity), t=t)
            return
        if not self._rearmed and reading.net_mg == self._recorded_net:
            # a second press on the same load would count the same item twice
            self._finish(Outcome.SAME_ITEM, t=t)
            return
        pieces, unit_weight, computed = self._pieces(reading, net, press.category.code)
        tare = reading.tare_mg
        if box_tare:
            tare = (tare or 0) + box_tare
        data: dict[str, Any] = {}
        if container is not None:
            data = {"container": container.code, "container_tare_mg": box_tare}
        if press.visit.profile:
            data["profile"] = press.visit.profile  # the office's reports count by it
        row = self._append(
            "weighing",
            t=t,
            visit=press.visit.id,
            beneficiary=press.visit.beneficiary,
            referrer=press.visit.referrer,
            category=press.category.code,
            operator=press.operator.code if press.operator else None,
            source="scale",
            stable=reading.stable,
            gross_mg=reading.gross_mg,
            tare_mg=tare,
            net_mg=net,
            unit=reading.unit,
            pieces=pieces,
            unit_weight_mg=unit_weight,
            pieces_computed=computed,
            scale_id=self._scale_id or cfg.protocol,
            calibration_id=self.calibration.in_force_id,
            raw=escape_frame(reading.raw),
            data=data or None,
        )
        if row is None:
            return
        self._recorded_net = reading.net_mg
        self._rearmed = False
        press.visit.items.append(Item(row["seq"], net, press.category.code))
        detail = f"{self._kg(net)} {press.category.name}"
        self._finish(Outcome.RECORDED, detail=detail, seq=row["seq"], net_mg=net, t=t)

    def _on_hold(self, t: float) -> None:
        self._touch()
        visit = self._visit
        if visit is None:
            self._finish(Outcome.NOTHING_TO_VOID, t=t)
            return
        weighings = self.store.visit_weighings(visit.id)
        if not weighings:
            self._finish(Outcome.NOTHING_TO_VOID, t=t)
            return
        target = weighings[-1]
        row = self._append(
            "void",
            t=t,
            visit=visit.id,
            beneficiary=visit.beneficiary,
            referrer=visit.referrer,
            category=target["category"],
            operator=self._operator.code if self._operator else None,
            voids=target["seq"],
            reason="button_hold",
        )
        if row is None:
            return
        visit.items = [i for i in visit.items if i.seq != target["seq"]]
        self._rearmed = True  # the usual correction is to weigh the same item again
        detail = _("{weight} (record {seq})").format(
            weight=self._kg(target["net_mg"] or 0), seq=target["seq"]
        )
        self._finish(Outcome.VOIDED, detail=detail, seq=row["seq"], t=t)

    def _on_manual(self, event: ManualEntry) -> None:
        """A technician's entry (``station manual-entry``): checked against the live config,
        written here so the journal keeps one writer; the counter's visit is left alone.
        All its records are one transaction: a failure part way records none of them."""
        from .control import Pending
        from .manual import ManualError, check, write

        if isinstance(event.reply, Pending) and not event.reply.claim():
            log.warning(_("manual entry dropped: its request timed out before the loop took it"))
            return
        try:
            resolved = check(self.config, self.codes, event.request)
        except ManualError as exc:
            event.reply({"ok": False, "kind": exc.kind, "error": str(exc)})
            return
        t = time.monotonic()
        if self._disk_full():
            if self.signaller is not None:
                self.signaller.fault(True)
            self._finish(Outcome.DISK_FULL, t=t)
            error = _("less than {n} MB free: nothing recorded").format(
                n=self.config.station.min_free_mb
            )
            event.reply({"ok": False, "kind": "store", "error": error})
            return
        try:
            done = write(
                self.store,
                event.request,
                resolved,
                boot_id=self._boot,
                clock_synced=self.clock.synced(),
            )
        except (StoreError, OSError, ValueError, OverflowError) as exc:
            log.error(_("cannot write the store: %s"), exc)
            if self.signaller is not None:
                self.signaller.fault(True)
            self._finish(Outcome.STORE_ERROR, t=t)
            error = _("the store refused the records ({error}): nothing recorded").format(error=exc)
            event.reply({"ok": False, "kind": "store", "error": error})
            return
        if done.repeat:
            log.info(
                _("manual entry %s repeated: already records %s"),
                event.request.request_id,
                done.seqs,
            )
            event.reply({"ok": True, "seqs": done.seqs, "repeat": True})
            return
        if self.signaller is not None:
            self.signaller.fault(False)
        self._last_record_at = done.recorded_at
        for hook in self.on_commit:
            hook()
        log.info(_("manual entry by %s: records %s"), event.request.technician, done.seqs)
        self._status_dirty = True
        event.reply({"ok": True, "seqs": done.seqs})

    # -- codes -------------------------------------------------------------------------------
    def _on_code(self, code: str, t: float) -> None:
        last_code, last_t = self._last_code
        self._last_code = (code, t)
        if code == last_code and t - last_t < self.config.scanner.dedupe_window:
            log.info(_("code %s read twice, second read ignored"), code)
            return
        self._touch()
        c = self.codes.classify(code)
        if c.kind is Kind.BENEFICIARY:
            if self._visit is not None and self._visit.beneficiary == c.code:
                self._finish(Outcome.VISIT_OPENED, detail=mask(c.code), t=t)
                return
            if self._close_visit("new_beneficiary"):
                self._open_visit(c, t)
        elif c.kind is Kind.CATEGORY:
            self._category = c
            self._finish(Outcome.CATEGORY_SET, detail=c.name, t=t)
        elif c.kind is Kind.END_VISIT:
            if self._visit is None:
                self._finish(Outcome.VISIT_CLOSED, detail=_("no visit was open"), t=t)
            else:
                self._close_visit("end_code", t=t)
        elif c.kind is Kind.CONTAINER:
            self._container = c
            self._finish(Outcome.CONTAINER_SET, detail=f"{c.name} ({self._kg(c.tare_mg)})", t=t)
        elif c.kind is Kind.OPERATOR:
            self._operator = c
            self._finish(Outcome.OPERATOR_SET, detail=c.name, t=t)
        elif c.kind is Kind.REFERRER:
            self._referrer = c.referrer
            if self._visit is not None:
                self._visit.referrer = c.referrer
            self._finish(Outcome.REFERRER_SET, detail=c.name or c.code, t=t)
        elif c.kind is Kind.PROFILE:
            tags = self._visit.profile if self._visit is not None else self._profile
            if c.tag not in tags:
                tags.append(c.tag)
            self._finish(Outcome.PROFILE_SET, detail=c.name, t=t)
        elif c.kind in (Kind.TARE, Kind.ZERO):
            self._container = None
            if not self._scale_ok or self.scale is None:
                self._finish(Outcome.NO_SCALE, t=t)
                return
            token = "tare" if c.kind is Kind.TARE else "zero"
            self.scale.submit(Command.TARE if token == "tare" else Command.ZERO, token)
        elif c.kind is Kind.SAMPLE:
            self._start_sample(c, t)
        elif c.kind is Kind.MISREAD:
            self._finish(Outcome.MISREAD, detail=code, t=t)
        else:
            self._finish(Outcome.UNKNOWN_CODE, detail=code, t=t)

    # -- visits ------------------------------------------------------------------------------
    def _open_visit(self, c: Classified, t: float) -> None:
        referrer = self._referrer or c.referrer  # a code scanned apart is a deliberate choice
        visit = _Visit(uuid.uuid4().hex, c.code, referrer, profile=self._profile)
        row = self._append(
            "visit_open",
            t=t,
            visit=visit.id,
            beneficiary=visit.beneficiary,
            referrer=referrer,
            operator=self._operator.code if self._operator else None,
        )
        if row is None:
            return
        self._visit = visit
        self._referrer = None
        self._profile = []
        self._touch()
        self._finish(Outcome.VISIT_OPENED, detail=mask(c.code), seq=row["seq"], t=t)

    def _cancel_press(self) -> None:
        """The visit changes under a waiting press: its item must not go to another visit."""
        press = self._press
        if press is not None:
            self._end_press()
            self._finish(Outcome.CANCELLED, t=press.t)

    def _close_visit(self, reason: str, t: float | None = None) -> bool:
        """Close the open visit; False when its record could not be written (it stays open)."""
        visit = self._visit
        if visit is None:
            self._visit_deadline = None
            return True
        self._cancel_press()
        total = sum(i.net_mg for i in visit.items)
        row_t = t if t is not None else time.monotonic()
        row = self._append(
            "visit_close",
            t=row_t,
            visit=visit.id,
            beneficiary=visit.beneficiary,
            referrer=visit.referrer,
            reason=reason,
            data={"items": len(visit.items), "net_mg": total},
        )
        if row is None:
            # storage failing: retry later, not on every loop turn
            self._visit_deadline = time.monotonic() + 30
            return False
        self._visit = None
        self._visit_deadline = None
        self._container = None
        self._referrer = None
        self._profile = []
        detail = _("{n} item(s), {weight}").format(n=len(visit.items), weight=self._kg(total))
        self._finish(Outcome.VISIT_CLOSED, detail=detail, seq=row["seq"], t=row_t)
        return True

    def _restore_visit(self) -> None:
        """After a daemon restart, carry on with the visit that was open (staff saw it open).

        Only within the same boot and the visit timeout: after a power cut or a night, the
        next person must not inherit yesterday's beneficiary."""
        row = self.store.open_visit()
        if row is None:
            return
        visit = _Visit(row["visit"], row["beneficiary"], row["referrer"])
        weighings = self.store.visit_weighings(visit.id)
        visit.items = [Item(w["seq"], w["net_mg"] or 0, w["category"] or "") for w in weighings]
        last = self.store.last_of_visit(visit.id) or row
        idle_s = (time.monotonic_ns() - (last["mono_ns"] or 0)) / 1e9
        self._visit = visit
        if last["boot_id"] != self._boot or not 0 <= idle_s < self.config.visit.timeout:
            self._close_visit("restart")
            return
        if weighings and weighings[-1]["referrer"]:
            visit.referrer = weighings[-1]["referrer"]  # a structure scanned apart mid-visit
        if weighings:
            visit.profile = _profile_of(weighings[-1]["data"])  # profiles scanned mid-visit
        self._touch()
        log.info(_("visit of %s restored after restart"), mask(visit.beneficiary))

    def _disk_full(self) -> bool:
        """Checked before every commit (a statvfs: microseconds): a store that runs out of
        space mid-transaction stays intact, but staff must hear it before it happens."""
        try:
            free = shutil.disk_usage(self.store.path.parent).free
        except OSError:
            return False
        full = free < self.config.station.min_free_mb * 1024 * 1024
        if full != self._full:
            self._full = full
            self._status_dirty = True
            if full:
                log.error(
                    _("less than %d MB free on the card: refusing new records"),
                    self.config.station.min_free_mb,
                )
        return full

    def _housekeeping(self, now: float) -> None:
        """At quiet times only: fold the WAL into the database, prune old synced records."""
        if now - self._last_activity < QUIET_S or now - self._last_housekeeping < QUIET_S:
            return
        self._last_housekeeping = now
        try:
            days = self.config.station.retention_days
            if days:
                cutoff = datetime.now(UTC) - timedelta(days=days)
                before = cutoff.isoformat(timespec="milliseconds").replace("+00:00", "Z")
                pruned = self.store.prune(before)
                if pruned:
                    log.info(_("pruned %d synced records older than %d days"), pruned, days)
            self.store.checkpoint()
        except (StoreError, OSError, sqlite3.Error) as exc:
            log.warning(_("housekeeping failed: %s"), exc)

    def _touch(self) -> None:
        if self._visit is not None:
            self._visit_deadline = time.monotonic() + self.config.visit.timeout

    # -- writing and signalling --------------------------------------------------------------
    def _append(self, kind: str, *, t: float, **fields: Any) -> dict[str, Any] | None:
        if self._disk_full():
            if self.signaller is not None:
                self.signaller.fault(True)
            self._finish(Outcome.DISK_FULL, t=t)
            return None
        try:
            row = self.store.append(
                kind,
                mono_ns=time.monotonic_ns(),
                boot_id=self._boot,
                clock_synced=self.clock.synced(),
                **fields,
            )
        except (StoreError, OSError, ValueError, OverflowError) as exc:
            log.error(_("cannot write the store: %s"), exc)
            if self.signaller is not None:
                self.signaller.fault(True)
            self._finish(Outcome.STORE_ERROR, t=t)
            return None
        if self.signaller is not None:
            self.signaller.fault(False)
        self._last_record_at = row["recorded_at"]
        for hook in self.on_commit:
            hook()
        return row

    def _finish(
        self,
        outcome: Outcome,
        *,
        detail: str = "",
        seq: int | None = None,
        net_mg: int | None = None,
        t: float = 0.0,
    ) -> None:
        result = Result(outcome, describe(outcome, detail), seq, net_mg, t, 0.0)
        if self.signaller is not None:
            try:
                self.signaller.show(outcome)
            except Exception:  # a broken LED must not lose the record that was just made
                log.exception("panel signal failed")
        result = replace(result, t_done=time.monotonic())
        self._last = result
        self._status_dirty = True
        (log.info if outcome.ok else log.warning)("%s", result.text)
        for listener in self.listeners:
            try:
                listener(result)
            except Exception:
                log.exception("listener failed")

    def _kg(self, mg: int) -> str:
        return format_mass(mg)

    # -- status ------------------------------------------------------------------------------
    def _publish(self) -> None:
        visit = self._visit
        synced = self.store.synced_through
        cat = self._category
        self.snapshot = Snapshot(
            scale_ok=self._scale_ok,
            scale_detail=self._scale_detail,
            scale_id=self._scale_id,
            scale_rejected_frames=self.scale.garbage_frames if self.scale is not None else 0,
            scanner_ok=self._scanner_ok,
            weight=self._reading,
            beneficiary=mask(visit.beneficiary) if visit else None,
            referrer=visit.referrer if visit else self._referrer,
            referrer_name=self.codes.referrer_name(visit.referrer if visit else self._referrer),
            category=cat.code if cat else None,
            category_name=cat.name if cat else "",
            operator=self._operator.name if self._operator else "",
            container=self._container.name if self._container else "",
            container_tare_mg=self._container.tare_mg if self._container else 0,
            items=tuple(visit.items) if visit else (),
            waiting=self._press is not None,
            last=self._last,
            last_seq=self.store.last_seq,
            synced_through=synced,
            backlog=self.store.last_seq - synced,
            last_record_at=self._last_record_at,
            clock_synced=self.clock.synced(),
        )
        self._write_status()

    def _write_status(self, force: bool = False) -> None:
        """Mirror the snapshot to the runtime dir (tmpfs) for ``station status``: at most once a
        second on changes, and every 5 s anyway so its age tells a live daemon from a hung one."""
        if self.status_path is None:
            return
        now = time.monotonic()
        age = now - self._status_written
        if not force and (age < 1.0 or (not self._status_dirty and age < 5.0)):
            return
        snap = self.snapshot
        data = {
            "station": self.config.station.id,
            "pid": os.getpid(),
            "written_at": time.time(),
            "scale": {
                "ok": snap.scale_ok,
                "detail": snap.scale_detail,
                "id": snap.scale_id,
                "rejected_frames": snap.scale_rejected_frames,
            },
            "scanner_ok": snap.scanner_ok,
            "visit": {
                "beneficiary": snap.beneficiary,
                "referrer": snap.referrer,
                "items": len(snap.items),
                "net_mg": snap.visit_total_mg,
            },
            "category": snap.category_name or None,
            "operator": snap.operator or None,
            "last": {
                "outcome": snap.last.outcome.value,
                "text": snap.last.text,
                "seq": snap.last.seq,
            }
            if snap.last
            else None,
            "last_seq": snap.last_seq,
            "backlog": snap.backlog,
            "clock_synced": snap.clock_synced,
        }
        for name, extra in self.status_extras.items():
            try:
                data[name] = extra()
            except Exception:  # a status block must never stop the loop
                log.exception("status block %s failed", name)
        try:
            self.status_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.status_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1))
            tmp.replace(self.status_path)
        except OSError as exc:
            log.debug("cannot write %s: %s", self.status_path, exc)
        self._status_written = now
        self._status_dirty = False
