"""The counter workflow end to end: the real daemon loop, the scale and scanner simulators on ptys,
and gpiozero mock pins for the button, LEDs and buzzer."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable
from pathlib import Path

from station.outcomes import Outcome
from station.sim import SimulatedCounter
from tests.support.counter import english_counter, weigh, weighings
from tests.support.helpers import beneficiary

VISITOR = beneficiary(123456)


def _until(cond: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.01)
    return cond()


def _rising(pin: object) -> int:
    states = [s.state for s in pin.states]  # type: ignore[attr-defined]
    return sum(1 for a, b in itertools.pairwise(states) if b and not a)


def _start_visit(c: SimulatedCounter, category: str = "CAT-VET") -> None:
    c.scan(VISITOR)
    assert c.next_result().outcome is Outcome.VISIT_OPENED
    c.scan(category)
    assert c.next_result().outcome is Outcome.CATEGORY_SET


def test_happy_path_records_one_weighing(counter: SimulatedCounter) -> None:
    green, red, buzzer = counter.pin("green"), counter.pin("red"), counter.pin("buzzer")
    _start_visit(counter)
    # the scan's short chirp (started before its result was published) ends before we watch
    assert _until(lambda: not counter.daemon.panel.playing)
    green.clear_states()
    buzzer.clear_states()
    result = weigh(counter, "1.250")
    assert result.outcome is Outcome.RECORDED
    assert result.text == "Recorded: 1.250 kg Vêtements"
    row = counter.store.get(result.seq or 0)
    assert row is not None
    assert row["kind"] == "weighing"
    assert row["net_mg"] == 1_250_000
    assert row["unit"] == "kg"
    assert row["stable"] == 1
    assert row["category"] == "CAT-VET"
    assert row["beneficiary"] == VISITOR
    assert row["referrer"] == "001"
    assert row["source"] == "scale"
    assert row["scale_id"] == "mt-sics:1126493049"
    assert row["raw"] == "S S      1.250 kg"
    assert row["boot_id"]
    # the panel said yes: green lit, one beep, red untouched
    assert _until(lambda: any(s.state for s in green.states))
    assert _until(lambda: _rising(buzzer) == 1)
    assert not red.state
    assert counter.store.verify().ok


def test_each_refusal_records_nothing_and_lights_red(tmp_path: Path) -> None:
    with english_counter(tmp_path, {"scale": {"capacity": "10 kg"}}) as counter:
        _each_refusal(counter)


def _each_refusal(counter: SimulatedCounter) -> None:
    red = counter.pin("red")
    counter.press()
    assert counter.next_result().outcome is Outcome.NO_BENEFICIARY
    assert _until(lambda: any(s.state for s in red.states))
    counter.scan(VISITOR)
    counter.next_result()
    counter.press()
    assert counter.next_result().outcome is Outcome.NO_CATEGORY
    counter.scan("CAT-HYG")
    counter.next_result()
    assert weigh(counter, "0.010").outcome is Outcome.BELOW_MINIMUM
    assert weigh(counter, "-0.500").outcome is Outcome.BELOW_MINIMUM
    counter.scale.set_overload(True)
    counter.press()
    assert counter.next_result().outcome is Outcome.OVERLOAD
    counter.scale.set_overload(False)
    counter.scale.set_underload(True)
    counter.press()
    assert counter.next_result().outcome is Outcome.UNDERLOAD
    counter.scale.set_underload(False)
    assert weigh(counter, "12.000", settle_s=0.02).outcome is Outcome.ABOVE_CAPACITY
    assert counter.store.count("weighing") == 0


def test_unstable_weight_is_refused_after_the_wait(tmp_path: Path) -> None:
    with english_counter(tmp_path, {"scale": {"stable_wait": 0.5}}) as c:
        _start_visit(c)
        c.scale.place("2.000", settle_s=float("inf"))  # never settles
        c.press()
        result = c.next_result()
        assert result.outcome is Outcome.UNSTABLE
        assert result.text == "Refused: unstable weight"
        assert c.store.count("weighing") == 0


def test_press_waits_for_the_weight_to_settle(counter: SimulatedCounter) -> None:
    _start_visit(counter)
    result = weigh(counter, "3.400", settle_s=0.6)  # within stable_wait (3 s)
    assert result.outcome is Outcome.RECORDED
    assert result.net_mg == 3_400_000


def test_same_item_twice_is_refused(counter: SimulatedCounter) -> None:
    _start_visit(counter)
    assert weigh(counter, "1.000").outcome is Outcome.RECORDED
    counter.press()
    assert counter.next_result().outcome is Outcome.SAME_ITEM
    # a second item of the same weight: the pan is emptied and loaded again
    counter.scale.place("0", settle_s=0.05)
    assert _until(lambda: (w := counter.station.snapshot.weight) is not None and w.net_mg == 0)
    assert weigh(counter, "1.000").outcome is Outcome.RECORDED
    assert counter.store.count("weighing") == 2


def test_hold_voids_the_last_record_of_the_visit(counter: SimulatedCounter) -> None:
    _start_visit(counter)
    first = weigh(counter, "1.000")
    second = weigh(counter, "2.000")
    counter.hold()
    voided = counter.next_result()
    assert voided.outcome is Outcome.VOIDED
    void = counter.store.get(voided.seq or 0)
    assert void is not None and void["kind"] == "void" and void["voids"] == second.seq
    counter.hold()
    assert counter.store.get(counter.next_result().seq or 0)["voids"] == first.seq  # type: ignore[index]
    counter.hold()
    assert counter.next_result().outcome is Outcome.NOTHING_TO_VOID
    # nothing deleted: both weighings are still in the journal
    assert counter.store.count("weighing") == 2
    assert counter.store.count("void") == 2


def test_visit_closes_on_end_code_and_new_beneficiary(counter: SimulatedCounter) -> None:
    _start_visit(counter)
    weigh(counter, "1.500")
    other = beneficiary(654321, "014")
    counter.scan(other)
    assert counter.next_result().outcome is Outcome.VISIT_CLOSED
    assert counter.next_result().outcome is Outcome.VISIT_OPENED
    closes = [r for r in counter.store.records() if r["kind"] == "visit_close"]
    assert closes[-1]["reason"] == "new_beneficiary"
    assert json.loads(str(closes[-1]["data"])) == {"items": 1, "net_mg": 1_500_000}
    counter.scan("FIN")
    result = counter.next_result()
    assert result.outcome is Outcome.VISIT_CLOSED
    counter.press()
    assert counter.next_result().outcome is Outcome.NO_BENEFICIARY
    opens = [r for r in counter.store.records() if r["kind"] == "visit_open"]
    assert [r["referrer"] for r in opens] == ["001", "014"]


def test_visit_times_out(tmp_path: Path) -> None:
    with english_counter(tmp_path, {"visit": {"timeout": 10}}) as c:
        _start_visit(c)
        c.station.counter.visit_deadline = time.monotonic()  # skip the ten idle seconds
        result = c.next_result(timeout=5)
        assert result.outcome is Outcome.VISIT_CLOSED
        assert list(c.store.records())[-1]["reason"] == "timeout"


def test_tare_and_zero_codes_drive_the_scale(counter: SimulatedCounter) -> None:
    _start_visit(counter)
    counter.scale.place("0.800", settle_s=0.0)
    assert _until(lambda: (w := counter.station.snapshot.weight) is not None and w.stable)
    counter.scan("TARE")
    assert counter.next_result().outcome is Outcome.TARED
    assert weigh(counter, "2.000").net_mg == 1_200_000
    counter.scale.place("1.000", settle_s=float("inf"))
    counter.scan("ZERO")
    refused = counter.next_result()
    assert refused.outcome is Outcome.SCALE_REFUSED


def test_container_tare_is_subtracted_and_kept(counter: SimulatedCounter) -> None:
    _start_visit(counter)
    counter.scan("BAC-1")
    assert counter.next_result().outcome is Outcome.CONTAINER_SET
    result = weigh(counter, "1.450")
    assert result.net_mg == 1_000_000
    row = counter.store.get(result.seq or 0)
    assert row is not None
    assert row["tare_mg"] == 450_000
    assert json.loads(str(row["data"])) == {"container": "BAC-1", "container_tare_mg": 450_000}


def test_operator_and_separate_referrer(counter: SimulatedCounter) -> None:
    counter.scan("OP-0001")
    assert counter.next_result().outcome is Outcome.OPERATOR_SET
    counter.scan("S-014")
    assert counter.next_result().text == "Referring structure: Centre hospitalier"
    counter.scan(beneficiary(777, "001"))
    counter.next_result()
    counter.scan("CAT-BEBE")
    counter.next_result()
    row = counter.store.get(weigh(counter, "0.750").seq or 0)
    assert row is not None
    assert (row["operator"], row["referrer"]) == ("OP-0001", "014")  # scanned apart wins


def test_bad_codes_are_refused(counter: SimulatedCounter) -> None:
    counter.scan("NOPE-42")
    result = counter.next_result()
    assert (result.outcome, result.text) == (Outcome.UNKNOWN_CODE, "Unknown code: NOPE-42")
    wrong = VISITOR[:-1] + str((int(VISITOR[-1]) + 3) % 10)
    counter.scan(wrong)
    assert counter.next_result().outcome is Outcome.MISREAD
    counter.scanner.send_raw(b"\xff\xfe\x00garbage\r\n")
    assert counter.next_result().outcome is Outcome.MISREAD  # a garbled read is signalled too
    counter.scan("CAT-VET")
    assert counter.next_result().outcome is Outcome.CATEGORY_SET
    assert counter.store.count() == 0


def test_garbage_on_the_scale_line_is_ignored(counter: SimulatedCounter) -> None:
    _start_visit(counter)
    counter.scale.garbage(b"\x00\xffS S    12.5\r\nS X 1 kg\r\n\x02,0 00")
    assert weigh(counter, "1.100").net_mg == 1_100_000
    assert counter.daemon.scale.alive


def test_scale_unplugged_then_back(counter: SimulatedCounter) -> None:
    _start_visit(counter)
    counter.scale.unplug()
    assert _until(lambda: not counter.station.snapshot.scale_ok)
    counter.press()
    assert counter.next_result().outcome is Outcome.NO_SCALE
    counter.scale.replug()
    assert _until(lambda: counter.station.snapshot.scale_ok, timeout=15)
    assert weigh(counter, "0.500").outcome is Outcome.RECORDED


def test_visit_survives_a_restart(tmp_path: Path) -> None:
    with english_counter(tmp_path) as c:
        _start_visit(c)
        weigh(c, "1.000")
    with english_counter(tmp_path) as c:
        assert c.station.snapshot.beneficiary is not None
        assert len(c.station.snapshot.items) == 1
        c.scan("CAT-VET")
        c.next_result()
        result = weigh(c, "2.000")
        assert result.outcome is Outcome.RECORDED
        rows = weighings(c)
        assert rows[0]["visit"] == rows[1]["visit"]
        assert c.store.verify().ok


def test_french_by_default(tmp_path: Path) -> None:
    with SimulatedCounter(tmp_path, {"station": {"language": "fr"}}) as c:
        _start_visit(c)
        assert weigh(c, "1.250").text == "Enregistré : 1,250 kg Vêtements"
        c.press()
        assert c.next_result().text == "Refusé : article déjà enregistré, retirez-le de la balance"


def test_status_file_for_the_cli(counter: SimulatedCounter) -> None:
    _start_visit(counter)
    weigh(counter, "1.000")
    path = counter.config.status_path
    assert _until(lambda: path.exists() and json.loads(path.read_text())["last_seq"] >= 2)
    status = json.loads(path.read_text())
    assert status["scale"]["ok"] is True
    assert status["visit"]["items"] == 1


def test_streaming_scale_workflow(tmp_path: Path) -> None:
    """The same workflow with a Toledo continuous-output scale (no request, frames streamed)."""
    with SimulatedCounter(
        tmp_path, {"station": {"language": "en"}}, protocol="toledo-continuous"
    ) as c:
        _start_visit(c)
        result = weigh(c, "4.560", settle_s=0.2)
        assert result.outcome is Outcome.RECORDED
        row = c.store.get(result.seq or 0)
        assert row is not None
        assert (row["net_mg"], row["gross_mg"], row["tare_mg"]) == (4_560_000, 4_560_000, 0)
        assert row["scale_id"] == "toledo-continuous"
        assert row["raw"].startswith("\\x02")
        c.scan("TARE")
        assert c.next_result().outcome is Outcome.SCALE_REFUSED
        # a streamed frame garbled on the line is dropped, and counted for the technician
        from drivers.scale.toledo_continuous import checksum_of

        head = b"\x02,0 0012x4000000\r"  # framed right, checksum right, digits wrong
        c.scale.garbage(head + bytes([checksum_of(head)]))
        assert _until(lambda: c.station.snapshot.scale_rejected_frames >= 1)


def test_double_read_of_a_code_is_ignored(tmp_path: Path) -> None:
    with english_counter(tmp_path, {"scanner": {"dedupe_window": 5.0}}) as c:
        c.scan("CAT-VET")
        assert c.next_result().outcome is Outcome.CATEGORY_SET
        c.scan("CAT-VET")  # the scanner read the sheet twice
        c.scan("CAT-HYG")
        assert c.next_result().text == "Category: Hygiène"
        assert c.drain() == []


def test_storage_failure_refuses_and_corrupts_nothing(counter: SimulatedCounter) -> None:
    _start_visit(counter)
    assert weigh(counter, "1.000").outcome is Outcome.RECORDED
    red = counter.pin("red")
    # the card turns read-only (as a worn SD card does): the next commit fails
    counter.daemon.store._conn.execute("PRAGMA query_only = ON")
    result = weigh(counter, "2.000")
    assert result.outcome is Outcome.STORE_ERROR
    assert result.text == "Refused: cannot save (storage problem), call the technician"
    assert _until(lambda: red.state)  # red stays lit until the next action
    counter.daemon.store._conn.execute("PRAGMA query_only = OFF")
    counter.scale.place("0", settle_s=0.02)
    assert weigh(counter, "2.000").outcome is Outcome.RECORDED
    assert [r["seq"] for r in counter.store.records()] == [1, 2, 3]
    assert counter.store.verify().ok


def test_visit_change_cancels_a_waiting_press(counter: SimulatedCounter) -> None:
    _start_visit(counter)
    counter.scale.place("2.000", settle_s=float("inf"))
    counter.press()
    counter.scan("FIN")
    assert counter.next_result().outcome is Outcome.CANCELLED
    assert counter.next_result().outcome is Outcome.VISIT_CLOSED
    _start_visit(counter)
    counter.press()
    counter.scan(beneficiary(999))
    assert counter.next_result().outcome is Outcome.CANCELLED
    assert counter.store.count("weighing") == 0


def test_weighing_keeps_what_was_scanned_at_the_press(counter: SimulatedCounter) -> None:
    _start_visit(counter)
    counter.scale.place("1.300", settle_s=0.4)
    counter.press()
    counter.scan("CAT-HYG")  # scanned while the weight settles: for the next item
    results = [counter.next_result(), counter.next_result()]
    recorded = next(r for r in results if r.outcome is Outcome.RECORDED)
    assert counter.store.get(recorded.seq or 0)["category"] == "CAT-VET"  # type: ignore[index]


def test_reweigh_after_a_void(counter: SimulatedCounter) -> None:
    _start_visit(counter)
    assert weigh(counter, "1.000").outcome is Outcome.RECORDED
    counter.hold()
    assert counter.next_result().outcome is Outcome.VOIDED
    counter.scan("CAT-BEBE")
    counter.next_result()
    counter.press()  # the same item, now in the right category
    assert counter.next_result().outcome is Outcome.RECORDED


def test_referrer_scanned_apart_does_not_leak_to_the_next_visit(counter: SimulatedCounter) -> None:
    _start_visit(counter)
    counter.scan("S-014")
    counter.next_result()
    counter.scan("FIN")
    counter.next_result()
    counter.scan(beneficiary(4242, "001"))
    counter.next_result()
    opens = [r for r in counter.store.records() if r["kind"] == "visit_open"]
    assert opens[-1]["referrer"] == "001"


def test_yesterdays_open_visit_is_closed_not_restored(tmp_path: Path) -> None:
    from station.store import Store

    store_path = tmp_path / "data" / "station.db"
    with Store(store_path, "ressourcerie-nord-1") as store:
        store.append(
            "visit_open", visit="v1", beneficiary=VISITOR, boot_id="an-old-boot", mono_ns=1
        )
    with english_counter(tmp_path) as c:
        assert c.station.snapshot.beneficiary is None
        rows = list(c.store.records())
        assert (rows[-1]["kind"], rows[-1]["reason"]) == ("visit_close", "restart")
        c.press()
        assert c.next_result().outcome is Outcome.NO_BENEFICIARY


def test_absurd_weight_is_never_recorded(counter: SimulatedCounter) -> None:
    _start_visit(counter)
    counter.scale.garbage(b"")  # keep the link busy-free; the frame below is what counts
    from drivers.base import Reading
    from station.events import WeightRead

    counter.press()
    huge = Reading(net_mg=10**13, unit="t", stable=True, raw=b"S S 10000 t")
    counter.station.post(WeightRead(huge, time.monotonic()))
    assert counter.next_result().outcome is Outcome.ABOVE_CAPACITY
    assert counter.store.count("weighing") == 0


def test_counting_by_sampling(counter: SimulatedCounter) -> None:
    """No counting scale: 10 pieces on the pan and the ECH-10 sheet teach the piece weight."""
    _start_visit(counter, "CAT-HYG")
    counter.scale.place("0.234", settle_s=0.05)  # ten soaps of 23.4 g
    counter.scan("ECH-10")
    sampled = counter.next_result()
    assert sampled.outcome is Outcome.SAMPLED
    assert sampled.text == "Counting: 10 pieces of Hygiène, 23.4 g per piece"
    result = weigh(counter, "0.468")
    row = counter.store.get(result.seq or 0)
    assert row is not None
    assert (row["pieces"], row["unit_weight_mg"], row["pieces_computed"]) == (20, 23_400, 1)
    assert counter.store.piece_weights() == {"CAT-HYG": 23_400}
    counter.scan("ECH-abc")
    assert counter.next_result().outcome is Outcome.MISREAD


def test_low_disk_refuses_with_its_own_signal(tmp_path: Path) -> None:
    import shutil

    free_mb = shutil.disk_usage(tmp_path).free // (1024 * 1024)
    with english_counter(tmp_path, {"station": {"min_free_mb": min(free_mb + 1024, 100_000)}}) as c:
        c.scan(VISITOR)
        result = c.next_result()
        assert result.outcome is Outcome.DISK_FULL
        assert result.text == "Refused: the storage is full, call the technician"
        assert _until(lambda: c.pin("red").state)  # red stays on: call the technician
        assert c.store.count() == 0
        assert c.store.verify().ok


def test_store_hitting_its_page_limit_stays_intact(counter: SimulatedCounter) -> None:
    """A really full card, as SQLite sees it (SQLITE_FULL): refused, nothing half-written."""
    _start_visit(counter)
    assert weigh(counter, "1.000").outcome is Outcome.RECORDED
    pages = counter.daemon.store._conn.execute("PRAGMA page_count").fetchone()[0]
    counter.daemon.store._conn.execute(f"PRAGMA max_page_count = {pages}")
    results = []
    for i in range(60):  # the last page fills up after a few records
        results.append(weigh(counter, f"{2 + i * 0.01:.3f}").outcome)
        if results[-1] is Outcome.STORE_ERROR:
            break
    assert results[-1] is Outcome.STORE_ERROR
    counter.daemon.store._conn.execute("PRAGMA max_page_count = 1073741823")
    assert counter.store.verify().ok
    seqs = [r["seq"] for r in counter.store.records()]
    assert seqs == list(range(1, len(seqs) + 1))


def test_the_category_carried_into_a_new_visit_is_shown(counter: SimulatedCounter) -> None:
    """The next person's items would go to the last person's category: say it at the start."""
    _start_visit(counter)
    counter.scan("FIN")
    counter.next_result()
    counter.scan(beneficiary(4242))
    opened = counter.next_result()
    assert opened.outcome is Outcome.VISIT_OPENED
    assert opened.text.endswith(", category Vêtements")
    assert counter.station.snapshot.category == "CAT-VET"


def test_the_category_resets_at_a_new_visit_when_configured(tmp_path: Path) -> None:
    with english_counter(tmp_path, {"visit": {"category_resets": True}}) as c:
        _start_visit(c)
        c.scan("FIN")
        c.next_result()
        c.scan(beneficiary(4242))
        assert c.next_result().outcome is Outcome.VISIT_OPENED
        assert c.station.snapshot.category is None
        c.press()
        assert c.next_result().outcome is Outcome.NO_CATEGORY


def test_a_scan_right_after_start_is_seen(tmp_path: Path) -> None:
    """start() returns once the station's scanner has its port open AND flushed (pyserial
    flushes stale input after opening): a code sent before that flush would be lost."""
    for run in range(3):
        with english_counter(tmp_path / str(run)) as c:
            assert c.daemon.scanner_ready.is_set()
            c.scan(VISITOR)
            assert c.next_result().outcome is Outcome.VISIT_OPENED


def test_a_net_weighing_keeps_the_scales_net_marker(tmp_path: Path) -> None:
    # SMA frames say N (net) after a tare, without the tare's value: the record keeps the fact
    overrides = {"station": {"language": "en"}}
    with SimulatedCounter(tmp_path, overrides, protocol="sma") as c:
        c.scan(beneficiary(5))
        assert c.next_result().outcome is Outcome.VISIT_OPENED
        c.scan("CAT-VET")
        assert c.next_result().outcome is Outcome.CATEGORY_SET
        c.scale.place("0.500", settle_s=0)
        assert c.scale.tare()[0] == "A"
        c.scale.place("1.750", settle_s=0.05)
        c.press()
        net = c.next_result()
        assert net.outcome is Outcome.RECORDED, net.text
        row = c.store.get(net.seq or 0)
        assert row is not None and row["net_mg"] == 1_250_000
        assert json.loads(str(row["data"]))["weighed"] == "net"


def test_a_gross_weighing_says_gross(tmp_path: Path) -> None:
    with SimulatedCounter(tmp_path, {"station": {"language": "en"}}, protocol="sma") as c:
        c.scan(beneficiary(6))
        assert c.next_result().outcome is Outcome.VISIT_OPENED
        c.scan("CAT-VET")
        assert c.next_result().outcome is Outcome.CATEGORY_SET
        result = weigh(c, "0.800")
        assert result.outcome is Outcome.RECORDED, result.text
        row = c.store.get(result.seq or 0)
        assert row is not None
        assert json.loads(str(row["data"]))["weighed"] == "gross"
