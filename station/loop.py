"""The station's one owning thread: takes device events, runs the counter, writes the store.

The workflow itself is :class:`station.counter.Counter` (pure); this module is the I/O around
it: the event queue, the journal writes the counter asks for, the panel, the published
snapshot and its status file, and the housekeeping of quiet times.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from common.i18n import _
from drivers.scale import Command

from .calibration import CalibrationState, load_state
from .clock import ClockStatus, boot_id
from .codes import CodeBook
from .config import Config
from .counter import Append, Counter, Item, PieceWeight, Step, mask
from .disk import DiskGuard
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
from .status_file import Snapshot, StatusFile, status_data
from .store import Store, StoreError
from .ticket import attach_printer

__all__ = ["Item", "Snapshot", "Station", "mask"]

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
        # the calibration in force: its correction applies to every weight, its id to records
        try:
            self.calibration = load_state(config.station.data_dir)
        except ValueError as exc:
            log.error(_("calibration state unreadable, weights uncorrected: %s"), exc)
            self.calibration = CalibrationState()
        self._correction = self.calibration.applied()
        self.counter = Counter(
            config,
            piece_weights=self._piece_weights(),
            calibration_id=self.calibration.in_force_id,
            new_id=lambda: uuid.uuid4().hex,
        )
        self.disk = DiskGuard(store.path.parent, config.station.min_free_mb)
        self._status = StatusFile(status_path) if status_path is not None else None
        self._scanner_ok = True
        self._scanner_connected = False  # the scanner has reported its port open (once)
        self._last: Result | None = None
        self._last_record_at: str | None = None
        self._fault = False  # the red light held on: the journal could not be written
        self._last_activity = time.monotonic()
        self._last_housekeeping = time.monotonic()
        self._status_dirty = True
        self.tickets = attach_printer(self)  # [printer]: end-of-visit tickets, own thread
        self._restore_visit()

    @property
    def codes(self) -> CodeBook:
        return self.counter.codes

    def _piece_weights(self) -> dict[str, int]:
        try:
            return self.store.piece_weights()
        except sqlite3.Error as exc:  # a card in trouble must not keep the counter down
            log.error(_("cannot read the store: %s"), exc)
            return {}

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
        self._check_storage()
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
                self._apply(self.counter.tick(time.monotonic()))
                self._housekeeping(self.heartbeat)
                self._publish()
            except Exception:
                log.exception("internal error in the loop's housekeeping")
        if self._status is not None:
            self._status.remove()

    def _next_timer(self) -> float:
        soon = time.monotonic() + 1.0
        deadline = self.counter.next_deadline()
        return soon if deadline is None else min(soon, deadline)

    def _dispatch(self, event: Event) -> None:
        now = time.monotonic()
        counter = self.counter
        if isinstance(event, WeightRead):
            # the one place weights are corrected: record, snapshot and screen agree
            self._apply(counter.weight(self._correction.apply(event.reading), event.t))
        elif isinstance(event, ButtonPressed):
            self._apply(counter.press(event.t, now))
        elif isinstance(event, ButtonHeld):
            self._apply(counter.hold(event.t, now))
        elif isinstance(event, CodeScanned):
            self._apply(counter.code(event.code, event.t, now))
        elif isinstance(event, CodeUnreadable):
            self._apply(counter.unreadable(event.detail, event.t, now))
        elif isinstance(event, ScaleState):
            self._on_scale_state(event)
        elif isinstance(event, ScaleReplied):
            self._apply(counter.scale_reply(event.token, event.outcome))
        elif isinstance(event, Acked):
            try:
                self.store.mark_synced(event.through)
            except StoreError as exc:  # the next ack carries it again
                log.warning(_("cannot write the store: %s"), exc)
            self._status_dirty = True
        elif isinstance(event, ConfigChanged):
            config = event.config
            if self.registry is not None:
                config = self.registry.rebase(config)  # the office's lists still apply on top
            self._reconfigure(config)
        elif isinstance(event, RegistryReceived):
            if self.registry is not None:
                received = self.registry.receive(event.scope, event.payload)
                if received is not None:
                    self._reconfigure(received)
        elif isinstance(event, ManualEntry):
            self._on_manual(event)
        elif isinstance(event, ScannerState):
            self._scanner_ok = event.ok
            self._scanner_connected = self._scanner_connected or event.ok
            self._status_dirty = True
            (log.info if event.ok else log.warning)(_("scanner: %s"), event.detail)

    def _reconfigure(self, config: Config) -> None:
        self.config = config
        self.counter.reconfigure(config)
        self.disk.min_free_mb = config.station.min_free_mb
        self._status_dirty = True

    def _on_scale_state(self, event: ScaleState) -> None:
        self._scale_ok = event.ok
        self._scale_detail = event.detail
        self._status_dirty = True
        if self.signaller is not None:
            self.signaller.ready(event.ok)
        if event.ok:
            log.info(_("scale connected: %s"), event.detail)
        else:
            log.warning(_("scale unavailable: %s"), event.detail)
        self._apply(self.counter.scale_state(event.ok and self.scale is not None))

    # -- the counter's steps -------------------------------------------------------------------
    def _apply(self, step: Step) -> None:
        """Do what the counter asked, in order; a write's stored row (None: refused, and
        signalled here) goes back to the counter, which may ask for more."""
        while True:
            if step.note:
                log.info("%s", step.note)
            if self.scale is not None:
                if step.relax:
                    self.scale.relax()
                if step.poll_until is not None:
                    self.scale.poll_now(step.poll_until)
                if step.command is not None:
                    self.scale.submit(*step.command)
            if step.poll_until is not None or step.relax:
                self._status_dirty = True  # "waiting for a stable weight" changed
            for signal in step.signals:
                self._finish(
                    signal.outcome,
                    detail=signal.detail,
                    seq=signal.seq,
                    net_mg=signal.net_mg,
                    t=signal.t,
                )
            if step.write is None or step.then is None:
                return
            if isinstance(step.write, PieceWeight):
                row = self._learn(step.write)
            else:
                row = self._append(step.write)
            step = step.then(row)

    def _learn(self, learnt: PieceWeight) -> dict[str, Any] | None:
        try:
            self.store.set_piece_weight(learnt.category, learnt.mg)
        except (StoreError, OSError) as exc:
            log.error(_("cannot write the store: %s"), exc)
            self._finish(Outcome.STORE_ERROR, t=learnt.t)
            return None
        return {"category": learnt.category, "mg": learnt.mg}

    def _append(self, record: Append) -> dict[str, Any] | None:
        """Write one record the counter asked for; None (signalled) when refused."""
        if self._check_storage():
            self._finish(Outcome.DISK_FULL, t=record.t)
            return None
        try:
            row = self.store.append(
                record.kind,
                mono_ns=time.monotonic_ns(),
                boot_id=self._boot,
                clock_synced=self.clock.synced(),
                **record.fields,
            )
        except (StoreError, OSError, ValueError, OverflowError) as exc:
            log.error(_("cannot write the store: %s"), exc)
            self._set_fault(True)
            self._finish(Outcome.STORE_ERROR, t=record.t)
            return None
        self._committed(row["recorded_at"])
        return row

    def _committed(self, recorded_at: str | None) -> None:
        self._set_fault(False)
        self._last_record_at = recorded_at
        for hook in self.on_commit:
            hook()

    def _check_storage(self) -> bool:
        """True (and the red light held on) when the card is too full for a new record."""
        was = self.disk.full
        full = self.disk.check()
        if full != was:
            self._status_dirty = True
        if full:
            self._set_fault(True)
        elif was:
            self._set_fault(False)
        return full

    def _set_fault(self, on: bool) -> None:
        if on != self._fault:
            self._status_dirty = True
        self._fault = on
        if self.signaller is not None:
            try:
                self.signaller.fault(on)
            except Exception:  # a broken LED must not stop the counter
                log.exception("panel signal failed")

    def _on_manual(self, event: ManualEntry) -> None:
        """A technician's entry (``station manual-entry``): checked against the live config,
        written here so the journal keeps one writer; the counter's visit is left alone.
        All its records are one transaction: a failure part way records none of them."""
        from .control import Pending
        from .manual import enter

        if isinstance(event.reply, Pending) and not event.reply.claim():
            log.warning(_("manual entry dropped: its request timed out before the loop took it"))
            return
        done = enter(
            self.store,
            self.config,
            self.codes,
            event.request,
            disk_full=self._check_storage(),
            boot_id=self._boot,
            clock_synced=self.clock.synced(),
        )
        if done.refusal is not None:
            if done.refusal is Outcome.STORE_ERROR:
                self._set_fault(True)
            self._finish(done.refusal, t=time.monotonic())
        elif done.written is not None and not done.written.repeat:
            self._committed(done.written.recorded_at)
            self._status_dirty = True
        event.reply(done.reply)

    # -- visits across restarts ----------------------------------------------------------------
    def _restore_visit(self) -> None:
        """Carry on with the visit open before a restart, or close it (see Counter.restore)."""
        try:
            row = self.store.open_visit()
            if row is None:
                return
            weighings = self.store.visit_weighings(row["visit"])
            last = self.store.last_of_visit(row["visit"]) or row
        except sqlite3.Error as exc:
            log.error(_("cannot read the store: %s"), exc)
            return
        idle_s = (time.monotonic_ns() - (last["mono_ns"] or 0)) / 1e9
        now = time.monotonic()
        step = self.counter.restore(
            row, weighings, last, idle_s=idle_s, same_boot=last["boot_id"] == self._boot, now=now
        )
        self._apply(step)
        visit = self.counter.visit
        if visit is not None:
            log.info(_("visit of %s restored after restart"), mask(visit.beneficiary))

    # -- quiet times -------------------------------------------------------------------------
    def _housekeeping(self, now: float) -> None:
        """At quiet times only: fold the WAL into the database, prune old synced records and
        the wire bytes of acked ones."""
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
            self.store.forget_sent()  # the wire bytes of records the ledger acked
            self.store.checkpoint()
        except (StoreError, OSError, sqlite3.Error) as exc:
            log.warning(_("housekeeping failed: %s"), exc)
        self._check_storage()  # the red light goes out once the technician made room

    # -- signalling --------------------------------------------------------------------------
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

    # -- status ------------------------------------------------------------------------------
    def _publish(self) -> None:
        counter = self.counter
        visit = counter.visit
        synced = self.store.synced_through
        cat = counter.category
        referrer = visit.referrer if visit else counter.referrer
        self.snapshot = Snapshot(
            scale_ok=self._scale_ok,
            scale_detail=self._scale_detail,
            scale_id=counter.scale_id,
            scale_rejected_frames=self.scale.garbage_frames if self.scale is not None else 0,
            scanner_ok=self._scanner_ok,
            weight=counter.reading,
            beneficiary=mask(visit.beneficiary) if visit else None,
            referrer=referrer,
            referrer_name=counter.codes.referrer_name(referrer),
            category=cat.code if cat else None,
            category_name=cat.name if cat else "",
            operator=counter.operator.name if counter.operator else "",
            container=counter.container.name if counter.container else "",
            container_tare_mg=counter.container.tare_mg if counter.container else 0,
            items=tuple(visit.items) if visit else (),
            waiting=counter.waiting,
            last=self._last,
            last_seq=self.store.last_seq,
            synced_through=synced,
            backlog=self.store.last_seq - synced,
            last_record_at=self._last_record_at,
            clock_synced=self.clock.synced(),
            store_fault=self._fault,
        )
        status = self._status
        now = time.monotonic()
        if status is not None and status.due(now, self._status_dirty):
            data = status_data(self.snapshot, self.config.station.id)
            data["scanner_connected"] = self._scanner_connected
            status.write(data, now, self.status_extras)
            self._status_dirty = False
