"""The station's end of the link: MQTT connection, uploader, retained status with Last Will."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace

from common.service import ServiceThread

from .client import MqttLink, MqttSettings, Will
from .topics import Topics
from .uploader import Outbox, Uploader
from .wire import StationStatus, encode

__all__ = ["StationLink"]

log = logging.getLogger(__name__)


class StationLink:
    """Everything a station says and hears on the broker.

    - records: the :class:`~sync.uploader.Uploader`, fed by ``notify()`` after each commit;
    - acks: handed to the uploader, which calls ``on_acked(through)``;
    - registry pushes (``config/all`` and ``config/{station}``): ``on_registry(topic, payload)``;
    - status: retained, published at connect (birth), on changes of the backlog and every
      ``status_every`` seconds; the Last Will says offline with the same ``session``.

    ``status()`` is called on the link's threads; it must read an immutable snapshot only.
    """

    def __init__(
        self,
        settings: MqttSettings,
        topics: Topics,
        outbox: Outbox,
        *,
        acked_through: int,
        on_acked: Callable[[int], None],
        on_registry: Callable[[str, bytes], None],
        status: Callable[[], StationStatus],
        max_records: int = 500,
        max_bytes: int = 200_000,
        window: int = 8,
        resend_after: float = 15.0,
        status_every: float = 60.0,
        key: bytes = b"",
    ) -> None:
        self.topics = topics
        self.station = outbox.station
        self._status = status
        self._status_every = status_every
        self._on_registry = on_registry
        offline = replace(status(), online=False)
        self.link = MqttLink(
            settings,
            subscriptions=[
                (topics.ack(self.station), 1),
                (topics.config_all, 1),
                (topics.config(self.station), 1),
            ],
            will=Will(topics.status(self.station), encode(offline)),
            on_connect=self._connected,
            on_message=self._message,
            birth=lambda: [(topics.status(self.station), self._status_payload(), True)],
        )
        self.uploader = Uploader(
            outbox,
            self.link,
            topics.records(self.station),
            acked_through=acked_through,
            on_acked=self._acked,
            max_records=max_records,
            max_bytes=max_bytes,
            window=window,
            resend_after=resend_after,
            key=key,
        )
        self._on_acked = on_acked
        self._dirty = threading.Event()
        self._service = ServiceThread("status", self._statuses, wake=self._dirty.set)
        self._stop = self._service.stopping

    def _status_payload(self, online: bool = True) -> bytes:
        status = self._status()
        state = self.uploader.state() if hasattr(self, "uploader") else None
        if state is not None:
            status = replace(
                status,
                online=online,
                synced_through=max(status.synced_through, state.acked_through),
                backlog=max(0, status.last_seq - max(status.synced_through, state.acked_through)),
                last_sync=state.last_sync or status.last_sync,
            )
        return encode(replace(status, online=online))

    # -- inputs ---------------------------------------------------------------------------------
    def notify(self) -> None:
        self.uploader.notify()
        self._dirty.set()

    def _connected(self, up: bool) -> None:
        self.uploader.connected(up)

    def _message(self, topic: str, payload: bytes, retained: bool) -> None:
        if topic == self.topics.ack(self.station):
            self.uploader.ack(payload)
        elif topic in (self.topics.config_all, self.topics.config(self.station)):
            self._on_registry(topic, payload)

    def _acked(self, through: int) -> None:
        self._on_acked(through)
        self._dirty.set()

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        self.uploader.start()
        self.link.start()
        self._service.start()

    def stop(self) -> None:
        self._service.stop(3)
        self.uploader.stop()
        # a clean disconnect suppresses the Will: say offline ourselves
        self.link.stop([(self.topics.status(self.station), self._status_payload(False), True)])

    def _statuses(self, stop: threading.Event) -> None:
        self._stop = stop
        last = 0.0
        while not self._stop.is_set():
            self._dirty.wait(self._status_every)
            if self._stop.is_set():
                return
            # changes are coalesced: at most one status every 2 s
            wait = 2.0 - (time.monotonic() - last)
            if wait > 0 and self._stop.wait(wait):
                return
            self._dirty.clear()
            if self.link.connected.is_set():
                self.link.publish(
                    self.topics.status(self.station), self._status_payload(), qos=1, retain=True
                )
                last = time.monotonic()
