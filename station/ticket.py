"""The end-of-visit ticket on an ESC/POS receipt printer (``[printer]``), off the counter's path.

When a visit closes, the loop's listener reads the visit's live weighings (a few rows), makes a
:class:`Ticket` in the staff's language (the structure, the date, kg by category, the total;
never a name nor a code) and hands it to :class:`TicketPrinter`, whose own thread opens the
printer and prints it. The counter never waits: the queue is bounded and never blocks, a
printer that is off, unplugged or unreachable costs a warning in the log and the status file's
``printer`` block, and the visit is recorded all the same. The thread ends when idle and starts
again with the next ticket.
"""

from __future__ import annotations

import importlib.util
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from common.i18n import _, language, ngettext
from common.text import visible
from common.units import format_mass

from .config import Config, PrinterSection
from .outcomes import Outcome, Result

if TYPE_CHECKING:  # python-escpos (the print extra) is imported only to print
    from escpos.escpos import Escpos  # type: ignore[import-untyped,unused-ignore]

__all__ = ["Ticket", "TicketPrinter", "attach_printer", "open_printer", "render", "ticket_for"]

log = logging.getLogger("station")

WAITING = 8  # tickets queued at most; more are dropped with a warning (the printer is stuck)
IDLE_S = 30.0  # the printing thread ends after this long without a ticket
# a visit closed by its timeout or by a restart: nobody is at the counter to take a ticket
UNATTENDED = ("timeout", "restart")


@dataclass(frozen=True, slots=True)
class Ticket:
    """What a ticket says, already in the staff's words: no name, no beneficiary code."""

    header: str
    when: str
    lines: tuple[tuple[str, str], ...]  # (category and item count, mass)
    total: tuple[str, str]
    footer: str = ""


class _Journal(Protocol):
    def get(self, seq: int) -> dict[str, Any] | None: ...

    def visit_weighings(self, visit: str) -> list[dict[str, Any]]: ...


def _local(recorded_at: str | None) -> str:
    """A journal time (UTC) as the counter reads it: local, dd/mm/yyyy hh:mm in French."""
    try:
        moment = datetime.fromisoformat(str(recorded_at).replace("Z", "+00:00"))
    except ValueError:
        moment = datetime.now(UTC)
    local = moment.astimezone()
    return local.strftime("%d/%m/%Y %H:%M" if language() == "fr" else "%Y-%m-%d %H:%M")


def ticket_for(journal: _Journal, config: Config, close_seq: int) -> Ticket | None:
    """The ticket of the visit that the ``visit_close`` record ``close_seq`` closed; None when
    that record is not a close, the visit had nothing weighed, or nobody is there to take it
    (a close by timeout or restart)."""
    closed = journal.get(close_seq)
    if closed is None or closed["kind"] != "visit_close" or not closed["visit"]:
        return None
    if closed["reason"] in UNATTENDED:
        return None
    weighings = journal.visit_weighings(closed["visit"])
    if not weighings:
        return None
    names = {c.code: c.name for c in config.categories}
    by_category: dict[str, list[int]] = {}
    for row in weighings:
        by_category.setdefault(str(row["category"] or "?"), []).append(int(row["net_mg"] or 0))
    lines = []
    for code, masses in by_category.items():
        label = f"{names.get(code, code)} ({len(masses)})"
        lines.append((visible(label), format_mass(sum(masses))))
    n = len(weighings)
    total_label = ngettext("Total: {n} item", "Total: {n} items", n).format(n=n)
    total = (total_label, format_mass(sum(int(r["net_mg"] or 0) for r in weighings)))
    printer = config.printer
    header = (printer.header if printer else None) or config.station.id
    footer = printer.footer if printer else ""
    return Ticket(visible(header), _local(closed["recorded_at"]), tuple(lines), total, footer)


def _row(left: str, right: str, columns: int) -> str:
    """``left`` and ``right`` on one line of ``columns`` characters (``left`` cut if needed)."""
    left, right = _plain(left), _plain(right)
    room = columns - len(right) - 1
    if len(left) > room:
        left = left[: max(0, room - 1)] + "."
    return left + " " * (columns - len(left) - len(right)) + right


def _plain(text: str) -> str:
    """Spaces a receipt printer's code pages have (format_mass groups with narrow spaces)."""
    return text.replace("\u202f", " ").replace("\xa0", " ")


def render(printer: Escpos, ticket: Ticket, columns: int = 42) -> None:
    """Print ``ticket`` on ``printer`` (any python-escpos printer; ``Dummy`` in tests)."""
    printer.hw("INIT")
    printer.set(align="center", bold=True, double_height=True)
    printer.textln(_plain(ticket.header)[:columns])
    printer.set_with_default(align="center")
    printer.textln(ticket.when)
    printer.set_with_default()
    printer.ln()
    for left, right in ticket.lines:
        printer.textln(_row(left, right, columns))
    printer.textln("-" * columns)
    printer.set_with_default(bold=True)
    printer.textln(_row(*ticket.total, columns))
    printer.set_with_default()
    if ticket.footer:
        printer.ln()
        printer.set_with_default(align="center")
        printer.textln(_plain(ticket.footer)[:columns])
        printer.set_with_default()
    printer.cut()


def open_printer(settings: PrinterSection) -> Escpos:
    """The python-escpos printer ``settings`` name, opened (raises when it cannot be)."""
    try:
        from escpos import printer as escpos_printer  # type: ignore[import-untyped,unused-ignore]
    except ImportError as exc:
        raise RuntimeError(_("python-escpos is not installed: pip install 'pesee[print]'")) from exc

    device: Escpos
    if settings.host is not None:
        device = escpos_printer.Network(settings.host, settings.port, timeout=settings.timeout)
    elif settings.usb is not None:
        if importlib.util.find_spec("usb") is None:  # escpos would fail later, and again in __del__
            raise RuntimeError(
                _("a USB printer by its id needs pyusb (pip install pyusb), or use its device")
            )
        vendor, product = (int(part, 16) for part in settings.usb.split(":"))
        device = escpos_printer.Usb(vendor, product, timeout=int(settings.timeout * 1000))
    else:
        device = escpos_printer.File(str(settings.device))
    device.open()
    return device


def _where(settings: PrinterSection) -> str:
    if settings.host is not None:
        return f"{settings.host}:{settings.port}"
    return settings.usb or str(settings.device)


class TicketPrinter:
    """Prints tickets on its own thread; :meth:`submit` never blocks nor raises."""

    def __init__(self, opener: Callable[[PrinterSection], Escpos] = open_printer) -> None:
        self.opener = opener
        self.jobs: queue.Queue[tuple[PrinterSection, Ticket]] = queue.Queue(maxsize=WAITING)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._state: dict[str, Any] = {"ok": None, "detail": "", "printed": 0, "failed": 0}
        self.done = threading.Condition()  # notified after each ticket (tests wait on it)

    def status(self) -> dict[str, Any]:
        """The status file's ``printer`` block: ok (None until a first ticket), detail, counts."""
        with self._lock:
            return dict(self._state)

    def submit(self, settings: PrinterSection, ticket: Ticket) -> None:
        try:
            self.jobs.put_nowait((settings, ticket))
        except queue.Full:
            self._record(False, _("ticket dropped: {n} tickets already wait").format(n=WAITING))
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="tickets", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                settings, ticket = self.jobs.get(timeout=IDLE_S)
            except queue.Empty:
                with self._lock:
                    if self.jobs.empty():  # a submit after this sees no thread and starts one
                        self._thread = None
                        return
                continue
            self._print(settings, ticket)

    def _print(self, settings: PrinterSection, ticket: Ticket) -> None:
        where = _where(settings)
        try:
            device = self.opener(settings)
            try:
                render(device, ticket, settings.columns)
            finally:
                device.close()
        except Exception as exc:  # any printer failure is a warning: the visit is recorded
            self._record(False, _("printer {where}: {error}").format(where=where, error=exc))
        else:
            self._record(True, where)

    def _record(self, ok: bool, detail: str) -> None:
        with self._lock:
            self._state["ok"] = ok
            self._state["detail"] = detail
            self._state["printed" if ok else "failed"] += 1
        if not ok:
            log.warning(_("ticket not printed (%s)"), detail)
        with self.done:
            self.done.notify_all()


class _Station(Protocol):
    """What :func:`attach_printer` needs of ``station.loop.Station``."""

    config: Config
    listeners: list[Callable[[Result], None]]
    status_extras: dict[str, Callable[[], Any]]

    @property
    def store(self) -> Any: ...


def attach_printer(station: _Station, printer: TicketPrinter | None = None) -> TicketPrinter:
    """Print a ticket at the end of each visit while ``[printer]`` is configured and enabled
    (read at each visit's end: a config reload takes effect at the next visit)."""
    tickets = printer or TicketPrinter()

    def on_result(result: Result) -> None:
        settings = station.config.printer
        if result.outcome is not Outcome.VISIT_CLOSED or result.seq is None:
            return
        if settings is None or not settings.enabled:
            return
        try:
            ticket = ticket_for(station.store, station.config, result.seq)
        except sqlite3.Error as exc:
            log.warning(_("ticket not printed (%s)"), exc)
            return
        if ticket is not None:
            tickets.submit(settings, ticket)

    station.listeners.append(on_result)

    def block() -> dict[str, Any] | None:
        settings = station.config.printer
        return tickets.status() if settings is not None and settings.enabled else None

    station.status_extras["printer"] = block
    return tickets
