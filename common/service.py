"""The lifecycle every background service shares: one thread, started once, stopped by an event."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

__all__ = ["ServiceThread"]

log = logging.getLogger(__name__)


class ServiceThread:
    """Runs ``body(stop)`` in one daemon thread named ``name``; ``body`` returns once ``stop`` is
    set (it waits on it, never sleeps blind). Held by composition: a reader, an uploader or a
    watchdog keeps one and forwards ``start``/``stop``/``running``.

    A crash in ``body`` is logged with its traceback and reported to ``on_crash`` (the watchdog
    then sees ``running`` false), never swallowed silently.
    """

    def __init__(
        self,
        name: str,
        body: Callable[[threading.Event], None],
        on_crash: Callable[[BaseException], None] | None = None,
        wake: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self.body = body
        self.on_crash = on_crash
        self.wake = wake  # called after ``stopping`` is set: a body waiting on another event
        self.stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the thread; a no-op while it runs. A stopped service may be started again."""
        if self.running:
            return
        self.stopping = threading.Event()
        self._thread = threading.Thread(target=self._main, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> bool:
        """Ask the thread to stop and wait for it at most ``timeout`` s; False if it did not."""
        self.stopping.set()
        if self.wake is not None:
            self.wake()
        thread = self._thread
        if thread is None or thread is threading.current_thread():
            return True
        thread.join(timeout)
        if thread.is_alive():
            log.warning("%s thread did not stop within %.1f s", self.name, timeout)
            return False
        return True

    def _main(self) -> None:
        try:
            self.body(self.stopping)
        except Exception as exc:  # never expected: say so loudly rather than die silently
            log.exception("%s thread crashed", self.name)
            if self.on_crash is not None:
                self.on_crash(exc)
