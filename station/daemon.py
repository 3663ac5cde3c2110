"""Wires the devices to the station loop: scale and scanner threads, GPIO panel, store, signals."""

from __future__ import annotations

import ctypes
import gc
import logging
import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common.i18n import _, set_language
from common.notify import Watchdog, fresh, sd_notify, watchdog_interval
from common.settings import ConfigError
from drivers.panel import Panel, PanelPins
from drivers.scale.worker import ScaleWorker
from drivers.scanner.serial_scanner import SerialScanner
from drivers.serialio import LinkSettings
from sync.client import MqttSettings
from sync.station_link import StationLink
from sync.topics import Topics
from sync.wire import StationStatus

from . import __version__
from .config import Config, SyncSection, load_config
from .disk import DiskGuard
from .events import (
    Acked,
    ButtonHeld,
    ButtonPressed,
    CodeScanned,
    CodeUnreadable,
    ConfigChanged,
    RegistryReceived,
    ScaleReplied,
    ScaleState,
    ScannerState,
    WeightRead,
)
from .loop import Station
from .outbox import JournalOutbox
from .registry import RegistryBook
from .signals import CALIBRATION_DUE, PanelSignaller
from .store import Store, StoreError

__all__ = ["Daemon", "one_malloc_arena", "release_free_memory"]

log = logging.getLogger("station")


M_ARENA_MAX = -8  # glibc's mallopt parameter (malloc.h)


def one_malloc_arena() -> bool:
    """One glibc malloc arena for every thread; call before the threads start. By default
    each thread that allocates gets an arena of its own, whose free pages stay in RSS; under
    the GIL two threads hardly ever allocate at once, so one arena costs no waiting: about
    0.4 MiB of the idle daemon (bench/footprint.py), as ``MALLOC_ARENA_MAX=1`` would. False
    where there is no glibc ``mallopt``."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # musl, macOS: nothing to set this way
        return False
    return bool(mallopt(M_ARENA_MAX, 1))


def release_free_memory() -> bool:
    """Give the heap's free pages back to the system once start-up is over: importing and
    validating the config leave freed blocks that glibc's malloc keeps, about 1 MiB of the
    idle daemon's RSS (bench/footprint.py). False where there is no glibc ``malloc_trim``."""
    gc.collect()
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # musl, macOS: nothing to trim this way
        return False
    trim(0)
    return True


class Daemon:
    """The whole station: build with a validated config, then :meth:`run` (blocking) or
    :meth:`start` / :meth:`stop` (the loop in a thread, for tests and the demo).

    ``pin_factory`` is gpiozero's (``MockFactory()`` off a Pi); ``None`` lets gpiozero choose.
    """

    def __init__(
        self, config: Config, *, pin_factory: Any = None, config_path: Path | None = None
    ) -> None:
        set_language(config.station.language)
        self.config = config
        self.config_path = config_path
        self.store = self._open_store(config)
        self.exclusive = self.store.exclusive
        self.panel = Panel(
            PanelPins(
                button=config.panel.button,
                green=config.panel.green,
                red=config.panel.red,
                amber=config.panel.amber,
                buzzer=config.panel.buzzer,
                button_pull_up=config.panel.button_pull_up,
                hold_time=config.panel.hold_time,
                bounce_time=config.panel.bounce_time,
            ),
            pin_factory=pin_factory,
            on_press=lambda: self.station.post(ButtonPressed(time.monotonic())),
            on_hold=lambda: self.station.post(ButtonHeld(time.monotonic())),
        )
        sc = config.scale
        protocol = sc.make_protocol()
        settings = sc.link(protocol)
        self.scale = ScaleWorker(
            sc.url,
            protocol,
            settings=settings,
            poll_interval=sc.poll_interval,
            reply_timeout=sc.reply_timeout,
            # the counter screen shows the live weight: no pause in the idle polling then
            settled_hold=0.0 if config.screen.enabled else sc.settled_hold,
            on_reading=lambda r, t: self.station.post(WeightRead(r, t)),
            on_state=lambda ok, d: self.station.post(ScaleState(ok, d)),
            on_reply=lambda token, outcome: self.station.post(ScaleReplied(token, outcome)),
        )
        try:
            self.session = self.store.next_session()
        except StoreError as exc:
            # a full card: the station still runs, red steady, records refused until there
            # is room (docs/operations.md); the session is counted in memory meanwhile
            log.error(_("cannot write the store: %s"), exc)
            self.session = self.store.session() + 1
        self.registry = RegistryBook(config)
        signaller = PanelSignaller(self.panel)
        self.station = Station(
            self.registry.load(),
            self.store,
            scale=self.scale,
            signaller=signaller,
            status_path=config.status_path,
            registry=self.registry,
        )
        signaller.ready(False)  # amber until the scale answers
        self.link: StationLink | None = None
        if config.sync is not None and config.sync.enabled and not self.exclusive:
            self.link = self._make_link(config.sync)
            self.station.on_commit.append(self.link.notify)
        self.scanner: Any
        if config.scanner.kind == "hid":
            # imported only when used: evdev and asyncio cost ~2 MiB on a Pi
            from drivers.scanner.hid import HidScanner

            self.scanner = HidScanner(config.scanner.url, self._code, on_state=self._scanner_state)
        else:
            self.scanner = SerialScanner(
                config.scanner.url,
                self._code,
                settings=LinkSettings(baudrate=config.scanner.baudrate),
                on_state=self._scanner_state,
                on_error=self._unreadable,
            )
        self.scanner_ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.screen: Any = None  # station.screen.server.ScreenServer when [screen] is enabled

    @staticmethod
    def _open_store(config: Config) -> Store:
        """The journal (one made by a first start on the example config, still empty, is
        re-bound to this station). On a card too full to open it as usual (SQLite cannot
        create its ``-shm`` file), it is opened for this process alone: the station runs, red
        light steady, and the uploader waits for a restart with room on the card."""
        try:
            return Store(config.store_path, config.station.id, rebind_empty=True)
        except StoreError as exc:
            if not DiskGuard(config.store_path.parent, config.station.min_free_mb).check():
                raise
            log.error(
                _(
                    "cannot open the journal on a full card (%s): opened for the daemon alone, "
                    "nothing is sent until it restarts with room on the card"
                ),
                exc,
            )
            return Store(config.store_path, config.station.id, rebind_empty=True, exclusive=True)

    def _code(self, code: str) -> None:
        self.station.post(CodeScanned(code, time.monotonic()))

    def _unreadable(self, detail: str) -> None:
        log.warning(_("scanner: unreadable code (%s)"), detail)
        self.station.post(CodeUnreadable(detail, time.monotonic()))

    def _scanner_state(self, ok: bool, detail: str) -> None:
        # set once the port is open AND configured: pyserial flushes the input after open(),
        # so a code sent between the open and that flush is lost (the simulator's first scan)
        if ok:
            self.scanner_ready.set()
        else:
            self.scanner_ready.clear()
        self.station.post(ScannerState(ok, detail))

    def _make_link(self, sc: SyncSection) -> StationLink:
        station = self.config.station.id
        settings = MqttSettings(
            host=sc.host,
            port=sc.port,
            # no client_id: it is the username, as the shipped broker enforces anyway
            username=sc.username or station,
            password=sc.password,
            tls=sc.tls,
            ca_file=sc.ca_file,
            cert_file=sc.cert_file,
            key_file=sc.key_file,
            keepalive=sc.keepalive,
        )
        topics = Topics(sc.prefix)
        own_config = topics.config(station)
        return StationLink(
            settings,
            topics,
            JournalOutbox(self.store.path, station, self.store.epoch),
            acked_through=self.store.synced_through,
            on_acked=lambda through: self.station.post(Acked(through)),
            on_registry=lambda topic, payload: self.station.post(
                RegistryReceived("station" if topic == own_config else "all", payload)
            ),
            status=self._status,
            max_records=sc.batch_records,
            max_bytes=sc.batch_bytes,
            window=sc.window,
            resend_after=sc.resend_after,
            status_every=sc.status_every,
            key=sc.hmac_key.encode() if sc.hmac_key else b"",
        )

    def _status(self) -> StationStatus:
        """The status message, from the loop's published snapshot (any thread may call it)."""
        snap = self.station.snapshot
        return StationStatus(
            station=self.config.station.id,
            online=True,
            session=self.session,
            version=__version__,
            epoch=self.store.epoch,
            last_seq=snap.last_seq,
            synced_through=snap.synced_through,
            backlog=snap.backlog,
            last_record_at=snap.last_record_at,
            clock_synced=snap.clock_synced,
            scale_ok=snap.scale_ok,
            scale_detail=snap.scale_detail,
            scale_rejected_frames=snap.scale_rejected_frames,
            calibration_age_days=self.station.calibration.age_days(),
            ts=datetime.now(UTC).isoformat(timespec="seconds"),
        )

    def _start_devices(self) -> None:
        calibration, sc = self.station.calibration, self.config.scale
        # never verified counts as overdue once the scale's metrology (e) is configured
        if (sc.e is not None or calibration.verified_at) and calibration.overdue(
            sc.calibration_interval_days
        ):
            # said once at start-up, where a technician or the person opening sees it
            log.warning(
                _("scale calibration overdue (last verified: %s): run station calibrate"),
                calibration.verified_at or _("never"),
            )
            self.panel.signal(CALIBRATION_DUE)
        self.scale.start()
        self.scanner.start()
        if self.link is not None:
            self.link.start()
        self._start_control()

    def _start_control(self) -> None:
        """The control socket for `station sync now` and `station manual-entry`; optional."""
        from .control import ControlServer, daemon_handlers, socket_path, sync_state

        link = self.link
        if link is not None:
            self.station.status_extras["sync"] = lambda: sync_state(
                link, self.station.snapshot.last_seq
            )
        self.control = ControlServer(
            socket_path(self.config.station.runtime_dir), daemon_handlers(self.station, link)
        )
        self.control.start()

    def run(self) -> None:
        """Run until SIGTERM/SIGINT, in the calling (main) thread."""

        def _terminate(signum: int, _frame: Any) -> None:
            self.station.stop(signal.Signals(signum).name)

        signal.signal(signal.SIGTERM, _terminate)
        signal.signal(signal.SIGINT, _terminate)
        signal.signal(signal.SIGHUP, lambda *_a: self.reload())
        self._start_devices()
        self._start_screen()
        release_free_memory()
        # READY once the store is open and every device has been tried (found or not)
        sd_notify("READY=1\nSTATUS=" + self.summary())
        interval = watchdog_interval()
        watchdog = Watchdog(self.checks(), self.summary, interval) if interval else None
        if watchdog is not None:
            watchdog.start()
        try:
            self.station.run()
        finally:
            sd_notify("STOPPING=1")
            if watchdog is not None:
                watchdog.stop()
            self._shutdown()

    def checks(self, stale_after: float = 10.0) -> dict[str, Callable[[], bool]]:
        """What must keep moving for the daemon to count as alive (the watchdog's checks).

        The loop wakes at least once a second and the uploader twice, so ``stale_after``
        seconds without a turn means stuck (an fsync that never returns, a deadlock)."""
        sc = self.config.scale
        scale_within = max(stale_after, 3 * sc.reply_timeout + sc.poll_interval)
        scale_fresh = fresh(lambda: self.scale.heartbeat, scale_within)
        checks: dict[str, Callable[[], bool]] = {
            "loop": fresh(lambda: self.station.heartbeat, stale_after),
            "scale": lambda: self.scale.alive and scale_fresh(),
            "scanner": lambda: self.scanner.running,
        }
        if self.link is not None:
            uploader = self.link.uploader
            uploader_fresh = fresh(lambda: uploader.heartbeat, stale_after)
            checks["uploader"] = lambda: uploader.alive and uploader_fresh()
        return checks

    def summary(self) -> str:
        """One line for ``systemctl status``: scale, backlog, last record."""
        snap = self.station.snapshot
        scale = _("scale ok") if snap.scale_ok else _("scale not answering")
        return _("{scale}, backlog {backlog}, last record {last}").format(
            scale=scale, backlog=snap.backlog, last=snap.last_record_at or "-"
        )

    def reload(self) -> None:
        """SIGHUP: re-read the config; a bad one is refused and the running one kept."""
        if self.config_path is None:
            return
        try:
            config = load_config(self.config_path)
        except ConfigError as exc:
            log.error(
                _("configuration refused, keeping the running one: %s"), "; ".join(exc.problems)
            )
            return
        restart = [
            name
            for name in ("scale", "scanner", "panel", "sync", "screen")
            if getattr(config, name) != getattr(self.config, name)
        ]
        if (config.station.id, config.station.data_dir) != (
            self.config.station.id,
            self.config.station.data_dir,
        ):
            restart.append("station")
        if restart:
            log.warning(
                _("configuration reloaded; these sections need a restart: %s"), ", ".join(restart)
            )
        else:
            log.info(_("configuration reloaded"))
        self.station.post(ConfigChanged(config))

    def start(self) -> None:
        """Run the loop in a background thread (tests, demo)."""
        self._start_devices()
        self._thread = threading.Thread(target=self.station.run, name="station", daemon=True)
        self._thread.start()
        self._start_screen()

    def _start_screen(self) -> None:
        """The counter screen, when enabled. Never required: a failure is logged, no more."""
        if not self.config.screen.enabled:
            return
        try:
            # imported only when enabled: Starlette and uvicorn cost memory on a Pi
            from .screen.server import ScreenServer

            screen = ScreenServer(self.station, self.config)
            if screen.start():
                self.screen = screen
        except Exception:
            log.exception(_("counter screen not started; the station works without it"))

    def stop(self, timeout: float = 5.0) -> None:
        self.station.stop("stop()")
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._shutdown()

    def _shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.screen is not None:
            self.screen.stop()
        if self.link is not None:
            self.link.stop()
        if getattr(self, "control", None) is not None:
            self.control.stop()
        self.scanner.stop()
        self.scale.stop()
        self.panel.close()
        self.store.close()

    def __enter__(self) -> Daemon:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
