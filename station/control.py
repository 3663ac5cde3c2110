"""The daemon's control socket (runtime_dir/control.sock): one JSON request, one JSON reply.

Technician commands use it to reach the running daemon: ``station sync now`` wakes the
uploader, ``station manual-entry`` hands its records to the loop, the journal's one writer.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import math
import os
import queue
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from common.i18n import _
from common.service import ServiceThread

__all__ = [
    "AuthGuard",
    "ControlError",
    "ControlServer",
    "NoDaemon",
    "NoReply",
    "Pending",
    "request",
]

log = logging.getLogger(__name__)

MAX_REQUEST = 64 * 1024
MAX_CLIENTS = 8  # client threads at once; more get a one-line "busy" reply
Handler = Callable[[dict[str, Any]], dict[str, Any]]
T = TypeVar("T")


class NoDaemon(Exception):
    """Nothing listens on the control socket: the daemon is not running."""


class ControlError(Exception):
    """The daemon could not be reached properly; the request was not sent."""


class NoReply(ControlError):
    """The request was sent but no proper reply came back: the daemon may have acted on it."""


class ControlServer:
    """Serves ``handlers[request["op"]](request)`` on a unix socket, one thread per client.

    The socket is made ``0660`` in the runtime dir: the daemon's user and group only. A failing
    handler answers ``{"ok": false, "error": ...}``; the daemon never dies of a bad request.
    At most ``max_clients`` clients are served at once (``refused`` counts the others).
    """

    def __init__(
        self, path: Path, handlers: dict[str, Handler], max_clients: int = MAX_CLIENTS
    ) -> None:
        self.path = path
        self.handlers = handlers
        self.refused = 0
        self._slots = threading.BoundedSemaphore(max_clients)
        self._sock: socket.socket | None = None
        self._service = ServiceThread("control", self._serve)

    def start(self) -> bool:
        """Listen; False (logged) when the socket cannot be made: the station runs without it."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()  # left by a daemon that was killed
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.bind(str(self.path))
            os.chmod(self.path, 0o660)
            sock.listen(8)
            sock.settimeout(0.5)
        except OSError as exc:
            log.warning("control socket %s unavailable: %s", self.path, exc)
            return False
        self._sock = sock
        self._service.start()
        return True

    def stop(self) -> None:
        self._service.stop(2)
        if self._sock is not None:
            self._sock.close()
            self._sock = None
            with contextlib.suppress(OSError):
                self.path.unlink()

    def _serve(self, stop: threading.Event) -> None:
        assert self._sock is not None
        self._stop = stop
        while not self._stop.is_set():
            try:
                conn, _addr = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                continue
            if not self._slots.acquire(blocking=False):
                # answered without reading the request: a flood costs no thread and no PIN check
                self.refused += 1
                with conn:
                    conn.settimeout(1)
                    _send(conn, {"ok": False, "kind": "busy", "error": _("too many requests")})
                continue
            threading.Thread(
                target=self._client, args=(conn,), name="control-client", daemon=True
            ).start()

    def _client(self, conn: socket.socket) -> None:
        try:
            with conn:
                conn.settimeout(5)
                try:
                    data = _read_line(conn)
                    reply = self._handle(data)
                except (OSError, ValueError) as exc:
                    reply = {"ok": False, "error": f"bad request: {exc}"}
                _send(conn, reply)
        finally:
            self._slots.release()

    def _handle(self, data: bytes) -> dict[str, Any]:
        req = json.loads(data)
        if not isinstance(req, dict):
            raise ValueError("not a JSON object")
        handler = self.handlers.get(str(req.get("op")))
        if handler is None:
            return {"ok": False, "error": f"unknown op {req.get('op')!r}"}
        try:
            return handler(req)
        except Exception as exc:  # a bug in one request must not stop the socket
            log.exception("control request %r failed", req.get("op"))
            return {"ok": False, "error": str(exc)}


def _send(conn: socket.socket, reply: dict[str, Any]) -> None:
    with contextlib.suppress(OSError):
        conn.sendall(json.dumps(reply, ensure_ascii=False).encode() + b"\n")


def _read_line(conn: socket.socket) -> bytes:
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = conn.recv(4096)
        if not chunk:
            break
        buf += chunk
        if len(buf) > MAX_REQUEST:
            raise ValueError("request too large")
    return buf


def request(path: Path, payload: dict[str, Any], timeout: float = 15.0) -> dict[str, Any]:
    """Send ``payload`` to the daemon listening on ``path``; its reply as a dict.

    Raises :class:`NoDaemon` when nothing listens there, :class:`ControlError` when the
    request could not be sent, :class:`NoReply` when it was sent but no reply came back."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    with sock:
        try:
            sock.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise NoDaemon(str(path)) from exc
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ECONNREFUSED, errno.ENOTSOCK):
                raise NoDaemon(str(path)) from exc
            raise ControlError(f"{path}: {exc}") from exc
        try:
            # a daemon that refuses at once ("busy") may close before reading: its reply waits
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                sock.sendall(json.dumps(payload).encode() + b"\n")
            data = _read_line(sock)
        except (OSError, ValueError) as exc:
            raise NoReply(f"{path}: {exc}") from exc
    try:
        reply = json.loads(data)
    except ValueError as exc:
        raise NoReply(f"{path}: the daemon's reply is not JSON") from exc
    if not isinstance(reply, dict):
        raise NoReply(f"{path}: the daemon's reply is not a JSON object")
    return reply


# -- the daemon's side ----------------------------------------------------------------------------


class AuthGuard:
    """PIN and badge checks over the socket: ``concurrent`` at a time, and after each failure
    the next try is refused for ``base`` s, doubling up to ``cap`` s; a success resets it.

    ``failures`` (consecutive) and ``refused`` (tries turned away while locked) are counters for
    the tests and the log; ``clock`` is a parameter so tests need not wait."""

    def __init__(
        self,
        base: float = 1.0,
        cap: float = 30.0,
        concurrent: int = 1,
        wait: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base = base
        self.cap = cap
        self.wait = wait
        self.clock = clock
        self.failures = 0
        self.refused = 0
        self._until = -math.inf
        self._sem = threading.BoundedSemaphore(concurrent)

    def check(self, attempt: Callable[[], T]) -> T:
        """``attempt()`` (raising ``ManualError`` of kind ``auth`` when refused), guarded."""
        from .manual import ManualError

        if not self._sem.acquire(timeout=self.wait):
            raise ManualError(_("another technician check is running: try again"), "busy")
        try:
            now = self.clock()
            if now < self._until:
                self.refused += 1
                raise ManualError(
                    _("too many wrong PINs or badges: try again in {s} s").format(
                        s=math.ceil(self._until - now)
                    ),
                    "locked",
                )
            try:
                result = attempt()
            except ManualError as exc:
                if exc.kind == "auth":
                    self.failures += 1
                    delay = min(self.cap, self.base * 2 ** min(self.failures - 1, 30))
                    self._until = self.clock() + delay
                    log.warning(
                        "control socket: technician check failed (%d in a row), next try in %.0f s",
                        self.failures,
                        delay,
                    )
                raise
            self.failures = 0
            self._until = -math.inf
            return result
        finally:
            self._sem.release()


class Pending:
    """One manual entry handed to the loop, and its reply. Whoever comes first decides: the
    loop (:meth:`claim`, then it writes) or the socket's timeout (:meth:`cancel`, then the
    loop drops it), so an entry reported as not recorded is never written later."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = "queued"
        self._replies: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()

    def claim(self) -> bool:
        with self._lock:
            if self._state != "queued":
                return False
            self._state = "claimed"
            return True

    def cancel(self) -> bool:
        with self._lock:
            if self._state != "queued":
                return False
            self._state = "cancelled"
            return True

    def __call__(self, reply: dict[str, Any]) -> None:
        self._replies.put(reply)

    def wait(self, timeout: float) -> dict[str, Any] | None:
        try:
            return self._replies.get(timeout=timeout)
        except queue.Empty:
            return None


def socket_path(runtime_dir: Path) -> Path:
    return runtime_dir / "control.sock"


def sync_state(link: Any, last_seq: int = 0) -> dict[str, Any]:
    """The sync link's state for the status file and ``station sync status`` (any thread).

    ``last_seq`` is the journal's head: the uploader only reads it while connected."""
    state = link.uploader.state()
    last = max(state.last_seq, last_seq)
    settings = link.link.settings
    failures = link.link.failures
    error = failures[-1] if failures else None
    if not state.connected and error is None:
        error = f"not connected to {settings.host}:{settings.port}"
    return {
        "broker": f"{settings.host}:{settings.port}",
        "connected": state.connected,
        "acked_through": state.acked_through,
        "last_seq": last,
        "backlog": max(0, last - state.acked_through),
        "last_sync": state.last_sync,
        "last_error": error,
        "batches_sent": state.batches_sent,
        "resends": state.resends,
    }


def daemon_handlers(
    station: Any,
    link: Any,
    reply_timeout: float = 10.0,
    guard: AuthGuard | None = None,
    grace: float = 5.0,
) -> dict[str, Handler]:
    """``sync``: wake the uploader now; ``manual``: authenticate, then record through the loop
    (``station`` is the :class:`~station.loop.Station`, ``link`` the sync link or None).

    A manual entry the loop has not taken within ``reply_timeout`` is withdrawn (``busy``:
    nothing recorded); one it took gets ``grace`` more seconds, then ``unknown``."""
    from dataclasses import replace

    from .events import ManualEntry
    from .manual import ManualError, ManualRequest, authenticate

    guard = guard or AuthGuard()

    def sync(req: dict[str, Any]) -> dict[str, Any]:
        if link is None:
            return {"ok": False, "error": _("no [sync] section: records stay on this station")}
        link.notify()  # the uploader sends what is unsent now, and a fresh status goes out
        return {"ok": True, "sync": sync_state(link, station.snapshot.last_seq)}

    def manual(req: dict[str, Any]) -> dict[str, Any]:
        pin, badge = req.get("pin"), req.get("badge")
        try:
            entry = ManualRequest.from_json(req.get("request") or {})
            # the PIN is checked here too: the socket alone must not allow a manual entry
            proof = guard.check(
                lambda: authenticate(
                    station.config,
                    pin=pin if isinstance(pin, str) else None,
                    badge=badge if isinstance(badge, str) else None,
                )
            )
        except ManualError as exc:
            return {"ok": False, "kind": exc.kind, "error": str(exc)}
        if entry.technician != proof.technician.name:
            return {"ok": False, "kind": "auth", "error": _("technician does not match the PIN")}
        # how they proved it is what was checked here, whatever the request says
        entry = replace(entry, auth=proof.method)
        pending = Pending()
        station.post(ManualEntry(entry, pending))
        reply = pending.wait(reply_timeout)
        if reply is None and pending.cancel():
            error = _("the station loop is busy: nothing recorded, try again in a minute")
            return {"ok": False, "kind": "busy", "error": error}
        if reply is None:
            reply = pending.wait(grace)  # the loop is writing it: one transaction, short
        if reply is None:
            error = _("the station loop took the entry but did not answer in time")
            return {"ok": False, "kind": "unknown", "error": error}
        return reply

    return {"sync": sync, "manual": manual}
