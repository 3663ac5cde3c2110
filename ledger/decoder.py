"""The decode stage in a process of its own: every batch's checks off the ingest process's GIL.

``ledger run`` checks each batch (JSON, every record's rules and hash, the chain, the signature)
before the ingest thread stores it. Done on a thread, that Python work held the GIL the ingest
thread needs back after each SQLite statement, and the two took turns instead of overlapping
(bench/README.md, "Decode process"). Here a child process (``python -m ledger.decoder``)
runs :func:`sync.wire.decode_batch_rows` (decode_batch's checks) on the bytes received and
answers the reason for refusing them, or, accepted, the batch's rows (each record's fields in
table order, no Record built) in :mod:`marshal` form, which the ledger loads in one call and
stores: no second parse of the JSON, no per-field lookups in the ingest process. Whatever the
child cannot judge (it died, it is stuck, its answer does not read) is decoded on the thread
as before: the child only ever saves time, never changes what is accepted or why something is
refused.

The pipe carries one request at a time: ``!IHH`` (payload, station, key lengths), the station
(the topic's), the HMAC key (empty: none), the payload; the answer is ``!HI`` (reason and rows
lengths), the reason (UTF-8, empty: accepted), then the rows: ``marshal`` of (station, epoch,
sent_at, rows). marshal reads only what this child wrote, never bytes a station sent.
"""

from __future__ import annotations

import logging
import marshal
import os
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import IO

from sync.wire import RECORD_FIELDS, BatchRows, WireError, decode_batch_rows

__all__ = ["MAX_REASON_CHARS", "DecoderGone", "DecoderProcess", "main"]

log = logging.getLogger("ledger")

_REQUEST = struct.Struct("!IHH")
_ANSWER = struct.Struct("!HI")
_WIDTH = len(RECORD_FIELDS)
# a batch of 200 kB takes the child a few ms; far longer means it is stuck: decode here (the
# whole exchange, well within the 10 s the watchdog allows the decode stage between beats)
ANSWER_TIMEOUT_S = 5.0
RESPAWN_AFTER_S = 10.0
# a refusal's reason may quote what the station sent: bounded, cut between characters
MAX_REASON_CHARS = 4000


def _loaded(blob: bytes) -> BatchRows:
    """The child's rows read back, their shape checked (a bug in the child must not reach the
    store as a wrong row: the batch is then decoded on the thread)."""
    try:
        station, epoch, sent_at, rows = marshal.loads(blob)
    except (EOFError, ValueError, TypeError) as exc:
        raise DecoderGone(f"unreadable rows ({exc})") from None
    if not (
        type(station) is str
        and type(epoch) is str
        and type(sent_at) is str
        and type(rows) is tuple
        and rows
        and all(type(r) is tuple and len(r) == _WIDTH for r in rows)
    ):
        raise DecoderGone("rows of the wrong shape")
    return BatchRows(station, epoch, rows, sent_at)


class DecoderGone(RuntimeError):
    """The child did not answer: the caller decodes on its own thread."""


class DecoderProcess:
    """The parent's side: one child, one request at a time (a lock: the decode thread and a
    tool's :meth:`LedgerService.handle_group` may both ask). A child found dead, or that did
    not answer, is started again, at most once per ``RESPAWN_AFTER_S``: whatever a batch
    does to it, it cannot make the ledger start processes in a loop (in between, batches are
    decoded on the caller's thread)."""

    def __init__(
        self,
        max_bytes: int,
        timeout: float = ANSWER_TIMEOUT_S,
        respawn_after: float = RESPAWN_AFTER_S,
    ) -> None:
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.respawn_after = respawn_after
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._wanted = False  # between start() and stop()
        self._spawned_at = -RESPAWN_AFTER_S  # monotonic time the last child was started

    def start(self) -> None:
        with self._lock:
            self._wanted = True
            self._spawn()

    def _spawn(self) -> None:
        self._spawned_at = time.monotonic()
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "ledger.decoder", str(self.max_bytes)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            bufsize=0,
            close_fds=True,
        )
        assert self._proc.stdin is not None
        # written with a deadline: a stuck child must not block the decode thread on a full pipe
        os.set_blocking(self._proc.stdin.fileno(), False)

    def stop(self) -> None:
        with self._lock:
            self._wanted = False
            proc, self._proc = self._proc, None
        if proc is not None:
            _end(proc)

    @property
    def wanted(self) -> bool:
        """Started and not stopped: batches go to the child (or would, once it is back)."""
        return self._wanted

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def judge(self, payload: bytes, station: str, key: bytes | None) -> BatchRows | str:
        """The batch accepted (its rows), or the reason it is refused; :class:`DecoderGone`
        when no child can say within ``timeout`` (the caller then decodes it itself)."""
        request = (
            _REQUEST.pack(len(payload), len(station.encode()), len(key or b""))
            + station.encode()
            + (key or b"")
            + payload
        )
        with self._lock:
            proc = self._alive()
            deadline = time.monotonic() + self.timeout
            try:
                assert proc.stdin is not None and proc.stdout is not None
                out = proc.stdout.fileno()
                _write(proc.stdin.fileno(), request, deadline)
                size, rows = _ANSWER.unpack(_read(out, _ANSWER.size, deadline))
                if size and rows:  # never written: the pipe would be out of step after it
                    raise DecoderGone("an answer with a reason and rows")
                if size:  # replaced, not refused: a reason is the child's text, whole
                    return _read(out, size, deadline).decode(errors="replace")
                # rows are a little smaller than the JSON they came from
                if not 0 < rows <= 2 * len(payload) + 4096:
                    raise DecoderGone(f"an answer of {rows} bytes")
                return _loaded(_read(out, rows, deadline))
            except (OSError, DecoderGone) as exc:
                log.warning("the decode process did not answer (%s): replaced", exc)
                self._proc = None
                _end(proc, at_once=True)
                raise DecoderGone(str(exc)) from None

    def _alive(self) -> subprocess.Popen[bytes]:
        """The child, started again if it died (under the lock)."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            return proc
        if proc is not None:
            log.warning("the decode process ended (status %s)", proc.returncode)
            self._proc = None
            _end(proc, at_once=True)
        if not self._wanted:
            raise DecoderGone("not started")
        if time.monotonic() < self._spawned_at + self.respawn_after:
            raise DecoderGone("started again too recently")
        try:
            self._spawn()
        except OSError as exc:
            raise DecoderGone(f"cannot start: {exc}") from None
        assert self._proc is not None
        return self._proc


def _write(fd: int, data: bytes, deadline: float) -> None:
    view = memoryview(data)
    while view:
        remaining = deadline - time.monotonic()
        _, ready, _ = select.select([], [fd], [], max(0.0, remaining))
        if not ready:
            raise DecoderGone("no room in its pipe in time")
        try:
            view = view[os.write(fd, view) :]  # a signal or a full pipe: part of it
        except BlockingIOError:
            continue


def _read(fd: int, n: int, deadline: float) -> bytes:
    data = bytearray()
    while len(data) < n:
        remaining = deadline - time.monotonic()
        ready, _, _ = select.select([fd], [], [], max(0.0, remaining))
        if not ready:
            raise DecoderGone("no answer in time")
        chunk = os.read(fd, n - len(data))
        if not chunk:
            raise DecoderGone("it exited")
        data += chunk
    return bytes(data)


def _end(proc: subprocess.Popen[bytes], *, at_once: bool = False) -> None:
    """Close its stdin (it exits at the end of its input) and wait, or kill it ``at_once``
    (it failed: no time to lose on the decode thread)."""
    try:
        if at_once:
            proc.kill()
        if proc.stdin is not None:
            proc.stdin.close()
        proc.wait(2.0)
    except (OSError, subprocess.TimeoutExpired):
        proc.kill()
        proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


# -- the child ---------------------------------------------------------------------------------
def serve(source: IO[bytes], sink: IO[bytes], max_bytes: int) -> None:
    """Answer requests until the end of ``source``."""
    while True:
        head = source.read(_REQUEST.size)
        if len(head) < _REQUEST.size:
            return
        size, station_len, key_len = _REQUEST.unpack(head)
        station = source.read(station_len).decode()
        key = source.read(key_len) or None
        payload = source.read(size)
        if len(payload) < size:
            return
        rows = reason = b""
        try:
            batch = decode_batch_rows(payload, topic_station=station, key=key, max_bytes=max_bytes)
            rows = marshal.dumps((batch.station, batch.epoch, batch.sent_at, batch.rows))
        except WireError as exc:
            reason = exc.reason[:MAX_REASON_CHARS].encode(errors="replace")
        except Exception:  # a bug here must not stop the ledger: the parent decodes it
            logging.getLogger("ledger").exception("decode process: failed on a batch")
            return
        sink.write(_ANSWER.pack(len(reason), len(rows)) + reason + rows)
        sink.flush()


def main(argv: Sequence[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    # the parent ends it by closing the pipe, after the batches it still has: a stop signal
    # sent to the whole service (systemd) must not cut a batch in two
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    serve(sys.stdin.buffer, sys.stdout.buffer, int(args[0]))


if __name__ == "__main__":
    main()
