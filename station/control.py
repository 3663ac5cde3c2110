"""The daemon's control socket (runtime_dir/control.sock): one JSON request, one JSON reply.

Technician commands use it to reach the running daemon: ``station sync now`` wakes the
uploader, ``station manual-entry`` hands its records to the loop, the journal's one writer.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sync.i18n import _

__all__ = ["ControlError", "ControlServer", "NoDaemon", "request"]

log = logging.getLogger(__name__)

MAX_REQUEST = 64 * 1024
Handler = Callable[[dict[str, Any]], dict[str, Any]]


class NoDaemon(Exception):
    """Nothing listens on the control socket: the daemon is not running."""


class ControlError(Exception):
    """The daemon was reached but did not answer properly (timeout, garbage)."""


class ControlServer:
    """Serves ``handlers[request["op"]](request)`` on a unix socket, one thread per client.

    The socket is made ``0660`` in the runtime dir: the daemon's user and group only. A failing
    handler answers ``{"ok": false, "error": ...}``; the daemon never dies of a bad request.
    """

    def __init__(self, path: Path, handlers: dict[str, Handler]) -> None:
        self.path = path
        self.handlers = handlers
        self._sock: socket.socket | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

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
        self._thread = threading.Thread(target=self._serve, name="control", daemon=True)
        self._thread.start()
        return True

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
            self._thread = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
            with contextlib.suppress(OSError):
                self.path.unlink()

    def _serve(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, _addr = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                continue
            threading.Thread(
                target=self._client, args=(conn,), name="control-client", daemon=True
            ).start()

    def _client(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            try:
                data = _read_line(conn)
                reply = self._handle(data)
            except (OSError, ValueError) as exc:
                reply = {"ok": False, "error": f"bad request: {exc}"}
            with contextlib.suppress(OSError):
                conn.sendall(json.dumps(reply, ensure_ascii=False).encode() + b"\n")

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

    Raises :class:`NoDaemon` when nothing listens there, :class:`ControlError` otherwise."""
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
            sock.sendall(json.dumps(payload).encode() + b"\n")
            data = _read_line(sock)
        except (OSError, ValueError) as exc:
            raise ControlError(f"{path}: {exc}") from exc
    try:
        reply = json.loads(data)
    except ValueError as exc:
        raise ControlError(f"{path}: the daemon's reply is not JSON") from exc
    if not isinstance(reply, dict):
        raise ControlError(f"{path}: the daemon's reply is not a JSON object")
    return reply


# -- the daemon's side ----------------------------------------------------------------------------


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


def daemon_handlers(station: Any, link: Any, reply_timeout: float = 10.0) -> dict[str, Handler]:
    """``sync``: wake the uploader now; ``manual``: authenticate, then record through the loop
    (``station`` is the :class:`~station.loop.Station`, ``link`` the sync link or None)."""
    import queue

    from .events import ManualEntry
    from .manual import ManualError, ManualRequest, authenticate

    def sync(req: dict[str, Any]) -> dict[str, Any]:
        if link is None:
            return {"ok": False, "error": _("no [sync] section: records stay on this station")}
        link.notify()  # the uploader sends what is unsent now, and a fresh status goes out
        return {"ok": True, "sync": sync_state(link, station.snapshot.last_seq)}

    def manual(req: dict[str, Any]) -> dict[str, Any]:
        try:
            # the PIN is checked here too: the socket alone must not allow a manual entry
            tech = authenticate(station.config, pin=req.get("pin"), badge=req.get("badge"))
            entry = ManualRequest.from_json(req.get("request") or {})
        except ManualError as exc:
            return {"ok": False, "kind": exc.kind, "error": str(exc)}
        if entry.technician != tech.name:
            return {"ok": False, "kind": "auth", "error": _("technician does not match the PIN")}
        replies: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
        station.post(ManualEntry(entry, replies.put))
        try:
            return replies.get(timeout=reply_timeout)
        except queue.Empty:
            error = _("the station loop did not answer")
            return {"ok": False, "kind": "timeout", "error": error}

    return {"sync": sync, "manual": manual}
