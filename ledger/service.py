"""``ledger run``: take batches from the broker, store each once in one transaction, then ack."""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from common.i18n import _
from common.service import ServiceThread
from common.text import visible
from sync.client import MqttLink, Will
from sync.wire import (
    Ack,
    Batch,
    BatchRows,
    LedgerStatus,
    Registry,
    WireError,
    decode_batch,
    decode_status,
    encode,
)

from .config import LedgerConfig
from .decoder import MAX_REASON_CHARS, DecoderGone, DecoderProcess
from .store import Incoming, IngestResult, LedgerStore, StoreUnavailable
from .store.conflicts import QuarantineCap, station_of_topic

__all__ = ["LedgerService", "Message"]

log = logging.getLogger("ledger")

GROUP_COMMIT = 32  # batches stored in one transaction when they are already waiting


@dataclass(frozen=True, slots=True)
class Message:
    """One MQTT message as paho delivered it: its bytes are what a quarantine keeps."""

    topic: str
    payload: bytes
    retained: bool


@dataclass(frozen=True, slots=True)
class _Decoded:
    """A records message after the decode stage: its batch, or why it is refused."""

    message: Message
    batch: Batch | BatchRows | None
    refusal: str = ""


# queued by paho's thread at every connect: the worker publishes the registries
_REGISTRIES = Message("", b"", False)


def _ts() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class LedgerService:
    """One ledger process. paho's thread only queues messages; a decode thread checks each
    batch (JSON, every record's rules and hash, the chain, the signature) and hands it on;
    one worker thread stores and acks them in order, so the store has a single writer. The
    two stages overlap: the next batches are decoded while SQLite inserts and syncs the
    current ones (``sqlite3`` releases the GIL there).

    Batches come through a plain subscription to ``…/stations/+/records``, or with several
    processes through the shared subscription ``$share/{group}/…/records`` of a secret group:
    the broker gives each batch to one of them, and ingest does not rely on order. The
    session is persistent (``[mqtt] session_expiry``): the broker queues batches for a ledger
    that is stopped, and gives them to it when it comes back.
    """

    def __init__(self, config: LedgerConfig, store: LedgerStore, *, client_id: str = "") -> None:
        self.config = config
        self.store = store
        self.topics = config.topics
        # paho -> decode thread -> ingest thread; each stage passes on, in order, what it
        # does not handle itself
        self._inbox: queue.SimpleQueue[Message | None] = queue.SimpleQueue()
        self._queue: queue.SimpleQueue[Message | _Decoded | None] = queue.SimpleQueue()
        offline = encode(LedgerStatus(False, _ts()))
        self.link = MqttLink(
            config.mqtt_settings(client_id or config.client_identity, persistent=True),
            subscriptions=[
                (self.records_filter(config), 1),
                # retained statuses are not sent to shared subscriptions: subscribe normally
                (self.topics.all_status, 1),
            ],
            will=Will(self.topics.ledger_status, offline),
            on_message=lambda t, p, r: self._inbox.put(Message(t, p, r)),
            # the registries are read and published by the worker (the store is its own)
            on_connect=lambda up: self._inbox.put(_REGISTRIES) if up else None,
            birth=lambda: [(self.topics.ledger_status, encode(LedgerStatus(True, _ts())), True)],
        )
        self._registries: dict[str, Registry] = {}
        # stopped by a None in the queue, after what was queued before it: nothing received is
        # left unstored
        self._decoder = ServiceThread("decode", self._decode_stage, wake=self._end_decoding)
        # the checks of the decode stage, in a process of its own (ledger/decoder.py)
        self.checker = DecoderProcess(config.ledger.max_batch_bytes)
        self._service = ServiceThread("ingest", self._work, wake=lambda: self._queue.put(None))
        self._cap = QuarantineCap(
            config.ledger.quarantine_max_messages, config.ledger.quarantine_max_bytes
        )
        self._flooding: set[str] = set()  # stations over their cap, said once in the log
        self._beats = [time.monotonic(), time.monotonic()]  # ingest, decode
        # when batches were last stored (monotonic; 0: none yet; inf: being stored now): the
        # month digests are built in a lull (ledger/digest_keeper.py)
        self.last_batch_at = 0.0
        self.batches = 0
        self.quarantined = 0
        self.conflicts = 0

    @staticmethod
    def records_filter(config: LedgerConfig) -> str:
        """Where the batches come from: a plain subscription for one ledger; with several
        workers, the shared subscription of the secret ``[ledger] group`` (a station that
        knew the name could join the group and be handed other stations' batches)."""
        topics = config.topics
        group = config.ledger.group
        return topics.shared(group, topics.all_records) if group else topics.all_records

    def _publish_registries(self) -> None:
        """At every (re)connect: the registries in force, retained. Read from the store each
        time, so a registry imported while this ledger ran (``ledger registry import``) is
        the one published again after a broker restart, never an older copy."""
        try:
            self._registries.update(self.store.registries())
        except Exception:  # the broker's retained copy stays; the next connect tries again
            log.exception("could not read the registries to publish them")
        for scope, registry in self._registries.items():
            topic = self.topics.config_all if scope == "all" else self.topics.config(scope)
            self.link.publish(topic, encode(registry), qos=1, retain=True)

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        try:
            self.checker.start()
        except OSError as exc:  # the checks then run on the decode thread, as they can
            log.warning("no decode process (%s): batches are checked on a thread", exc)
        self._service.start()
        self._decoder.start()
        self.link.start()

    def stop(self) -> None:
        self.link.stop([(self.topics.ledger_status, encode(LedgerStatus(False, _ts())), True)])
        # the decode stage ends after what paho queued, then the worker after what it was
        # handed: nothing received is left unstored
        self._decoder.stop(10)
        self.checker.stop()
        self._service.stop(10)

    def _end_decoding(self) -> None:
        self._inbox.put(None)

    def publish_registry(self, registry: Registry, station: str = "all") -> None:
        self._registries[station] = registry
        topic = self.topics.config_all if station == "all" else self.topics.config(station)
        self.link.publish(topic, encode(registry), qos=1, retain=True)

    # -- the worker -------------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        return self._service.running and self._decoder.running

    @property
    def heartbeat(self) -> float:
        """When the later stage to wake last did (the watchdog's freshness)."""
        return min(self._beats)

    def _decode_stage(self, _stop: threading.Event) -> None:
        while True:
            try:  # wake every second even when idle: the watchdog reads the heartbeat
                message = self._inbox.get(timeout=1.0)
            except queue.Empty:
                self._beats[1] = time.monotonic()
                continue
            self._beats[1] = time.monotonic()
            if message is None:  # the worker's own stop comes after what is queued here
                return
            try:
                self._queue.put(self._decoded(message))
            except Exception:  # never expected: the worker quarantines it as before
                log.exception("failed to decode a message on %s", message.topic)
                self._queue.put(_Decoded(message, None, "internal error"))

    def summary(self) -> str:
        """One line for ``systemctl status``."""
        broker = _("connected") if self.link.connected.is_set() else _("broker unreachable")
        return _("{broker}, {batches} batches, {q} quarantined, {c} conflicts").format(
            broker=broker, batches=self.batches, q=self.quarantined, c=self.conflicts
        )

    def _work(self, _stop: threading.Event) -> None:
        while True:
            try:  # wake every second even when idle: the watchdog reads the heartbeat
                item = self._queue.get(timeout=1.0)
            except queue.Empty:
                self._beats[0] = time.monotonic()
                continue
            self._beats[0] = time.monotonic()
            if item is None:
                return
            if item is _REGISTRIES:
                self._publish_registries()
                continue
            # what is already queued goes into the same transaction: one fsync for many batches
            items = [item]
            while len(items) < GROUP_COMMIT:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None or more is _REGISTRIES:
                    self._queue.put(more)
                    break
                items.append(more)
            self._store_group(items)

    def _decoded(self, message: Message) -> Message | _Decoded:
        """A records message decoded (its batch or its refusal); any other message as is."""
        station = self.topics.station_of(message.topic)
        if station is None or message.topic != self.topics.records(station):
            return message
        key = self.config.key_for(station)
        if key is None and self.config.signing.required:
            return _Decoded(message, None, "unsigned batch and signing is required")
        judged = self._judged_apart(message, station, key)
        if judged is not None:
            return judged
        try:
            batch = decode_batch(
                message.payload,
                topic_station=station,
                key=key,
                max_bytes=self.config.ledger.max_batch_bytes,
            )
        except WireError as exc:  # cut as the decode process cuts it: one reason either way
            return _Decoded(message, None, exc.reason[:MAX_REASON_CHARS])
        return _Decoded(message, batch)

    def _judged_apart(self, message: Message, station: str, key: bytes | None) -> _Decoded | None:
        """The decode process's verdict on a batch, or None when it cannot give one (then the
        caller decodes it: the child only saves time)."""
        # an oversized payload is refused by the caller at once, without going through the pipe
        if not self.checker.wanted or len(message.payload) > self.config.ledger.max_batch_bytes:
            return None
        try:
            verdict = self.checker.judge(message.payload, station, key)
        except DecoderGone:
            return None
        if isinstance(verdict, str):
            return _Decoded(message, None, verdict)
        return _Decoded(message, verdict)

    def handle_group(self, messages: list[Message]) -> None:
        """One step of both stages: the batches among ``messages`` decoded, then stored in one
        transaction (public so tests and tools can feed the real path directly)."""
        items: list[Message | _Decoded] = []
        for m in messages:
            try:
                items.append(self._decoded(m))
            except Exception:  # one bad message must never stop the ledger for the others
                log.exception("failed to decode a message on %s", m.topic)
                items.append(_Decoded(m, None, "internal error"))
        self._store_group(items)

    def _store_group(self, items: list[Message | _Decoded]) -> None:
        """The worker's step: the decoded batches among ``items`` stored in one transaction,
        refusals quarantined, other messages handled, in order."""
        # each decoded batch keeps the message it came in: a batch the store cannot take is
        # quarantined with the exact bytes received, never a re-encoded copy
        batches: list[tuple[Message, Incoming]] = []
        for item in items:
            m = item.message if isinstance(item, _Decoded) else item
            try:
                if not isinstance(item, _Decoded):
                    self.handle(m.topic, m.payload, m.retained)
                elif item.batch is not None:
                    batches.append((m, item.batch))
                else:
                    self._quarantine(m.topic, m.payload, item.refusal)
            except StoreUnavailable:
                # the database failed, not the message: nothing to quarantine (a status comes
                # again, a batch is sent again by its station when no ack comes)
                log.exception("database unavailable; message on %s not stored", m.topic)
            except Exception:  # one bad message must never stop the ledger for the others
                log.exception("failed to handle a message on %s", m.topic)
                self._quarantine(m.topic, m.payload, "internal error")
        if not batches:
            return
        self.last_batch_at = math.inf  # being stored: no lull for the digest keeper
        try:
            self._store_batches(batches)
        finally:
            self.last_batch_at = time.monotonic()

    def _store_batches(self, batches: list[tuple[Message, Incoming]]) -> None:
        """The group's decoded batches in one transaction, then one ack per head; one by one
        when the group fails (never all lost for one bad batch)."""
        try:
            results = self.store.ingest_many([b for _, b in batches])
        except StoreUnavailable:
            # no ack: the stations resend these batches (quarantine is for bad payloads)
            log.exception("database unavailable; %d batch(es) left unacked", len(batches))
            return
        except Exception:
            # a bad batch must not sink the others: store them one by one
            log.exception("group commit failed; storing batches one by one")
            for m, batch in batches:
                try:
                    self._store(batch)
                except StoreUnavailable:
                    log.exception("database unavailable; batch on %s left unacked", m.topic)
                    return
                except Exception:
                    log.exception("failed to store a batch on %s", m.topic)
                    self._quarantine(m.topic, m.payload, "internal error")
            return
        # one ack per head for the group: acks are cumulative, so the head's last result says
        # what its earlier ones did (their conflicts joined), in one retained message
        last: dict[tuple[str, str], IngestResult] = {}
        said: dict[tuple[str, str], list[str]] = {}
        for result in results:
            key = (result.station, result.epoch)
            last[key] = result
            joined = said.setdefault(key, [])
            joined += [c for c in result.conflicts if c not in joined]  # a copy sent twice
        self.batches += len(results) - len(last)
        for key, result in last.items():
            self._acknowledge(replace(result, conflicts=tuple(said[key])))

    def handle(self, topic: str, payload: bytes, retained: bool = False) -> None:
        """Process one message (public so tests and tools can feed the real path directly)."""
        station = self.topics.station_of(topic)
        if station is None:
            self._quarantine(topic, payload, "unexpected topic")
        elif topic == self.topics.records(station):
            self._batch(station, topic, payload)
        elif topic == self.topics.status(station):
            self._status(topic, payload, retained)

    def _batch(self, station: str, topic: str, payload: bytes) -> None:
        batch = self._decode(station, topic, payload)
        if batch is not None:
            self._store(batch)

    def _decode(self, station: str, topic: str, payload: bytes) -> Incoming | None:
        item = self._decoded(Message(topic, payload, False))
        assert isinstance(item, _Decoded)  # a records topic, as the caller checked
        if item.batch is None:
            self._quarantine(topic, payload, item.refusal)
        return item.batch

    def _store(self, batch: Incoming) -> None:
        self._acknowledge(self.store.ingest(batch))

    def _acknowledge(self, result: IngestResult) -> None:
        self.batches += 1
        if result.conflicts:
            self.conflicts += len(result.conflicts)
            for conflict in result.conflicts:
                log.error(
                    "CONFLICT station %s epoch %s: %s", result.station, result.epoch, conflict
                )
        rejects = tuple({"reason": c} for c in result.conflicts)
        ack = Ack(
            result.station,
            result.epoch,
            result.acked_through,
            rejects,
            _ts(),
            result.received_through,
        )
        # only now, after the commit: the retained ack is the station's proof
        self.link.publish(self.topics.ack(result.station), encode(ack), qos=1, retain=True)

    def _status(self, topic: str, payload: bytes, retained: bool) -> None:
        try:
            status = decode_status(payload)
        except WireError as exc:
            self._quarantine(topic, payload, f"status: {exc.reason}")
            return
        if status.station != self.topics.station_of(topic):
            self._quarantine(topic, payload, "status: station differs from its topic")
            return
        self.store.update_status(status, retained)

    def _quarantine(self, topic: str, payload: bytes, reason: str) -> None:
        self.quarantined += 1
        try:
            kept = self.store.quarantine(topic, payload, reason, self._cap)
        except Exception:  # the ingest thread must outlive a failing database
            log.exception("could not keep the quarantined message on %s", topic)
            return
        station = station_of_topic(topic)
        if kept:
            self._flooding.discard(station)
            log.warning("quarantined a message on %s: %s", visible(topic), reason)
        elif station not in self._flooding:  # one line per flood, not one per message
            self._flooding.add(station)
            log.error(
                "quarantine of station %s full: further refused messages are counted, not "
                "kept (ledger stations, ledger quarantine purge)",
                visible(station),
            )
