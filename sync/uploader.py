"""The station's uploader: drains the SQLite outbox in batches, done only when the ledger acks."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from common.service import ServiceThread

from .record import Record, RecordError, check_row
from .wire import MAX_BATCH_BYTES, Ack, WireError, decode_ack, encode_parts

__all__ = ["Outbox", "Uploader", "UploaderState", "WireOutbox"]

log = logging.getLogger(__name__)


class Outbox(Protocol):
    """Read side of the station journal (the store's outbox object), used from the uploader's
    own thread. ``read`` gives journal rows in seq order (dicts, best without their null
    columns, or Records): the uploader checks each one with :func:`sync.record.check_row`
    (every rule of a Record but its hash, which the store computed when it sealed the row and
    the ledger verifies) before it goes on the wire."""

    station: str
    epoch: str

    def last_seq(self) -> int: ...

    def read(self, after: int, limit: int) -> Sequence[Mapping[str, Any]]: ...


# one record to send: its seq and either the bytes a batch carries for it, as the station
# journal keeps them since it was sealed, or the row itself (checked, then encoded here)
Part = tuple[int, bytes | Mapping[str, Any]]


class WireOutbox(Outbox, Protocol):
    """An outbox that also gives each record's wire bytes (the station journal's wire table):
    ``read_wire`` gives (seq, bytes) per record, or (seq, row) for a row that has no bytes
    (written before the journal kept them), which is checked and encoded as ``read``'s rows
    are. The bytes are sent as they are, not checked again: the store computed them when it
    sealed the record, ``station db verify`` checks them, and the ledger verifies every hash.
    The uploader uses ``read_wire`` when the outbox has it, else ``read``."""

    def read_wire(self, after: int, limit: int) -> Sequence[Part]: ...


class Publisher(Protocol):
    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> bool: ...


@dataclass(frozen=True, slots=True)
class UploaderState:
    connected: bool
    acked_through: int
    sent_through: int
    last_seq: int
    last_sync: str | None
    batches_sent: int
    resends: int
    # a journal row that is not a valid record (seq and reason): sending stops before it
    refused: str = ""

    @property
    def backlog(self) -> int:
        return max(0, self.last_seq - self.acked_through)


class Uploader:
    """Sends records ``acked_through+1 …`` as soon as they exist, ``window`` batches ahead.

    A record counts as synced only when a ledger ack for this epoch covers it (a PUBACK only
    proves the broker has it in memory); ``on_acked(through)`` then tells the station, which
    moves its ``synced_through``. After a reconnect, a stalled ack (``resend_after`` seconds
    without progress) or a gap reported by the ledger, it sends again from the ack point: the
    ledger ingests idempotently, so a resend costs bandwidth, never a duplicate.
    """

    def __init__(
        self,
        outbox: Outbox,
        publisher: Publisher,
        topic: str,
        *,
        acked_through: int,
        on_acked: Callable[[int], None],
        max_records: int = 500,
        max_bytes: int = MAX_BATCH_BYTES - 4096,
        window: int = 8,
        resend_after: float = 15.0,
        gap_grace: float = 1.0,
        key: bytes = b"",
    ) -> None:
        self.outbox = outbox
        self.publisher = publisher
        self.topic = topic
        self.on_acked = on_acked
        self.max_records = max_records
        self.max_bytes = max_bytes
        self.window = window
        self.resend_after = resend_after
        self.gap_grace = gap_grace
        self.key = key
        read_wire = getattr(outbox, "read_wire", None)
        self._read_wire: Callable[[int, int], Sequence[Part]] | None = read_wire
        self._acked = acked_through
        self._sent = acked_through
        self._inflight: list[int] = []  # last seq of each batch not yet acked
        self._connected = False
        self._progress = time.monotonic()
        self._gap_since: float | None = None
        self._last_seq = 0
        self._last_sync: str | None = None
        self._batches = 0
        self._resends = 0
        self._refused = ""
        self._bytes_per_record = 400.0  # a weighing is 300-500 bytes of JSON
        self._inbox: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._service = ServiceThread("uploader", self._run, wake=self._wake.set)
        self._stop = self._service.stopping
        self.heartbeat = time.monotonic()

    # -- inputs (any thread, never block) ----------------------------------------------------
    def notify(self) -> None:
        """New records were committed: send them now."""
        self._wake.set()

    def connected(self, up: bool) -> None:
        self._inbox.put(("link", up))
        self._wake.set()

    def ack(self, payload: bytes) -> None:
        self._inbox.put(("ack", payload))
        self._wake.set()

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        self._service.start()

    def stop(self, timeout: float = 3.0) -> None:
        self._service.stop(timeout)

    @property
    def alive(self) -> bool:
        return self._service.running

    def state(self) -> UploaderState:
        return UploaderState(
            self._connected,
            self._acked,
            self._sent,
            self._last_seq,
            self._last_sync,
            self._batches,
            self._resends,
            self._refused,
        )

    # -- the thread -------------------------------------------------------------------------
    def _run(self, stop: threading.Event) -> None:
        self._stop = stop
        while not self._stop.is_set():
            self._wake.wait(0.5)
            self._wake.clear()
            self.heartbeat = time.monotonic()
            try:
                self._handle_inbox()
                self._check_stall()
                self._send()
            except Exception:  # a bug must not stop the sync for good: log, retry next turn
                log.exception("uploader failed; retrying")
                self._stop.wait(1.0)

    def _handle_inbox(self) -> None:
        while True:
            try:
                kind, value = self._inbox.get_nowait()
            except queue.Empty:
                return
            if kind == "link":
                self._connected = bool(value)
                # after a reconnect, start again from what the ledger has committed
                self._rewind("reconnected" if value else "")
            else:
                self._on_ack(value)

    def _on_ack(self, payload: bytes) -> None:
        try:
            ack = decode_ack(payload)
        except WireError as exc:
            log.warning("ignored a malformed ack: %s", exc)
            return
        if ack.station != self.outbox.station or ack.epoch != self.outbox.epoch:
            return  # another store's ack (an old epoch): not ours to apply
        self._apply(ack)

    def _apply(self, ack: Ack) -> None:
        now = time.monotonic()
        for reject in ack.rejects:
            log.error("the ledger rejected records: %s", reject)
        through = min(ack.acked_through, max(self._last_seq, self.outbox.last_seq()))
        if through > self._acked:
            self._acked = through
            self._progress = now
            self._last_sync = datetime.now(UTC).isoformat(timespec="seconds")
            self._inflight = [s for s in self._inflight if s > through]
            self.on_acked(through)
        if through > self._sent:
            self._sent = through  # a retained ack from before a restart: already done
        if ack.received_through > ack.acked_through and self._sent > ack.acked_through:
            self._gap_since = self._gap_since or now
        else:
            self._gap_since = None

    def _check_stall(self) -> None:
        now = time.monotonic()
        if self._gap_since is not None and now - self._gap_since >= self.gap_grace:
            self._rewind("the ledger has a gap")
        elif self._inflight and now - self._progress >= self.resend_after:
            self._rewind(f"no ack for {self.resend_after:.0f} s")

    def _rewind(self, why: str) -> None:
        if why and self._sent > self._acked:
            log.info("resending from seq %d: %s", self._acked + 1, why)
            self._resends += 1
        self._sent = self._acked
        self._inflight.clear()
        self._gap_since = None
        self._progress = time.monotonic()

    def _send(self) -> None:
        if not self._connected:
            return
        self._last_seq = self.outbox.last_seq()
        while len(self._inflight) < self.window and self._sent < self._last_seq:
            # read what fits the byte limit, judged by the last batch: reading and encoding
            # records that are then cut off to fit would cost the CPU twice
            fit = int(self.max_bytes * 0.95 / self._bytes_per_record)
            parts = self._checked(self._read(self._sent, max(1, min(self.max_records, fit))))
            if not parts:
                return
            payload, last = self._encode(parts)
            if not self.publisher.publish(self.topic, payload, qos=1):
                return  # not connected after all: the next connect rewinds anyway
            if not self._inflight:
                self._progress = time.monotonic()
            self._inflight.append(last)
            self._sent = last
            self._batches += 1

    def _read(self, after: int, limit: int) -> Sequence[Part]:
        if self._read_wire is not None:
            return self._read_wire(after, limit)
        return [(int(row["seq"]), row) for row in self.outbox.read(after, limit)]

    def _checked(self, parts: Sequence[Part]) -> Sequence[Part]:
        """The records up to the first row that is not a valid record: that one would be
        quarantined by the ledger with every record of its batch, so it is not sent, and the
        station's log says why (once); the records before it still are. Nothing is hashed
        again: the store sealed each record (Record.seal) and the ledger verifies every hash;
        wire bytes and Records are not checked again either (the store made them from a valid
        Record)."""
        for i, (_seq, row) in enumerate(parts):
            if isinstance(row, bytes) or type(row) is Record:
                continue
            try:
                check_row(row)
            except RecordError as exc:
                refused = f"seq {row.get('seq')}: {exc.reason}"
                if refused != self._refused:
                    log.error("the journal cannot be sent from %s", refused)
                    self._refused = refused
                return parts[:i]
        self._refused = ""
        return parts

    def _encode(self, parts: Sequence[Part]) -> tuple[bytes, int]:
        """The batch of the first records that fit ``max_bytes`` (each encoded once, or sent
        as the journal keeps it) and its last seq."""
        sent_at = datetime.now(UTC).isoformat(timespec="milliseconds")
        payload, n = encode_parts(
            self.outbox.station,
            self.outbox.epoch,
            parts,
            sent_at=sent_at,
            key=self.key,
            max_bytes=self.max_bytes,
        )
        self._bytes_per_record = max(1.0, len(payload) / n)
        return payload, parts[n - 1][0]
