"""The uploader's view of the station journal: the store's read-only reader, seen as an Outbox."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .store import Store

__all__ = ["JournalOutbox"]


class JournalOutbox:
    """Implements :class:`sync.uploader.Outbox` over :meth:`Store.reader`: its own read-only
    connection, opened on the uploader's thread, so the loop thread stays the only writer."""

    def __init__(self, path: Path, station: str, epoch: str) -> None:
        self.station = station
        self.epoch = epoch
        self._reader = Store.reader(path)

    def last_seq(self) -> int:
        return self._reader.last_seq

    def read(self, after: int, limit: int) -> list[dict[str, Any]]:
        """Records after ``after``, as compact dicts (empty columns left out, as on the wire)."""
        return self._reader.read(after, limit)

    def read_wire(self, after: int, limit: int) -> list[tuple[int, bytes | dict[str, Any]]]:
        """Records after ``after`` as (seq, wire bytes), or (seq, compact dict) for a row
        written before the journal kept its bytes (:meth:`JournalReader.read_wire`)."""
        return self._reader.read_wire(after, limit)

    def close(self) -> None:
        self._reader.close()
