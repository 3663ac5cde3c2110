"""The end-of-visit ticket: its ESC/POS bytes (python-escpos's Dummy printer), what it says from a
real journal, a real network printer socket receiving it, and a printer that is not there
costing a warning, never the visit."""

from __future__ import annotations

import logging
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from escpos.printer import Dummy  # the [print] extra, in the test extra

from common.i18n import speaking
from station.config import PrinterSection
from station.outcomes import Outcome
from station.sim import SimulatedCounter, example_config
from station.store import Store
from station.ticket import Ticket, TicketPrinter, render, ticket_for
from tests.support.counter import english_counter, weigh
from tests.support.helpers import beneficiary

VISITOR = beneficiary(123456)

TICKET = Ticket(
    "Ressourcerie du Nord",
    "05/12/2026 14:32",
    (("Vêtements (2)", "1,700 kg"), ("Jouets (1)", "0,800 kg")),
    ("Total : 3 articles", "2,500 kg"),
    "Merci et à bientôt",
)
RESET = b"\x1b!\x00\x1b!\x00\x1b!\x00\x1b{\x00\x1db\x00\x1bE\x00\x1b-\x00\x1bM\x00"
# ESC @ (initialise), the header centred, bold, double height; the lines in code page 437
# (ESC t 0: "ê" is 0x88, "à" 0x85, "ô" 0x93); GS V 0 (cut) after ESC d 6 (feed)
EXPECTED = (
    b"\x1b@\x1b!\x00\x1b!\x00\x1b!\x10\x1bE\x01\x1ba\x01\x1bt\x00Ressourcerie du Nord\n"
    + RESET
    + b"\x1ba\x01\x1dB\x0005/12/2026 14:32\n"
    + RESET
    + b"\x1ba\x00\x1dB\x00\n"
    + b"V\x88tements (2)           1,700 kg\n"
    + b"Jouets (1)              0,800 kg\n"
    + b"-" * 32
    + b"\n"
    + b"\x1b!\x00\x1b!\x00\x1b!\x00\x1b{\x00\x1db\x00\x1bE\x01\x1b-\x00\x1bM\x00"
    + b"\x1ba\x00\x1dB\x00Total : 3 articles      2,500 kg\n"
    + RESET
    + b"\x1ba\x00\x1dB\x00\n"
    + RESET
    + b"\x1ba\x01\x1dB\x00Merci et \x85 bient\x93t\n"
    + RESET
    + b"\x1ba\x00\x1dB\x00\x1bd\x06\x1dV\x00"
)


def dummy_bytes(ticket: Ticket, columns: int = 42) -> bytes:
    printer = Dummy()
    render(printer, ticket, columns)
    return bytes(printer.output)


def test_the_ticket_bytes_on_escpos_dummy_printer() -> None:
    assert dummy_bytes(TICKET, 32) == EXPECTED


def test_a_long_category_is_cut_to_the_line() -> None:
    long = Ticket("X", "d", (("A" * 60, "1,000 kg"),), ("Total", "1,000 kg"))
    lines = dummy_bytes(long, 32).split(b"\n")
    assert b"A" * 22 + b". 1,000 kg" in lines


def _journal(path: Path, reason: str = "end_code") -> tuple[Store, int]:
    """A real journal: one visit, three weighings in two categories, one of them voided."""
    store = Store(path, "st-1")
    clock = {"boot_id": "b", "mono_ns": 1, "clock_synced": 1}
    visit = {"visit": "v-1", "beneficiary": VISITOR, "referrer": "001"}
    store.append("visit_open", **visit, **clock)
    first = store.append("weighing", **visit, category="CAT-VET", net_mg=1_200_000, **clock)
    store.append("weighing", **visit, category="CAT-VET", net_mg=500_000, **clock)
    store.append("weighing", **visit, category="CAT-ALIM", net_mg=800_000, **clock)
    store.append("void", **visit, voids=first["seq"], **clock)
    at = "2026-12-05T13:32:00.000Z"
    close = store.append("visit_close", **visit, reason=reason, recorded_at=at, **clock)
    return store, int(close["seq"])


def test_the_ticket_of_a_visit_leaves_voided_items_and_names_out(tmp_path: Path) -> None:
    config = example_config(
        {"printer": {"host": "127.0.0.1", "header": "Ressourcerie du Nord", "footer": "Merci"}}
    )
    store, close = _journal(tmp_path / "s.db")
    with speaking("fr"):
        ticket = ticket_for(store, config, close)
    store.close()
    assert ticket is not None
    assert ticket.header == "Ressourcerie du Nord"
    assert ticket.lines == (("Vêtements (1)", "0,500 kg"), ("Alimentaire (1)", "0,800 kg"))
    assert ticket.total == ("Total : 2 articles", "1,300 kg")
    assert ticket.when.startswith("05/12/2026")
    printed = dummy_bytes(ticket)
    assert VISITOR.encode() not in printed and b"001" not in printed  # no code, no structure


def test_no_ticket_for_a_record_that_closes_nothing(tmp_path: Path) -> None:
    store, close = _journal(tmp_path / "s.db")
    try:
        assert ticket_for(store, example_config(), close - 1) is None
    finally:
        store.close()


@pytest.mark.parametrize("reason", ["timeout", "restart"])
def test_no_ticket_when_nobody_is_at_the_counter(tmp_path: Path, reason: str) -> None:
    """A visit closed by its timeout or a restart: the person has gone, no paper is wasted."""
    store, close = _journal(tmp_path / "s.db", reason)
    try:
        assert ticket_for(store, example_config(), close) is None
    finally:
        store.close()


class PrinterSocket:
    """A network receipt printer's raw port (9100): every connection's bytes, kept."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.jobs: list[bytes] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _addr = self.server.accept()
            except OSError:
                return
            with conn:
                data = b""
                while chunk := conn.recv(4096):
                    data += chunk
                self.jobs.append(data)

    def close(self) -> None:
        self.server.close()
        self.thread.join(5)


@pytest.fixture
def printer_socket() -> Iterator[PrinterSocket]:
    printer = PrinterSocket()
    yield printer
    printer.close()


def _until(cond: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.01)
    return cond()


def _visit(c: SimulatedCounter) -> None:
    c.scan(VISITOR)
    assert c.next_result().outcome is Outcome.VISIT_OPENED
    c.scan("CAT-VET")
    assert c.next_result().outcome is Outcome.CATEGORY_SET
    assert weigh(c, "1.250").outcome is Outcome.RECORDED
    c.scale.remove()
    c.scan("FIN")
    assert c.next_result().outcome is Outcome.VISIT_CLOSED


def test_a_network_printer_receives_the_ticket(
    tmp_path: Path, printer_socket: PrinterSocket
) -> None:
    printer = {"host": "127.0.0.1", "port": printer_socket.port, "header": "Ressourcerie"}
    with english_counter(tmp_path, {"printer": printer}) as c:
        c.start()
        _visit(c)
        assert _until(lambda: len(printer_socket.jobs) == 1)
        close_seq = next(iter(c.store.records(kind="visit_close")))["seq"]
        assert c.station.tickets.status()["ok"] is True
    with Store(c.config.store_path, c.config.station.id) as store, speaking("en"):
        expected = ticket_for(store, c.config, close_seq)
    assert expected is not None
    assert expected.lines == (("Vêtements (1)", "1.250 kg"),)
    assert printer_socket.jobs == [dummy_bytes(expected)]


def test_an_unreachable_printer_is_a_warning_and_the_visit_is_recorded(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        closed_port = probe.getsockname()[1]  # nobody listens there once closed
    with english_counter(tmp_path, {"printer": {"host": "127.0.0.1", "port": closed_port}}) as c:
        c.start()
        with caplog.at_level(logging.WARNING, logger="station"):
            _visit(c)
            assert _until(lambda: c.station.tickets.status()["failed"] == 1)
        assert [r["kind"] for r in c.store.records()] == ["visit_open", "weighing", "visit_close"]
        status = c.station.tickets.status()
        assert status["ok"] is False and f"127.0.0.1:{closed_port}" in status["detail"]
        assert c.station.status_extras["printer"]() == status  # the status file's block
    assert any("ticket not printed" in r.getMessage() for r in caplog.records)


def test_a_stuck_printer_never_blocks_the_counter() -> None:
    """A printer that hangs holds one ticket; the queue fills, and then tickets are dropped
    with a warning: submit returns at once every time."""
    release = threading.Event()
    sent: list[bytes] = []

    class Stuck(Dummy):  # type: ignore[misc]
        def close(self) -> None:
            sent.append(bytes(self.output))

    def opener(settings: PrinterSection) -> Dummy:
        release.wait(30)
        return Stuck()

    tickets = TicketPrinter(opener)
    settings = PrinterSection(host="127.0.0.1")
    tickets.submit(settings, TICKET)
    assert _until(tickets.jobs.empty)  # the thread holds it, stuck in the printer
    for _n in range(9):  # eight wait, one is dropped
        tickets.submit(settings, TICKET)
    assert tickets.status()["failed"] == 1
    assert "dropped" in tickets.status()["detail"]
    release.set()
    assert _until(lambda: len(sent) == 9)
    assert sent[0] == dummy_bytes(TICKET)


def test_config_check_warns_of_a_missing_printer_device(tmp_path: Path) -> None:
    """`station config check`: a printer device that is not there is a warning (the daemon
    starts anyway and prints when it comes back)."""
    from station.config import config_warnings

    gone = tmp_path / "lp0"
    config = example_config({"printer": {"device": str(gone)}})
    assert any(f"printer.device: {gone} does not exist" in w for w in config_warnings(config))
    gone.write_bytes(b"")
    assert not any("printer" in w for w in config_warnings(config))


def test_a_device_printer_gets_the_bytes(tmp_path: Path) -> None:
    """``device = "/dev/usb/lp0"`` (the kernel's usblp): the same bytes, written to the file."""
    from station.ticket import open_printer

    device = tmp_path / "lp0"
    device.write_bytes(b"")
    settings = PrinterSection(device=device)
    printer = open_printer(settings)
    render(printer, TICKET, settings.columns)
    printer.close()
    assert device.read_bytes() == dummy_bytes(TICKET)


def test_a_usb_printer_without_pyusb_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from station.ticket import open_printer

    # a station installed without pyusb (the [print] extra brings it; Debian's may not)
    monkeypatch.setitem(sys.modules, "usb", None)

    with pytest.raises(RuntimeError, match="needs pyusb"):
        open_printer(PrinterSection(usb="04b8:0e15"))
