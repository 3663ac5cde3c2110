"""A small paho-mqtt 2.x wrapper: MQTT v5, TLS, credentials, Last Will, jittered reconnect."""

from __future__ import annotations

import contextlib
import logging
import random
import socket
import ssl
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

__all__ = ["MqttLink", "MqttSettings", "Will"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MqttSettings:
    """Where and how to connect. ``password`` comes from the environment in real configs.

    ``client_id`` defaults to ``username``: the shipped broker sets
    ``use_username_as_clientid`` (systemd/mosquitto/pesee.conf), so a client's id is its login
    and one set of credentials can never take over (disconnect) another's connection.
    ``session_expiry`` > 0 asks for a persistent session: the broker keeps the subscriptions
    and queues QoS 1 messages for that many seconds while the client is away (the ledger);
    0 starts clean every time (the stations: their journal is their state).
    """

    host: str = "127.0.0.1"
    port: int = 1883
    client_id: str = ""
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    keepalive: int = 30
    reconnect_min: float = 1.0
    reconnect_max: float = 60.0
    max_inflight: int = 20
    session_expiry: int = 0

    @property
    def identity(self) -> str:
        """The client id sent: ``client_id``, else the username, else "" (the broker picks)."""
        return self.client_id or self.username or ""


@dataclass(frozen=True, slots=True)
class Will:
    topic: str
    payload: bytes
    retain: bool = True
    qos: int = 1


class MqttLink:
    """One MQTT v5 connection run by paho's network thread.

    ``on_connect(connected)`` and ``on_message(topic, payload, retained)`` run on that thread:
    they must only hand work over (a queue) and return. Subscriptions are made again on every
    connect, and ``birth`` messages (e.g. the retained "online" status) are published there too,
    so both survive reconnects.
    """

    def __init__(
        self,
        settings: MqttSettings,
        *,
        subscriptions: Sequence[tuple[str, int]] = (),
        will: Will | None = None,
        on_connect: Callable[[bool], None] | None = None,
        on_message: Callable[[str, bytes, bool], None] | None = None,
        birth: Callable[[], Sequence[tuple[str, bytes, bool]]] | None = None,
    ) -> None:
        self.settings = settings
        self.connected = threading.Event()
        # set once the broker has granted every subscription of the current connection: from
        # then on, what is published on those topics reaches us (tests and readiness wait on it)
        self.subscribed = threading.Event()
        self._pending_subs: set[int] = set()
        self._subs = list(subscriptions)
        self._on_connect = on_connect
        self._on_message = on_message
        self._birth = birth
        self.failures: list[str] = []  # PUBACK/SUBACK refusals, for diagnostics
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=settings.identity,
            protocol=mqtt.MQTTv5,
        )
        if settings.username is not None:
            client.username_pw_set(settings.username, settings.password)
        if settings.tls:
            client.tls_set(
                ca_certs=settings.ca_file,
                certfile=settings.cert_file,
                keyfile=settings.key_file,
                cert_reqs=ssl.CERT_REQUIRED,
            )
        if will is not None:
            client.will_set(will.topic, will.payload, qos=will.qos, retain=will.retain)
        # no jitter in paho: stations would reconnect in lock-step after a broker restart
        client.reconnect_delay_set(
            min_delay=max(1, round(settings.reconnect_min * random.uniform(1.0, 3.0))),
            max_delay=max(2, int(settings.reconnect_max)),
        )
        client.max_inflight_messages_set(settings.max_inflight)
        client.on_connect = self._connected
        client.on_disconnect = self._disconnected
        client.on_message = self._message
        client.on_publish = self._published
        client.on_subscribe = self._subscribed
        client.on_socket_open = self._socket_open
        self.client = client
        self._started = False
        self._stopping = False

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        """Connect in the background (the broker may be down at boot) and keep reconnecting."""
        if self._started:
            return
        self._started = True
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        # 0: state lives in our databases, not in the broker; > 0: the broker queues for us
        props.SessionExpiryInterval = self.settings.session_expiry
        self.client.connect_async(
            self.settings.host,
            self.settings.port,
            keepalive=self.settings.keepalive,
            # a persistent session is resumed on every (re)connect, never wiped by our own
            clean_start=self.settings.session_expiry == 0,
            properties=props,
        )
        self.client.loop_start()

    def stop(
        self, last_words: Sequence[tuple[str, bytes, bool]] = (), timeout: float = 2.0
    ) -> None:
        """Publish ``last_words`` (a clean disconnect suppresses the Will), then disconnect."""
        if not self._started:
            return
        self._stopping = True
        if self.connected.is_set():
            infos = [self.client.publish(t, p, qos=1, retain=r) for t, p, r in last_words]
            for info in infos:
                try:
                    info.wait_for_publish(timeout)
                except (RuntimeError, ValueError):
                    break
        self.client.disconnect()
        self.client.loop_stop()
        self._started = False
        self._stopping = False
        self.connected.clear()

    # -- publishing (any thread) ------------------------------------------------------------
    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> bool:
        """Queue a message; False when not connected (the caller keeps it and sends it later)."""
        if not self.connected.is_set():
            return False
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        return info.rc == mqtt.MQTT_ERR_SUCCESS

    # -- paho callbacks (network thread) ----------------------------------------------------
    def _socket_open(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        with contextlib.suppress(OSError, AttributeError):  # unix sockets have no Nagle
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _connected(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if reason.is_failure:
            log.warning("MQTT connection refused by %s: %s", self.settings.host, reason)
            self.failures.append(f"connect: {reason}")
            return
        self.subscribed.clear()
        pending = set()
        for topic, qos in self._subs:
            _rc, mid = client.subscribe(topic, qos=qos)
            if mid is not None:
                pending.add(mid)
        self._pending_subs = pending
        if not pending:
            self.subscribed.set()
        if self._birth is not None:
            for topic, payload, retain in self._birth():
                client.publish(topic, payload, qos=1, retain=retain)
        self.connected.set()
        log.info("MQTT connected to %s:%d", self.settings.host, self.settings.port)
        if self._on_connect is not None:
            self._on_connect(True)

    def _disconnected(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        was = self.connected.is_set()
        self.connected.clear()
        self.subscribed.clear()
        if was:
            # our own clean stop is not news; a broker going away is
            (log.info if self._stopping else log.warning)("MQTT disconnected: %s", reason)
            if self._on_connect is not None:
                self._on_connect(False)

    def _message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if self._on_message is not None:
            self._on_message(msg.topic, bytes(msg.payload), bool(msg.retain))

    def _published(
        self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, props: Any
    ) -> None:
        if reason.is_failure:  # paho marks it published anyway: say it, the ack never comes
            log.warning("MQTT publish %d refused by the broker: %s", mid, reason)
            self.failures.append(f"publish: {reason}")

    def _subscribed(
        self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any, props: Any
    ) -> None:
        for reason in reasons:
            if reason.is_failure:
                log.warning("MQTT subscription refused: %s", reason)
                self.failures.append(f"subscribe: {reason}")
        self._pending_subs.discard(mid)
        if not self._pending_subs:
            self.subscribed.set()
