"""MQTT topic names of wire protocol v1, under a configurable prefix (default ``pesee/v1``)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_PREFIX", "Topics"]

DEFAULT_PREFIX = "pesee/v1"


@dataclass(frozen=True, slots=True)
class Topics:
    """Every topic of the link. ``Topics("pesee/v1").records("st-1")`` is
    ``"pesee/v1/stations/st-1/records"``."""

    prefix: str = DEFAULT_PREFIX

    def records(self, station: str) -> str:
        return f"{self.prefix}/stations/{station}/records"

    def ack(self, station: str) -> str:
        return f"{self.prefix}/stations/{station}/ack"

    def status(self, station: str) -> str:
        return f"{self.prefix}/stations/{station}/status"

    def config(self, station: str) -> str:
        return f"{self.prefix}/config/{station}"

    @property
    def config_all(self) -> str:
        return f"{self.prefix}/config/all"

    @property
    def ledger_status(self) -> str:
        return f"{self.prefix}/ledger/status"

    @property
    def all_records(self) -> str:
        return f"{self.prefix}/stations/+/records"

    @property
    def all_status(self) -> str:
        return f"{self.prefix}/stations/+/status"

    def shared(self, group: str, topic_filter: str) -> str:
        """An MQTT v5 shared subscription: each message goes to one member of ``group``."""
        return f"$share/{group}/{topic_filter}"

    def station_of(self, topic: str) -> str | None:
        """The station id in ``…/stations/{id}/…``, or None when ``topic`` is not one of ours."""
        head = f"{self.prefix}/stations/"
        if not topic.startswith(head):
            return None
        parts = topic[len(head) :].split("/")
        return parts[0] if len(parts) == 2 and parts[0] else None
