"""``station manual-entry``: PIN or badge required, checked like a weighing, flagged manual."""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from station.codes import CodeBook
from station.config import Config
from station.control import ControlServer, Pending, daemon_handlers, request
from station.events import ManualEntry
from station.loop import Station
from station.manual import ManualError, ManualRequest, check, parse_weight
from station.pinhash import hash_pin, verify_pin
from station.sim import example_config
from station.store import Store
from tests.support.helpers import beneficiary

PIN = "4821"
STATION = "ressourcerie-nord-1"


def _with_technicians(config_file: Path) -> Path:
    # few iterations: the tests check the logic, not the cost of guessing
    text = config_file.read_text(encoding="utf-8")
    text += (
        "\n[[technicians]]\n"
        'name = "Alice"\n'
        f'pin = "{hash_pin(PIN, iterations=1000)}"\n'
        "\n[[technicians]]\n"
        'name = "Bob"\n'
        'badge = "TECH-BOB"\n'
    )
    config_file.write_text(text, encoding="utf-8")
    return config_file


def _station(
    config: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k != "PESEE_PIN"}
    return subprocess.run(
        [sys.executable, "-m", "station", "--lang", "en", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        env={**base, **(env or {})},
    )


def _entry(*extra: str) -> list[str]:
    return [
        "manual-entry",
        "--weight",
        "2,5kg",
        "--category",
        "CAT-VET",
        "--beneficiary",
        beneficiary(77),
        *extra,
    ]


def _records(tmp_path: Path) -> list[dict[str, object]]:
    db = tmp_path / "data" / "station.db"
    if not db.exists():
        return []
    with Store(db, STATION) as store:
        return list(store.records())


def test_refused_without_a_pin(config_file: Path, tmp_path: Path) -> None:
    config = _with_technicians(config_file)
    done = _station(config, *_entry())
    assert done.returncode == 77, done.stderr
    assert done.stderr.strip() == (
        "Refused: a technician PIN or badge is required; nothing recorded"
    )
    assert _records(tmp_path) == []


def test_refused_with_a_wrong_pin_or_badge(config_file: Path, tmp_path: Path) -> None:
    config = _with_technicians(config_file)
    done = _station(config, *_entry("--pin", "0000"))
    assert done.returncode == 77
    assert "wrong PIN" in done.stderr and "Traceback" not in done.stderr
    done = _station(config, *_entry(), env={"PESEE_PIN": "1111"})
    assert done.returncode == 77
    done = _station(config, *_entry("--badge", "OP-0001"))  # an operator is no technician
    assert done.returncode == 77 and "unknown technician badge" in done.stderr
    assert _records(tmp_path) == []


def test_refused_on_a_station_without_technicians(config_file: Path, tmp_path: Path) -> None:
    done = _station(config_file, *_entry("--pin", PIN))
    assert done.returncode == 77
    assert "no [[technicians]]" in done.stderr
    assert _records(tmp_path) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("--weight", "abc"), "'abc' is not a weight"),
        (("--weight", "2.5"), "give a number and its unit"),
        (("--weight", "20kg"), "above the scale's capacity 15.000 kg"),
        (("--weight", "5 g"), "below the minimum weight 0.020 kg"),
        (("--category", "CAT-NOPE"), "unknown category 'CAT-NOPE'; known: CAT-VET (Vêtements)"),
        (("--beneficiary", "B0011234560"), "wrong check digit or length"),
        (("--beneficiary", "CAT-VET"), "is not a beneficiary code"),
        (("--referrer", "999"), "unknown referring structure '999'"),
    ],
)
def test_refused_like_a_scale_weighing(
    config_file: Path, tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    config = _with_technicians(config_file)
    args = _entry("--pin", PIN)
    flag, value = change
    if flag in args:
        args[args.index(flag) + 1] = value
    else:
        args += [flag, value]
    done = _station(config, *args)
    assert done.returncode == 65, done.stdout + done.stderr
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert _records(tmp_path) == []


def test_recorded_flagged_manual_with_the_technician(config_file: Path, tmp_path: Path) -> None:
    config = _with_technicians(config_file)
    with Store(tmp_path / "data" / "station.db", STATION) as store:
        store.append("weighing", net_mg=1000, source="scale")
    done = _station(
        config,
        *_entry("--weight", "750 g", "--note", "scale broken", "--json"),
        env={"PESEE_PIN": PIN},
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out == {
        "ok": True,
        "via": "journal",
        "seqs": [2, 3],
        "technician": "Alice",
        "source": "manual",
    }
    rows = _records(tmp_path)
    assert [(r["seq"], r["source"], r["net_mg"]) for r in rows[1:]] == [
        (2, "manual", 2_500_000),
        (3, "manual", 750_000),
    ]
    manual = rows[1]
    assert manual["kind"] == "weighing" and manual["operator"] == "Alice"
    assert manual["category"] == "CAT-VET" and manual["referrer"] == "001"
    assert rows[1]["visit"] == rows[2]["visit"]  # one entry, one visit
    data = json.loads(str(manual["data"]))
    assert len(data.pop("request")) == 32  # the request's id: a retry is recorded once
    assert data == {"auth": "pin", "note": "scale broken", "technician": "Alice"}
    verify = _station(config, "db", "verify")
    assert verify.returncode == 0 and "Journal OK: 3 records" in verify.stdout


def test_badge_and_category_by_name(config_file: Path, tmp_path: Path) -> None:
    config = _with_technicians(config_file)
    done = _station(
        config,
        "manual-entry",
        "--weight",
        "1.2 kg",
        "--category",
        "alimentaire",
        "--beneficiary",
        beneficiary(78, "014"),
        "--badge",
        "TECH-BOB",
    )
    assert done.returncode == 0, done.stderr
    assert "Recorded by hand (record 1): 1.200 kg Alimentaire" in done.stdout
    assert "technician Bob" in done.stdout
    (row,) = _records(tmp_path)
    assert (row["operator"], row["category"], row["referrer"]) == ("Bob", "CAT-ALIM", "014")


def test_hash_pin_makes_a_config_line_and_clear_pins_are_refused(config_file: Path) -> None:
    done = _station(config_file, "technician", "hash-pin", "--name", "Alice", "--pin", "13579")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[:2] == ["[[technicians]]", 'name = "Alice"']
    stored = lines[2].split('"')[1]
    assert verify_pin("13579", stored) and not verify_pin("13578", stored)
    assert "13579" not in done.stdout
    text = config_file.read_text(encoding="utf-8")
    config_file.write_text(text + "\n" + done.stdout, encoding="utf-8")
    assert _station(config_file, "config", "check").returncode == 0
    config_file.write_text(
        text + '\n[[technicians]]\nname = "Eve"\npin = "13579"\n', encoding="utf-8"
    )
    done = _station(config_file, "config", "check")
    assert done.returncode == 78
    assert "technicians[0].pin: not a PIN hash" in done.stderr
    done = _station(config_file, "technician", "hash-pin", "--pin", "12")
    assert done.returncode == 65 and "4 to 64 characters" in done.stderr


def _append_many(path: str, n: int) -> None:
    with Store(path, STATION) as store:
        for i in range(n):
            store.append("weighing", net_mg=i + 1, source="manual")


def test_appends_from_several_processes_keep_one_chain(tmp_path: Path) -> None:
    """What lets a technician's command write while another process holds the journal."""
    path = str(tmp_path / "station.db")
    Store(path, STATION).close()
    ctx = multiprocessing.get_context("spawn")
    writers = [ctx.Process(target=_append_many, args=(path, 60)) for _ in range(3)]
    for w in writers:
        w.start()
    deadline = time.monotonic() + 60
    for w in writers:
        w.join(max(0.1, deadline - time.monotonic()))
        assert w.exitcode == 0
    with Store(path, STATION) as store:
        report = store.verify()
        assert report.ok, report.problems
        assert (report.records, report.last_seq) == (180, 180)


# -- review fixes: one transaction, request ids, unknown results, caps, truthful auth ----------

# aborts the insert of one weight: a real SQLite failure in the middle of a request
_FAIL_750G = (
    "CREATE TRIGGER fail_750g BEFORE INSERT ON records WHEN NEW.net_mg = 750000 "
    "BEGIN SELECT RAISE(ABORT, 'disk trouble'); END"
)


def _sql(path: Path, sql: str) -> None:
    """Change the journal's schema from another connection (the store's own is its own)."""
    raw = sqlite3.connect(path)
    try:
        raw.execute(sql)
        raw.commit()
    finally:
        raw.close()


def _live_config(tmp_path: Path, **scale: object) -> Config:
    return example_config(
        {
            "station": {
                "data_dir": str(tmp_path / "data"),
                "runtime_dir": str(tmp_path / "run"),
                "language": "en",
            },
            "scale": scale,
            "technicians": [
                {"name": "Alice", "pin": hash_pin(PIN, iterations=1000)},
                {"name": "Bob", "badge": "TECH-BOB"},
            ],
        }
    )


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Station]:
    """A real station loop on a real journal, running in its own thread."""
    config = _live_config(tmp_path)
    store = Store(config.store_path, config.station.id)
    station = Station(config, store)
    thread = threading.Thread(target=station.run, daemon=True)
    thread.start()
    try:
        yield station
    finally:
        station.stop("test")
        thread.join(10)
        store.close()
    assert not thread.is_alive()


def _request(*weights: str, **over: Any) -> ManualRequest:
    fields: dict[str, Any] = {
        "weights_mg": tuple(parse_weight(w) for w in weights),
        "category": "CAT-VET",
        "beneficiary": beneficiary(77),
        "technician": "Alice",
        **over,
    }
    return ManualRequest(**fields)


def _post(station: Station, entry: ManualRequest) -> dict[str, Any]:
    pending = Pending()
    station.post(ManualEntry(entry, pending))
    reply = pending.wait(10)
    assert reply is not None, "the loop did not answer"
    return reply


def test_a_store_failure_part_way_records_nothing(live: Station) -> None:
    _sql(live.store.path, _FAIL_750G)
    reply = _post(live, _request("2,5kg", "750g", "1kg"))
    assert reply["ok"] is False and reply["kind"] == "store"
    assert "nothing recorded" in reply["error"] and "seqs" not in reply
    assert live.store.count() == 0
    assert live.store.last_seq == 0  # the in-memory head went back with the rollback
    reply = _post(live, _request("2,5kg", "1kg"))
    assert reply == {"ok": True, "seqs": [1, 2]}
    report = live.store.verify()
    assert report.ok and report.records == 2, report.problems


def test_the_same_request_id_is_recorded_once(live: Station) -> None:
    entry = _request("2,5kg", "1kg", request_id="retry-0001")
    assert _post(live, entry) == {"ok": True, "seqs": [1, 2]}
    assert _post(live, entry) == {"ok": True, "seqs": [1, 2], "repeat": True}
    assert _post(live, _request("1kg")) == {"ok": True, "seqs": [3]}  # a new id: recorded
    rows = list(live.store.records())
    assert [json.loads(str(r["data"]))["request"] for r in rows[:2]] == ["retry-0001"] * 2


def test_an_entry_withdrawn_at_its_timeout_is_never_written(tmp_path: Path) -> None:
    """The socket answers "busy, nothing recorded" while the loop is stalled: that must hold."""
    config = _live_config(tmp_path)
    with Store(config.store_path, config.station.id) as store:
        station = Station(config, store)  # its loop is not running yet: a stalled counter
        handlers = daemon_handlers(station, None, reply_timeout=0.05)
        req = {"op": "manual", "pin": PIN, "request": _request("2,5kg").to_json()}
        reply = handlers["manual"](req)
        assert reply["ok"] is False and reply["kind"] == "busy"
        assert "nothing recorded" in reply["error"]
        thread = threading.Thread(target=station.run, daemon=True)
        thread.start()
        try:
            # queued behind the withdrawn one: once it is answered, the first was dropped
            assert _post(station, _request("1kg")) == {"ok": True, "seqs": [1]}
        finally:
            station.stop("test")
            thread.join(10)
        assert [r["net_mg"] for r in store.records()] == [1_000_000]


def _serve_once(path: Path, reply: bytes | None) -> threading.Thread:
    """A socket that takes one request and answers ``reply`` (None: hangs up without a word)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(str(path))
    srv.listen(1)
    srv.settimeout(30)

    def serve() -> None:
        with srv:
            conn, _addr = srv.accept()
            with conn:
                conn.settimeout(10)
                buf = b""
                while not buf.endswith(b"\n"):
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    buf += chunk
                if reply is not None:
                    conn.sendall(reply)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize(
    "reply", [None, b'{"ok": false, "kind": "unknown", "error": "the loop is slow"}\n']
)
def test_an_unanswered_entry_is_reported_unknown_never_refused(
    config_file: Path, tmp_path: Path, reply: bytes | None
) -> None:
    config = _with_technicians(config_file)
    with Store(tmp_path / "data" / "station.db", STATION) as store:
        for _i in range(4):
            store.append("weighing", net_mg=1000, source="scale")
    server = _serve_once(tmp_path / "run" / "control.sock", reply)
    done = _station(config, *_entry("--request-id", "abcd-1234"), env={"PESEE_PIN": PIN})
    server.join(10)
    assert done.returncode == 3, done.stderr
    line = done.stderr.strip()
    assert line.startswith("Result unknown: ") and "Refused" not in line
    assert "check `station db export --after 4` before retrying" in line
    assert "--request-id abcd-1234" in line
    assert len(line.splitlines()) == 1


def test_the_cli_writes_all_or_nothing_and_once_per_request_id(
    config_file: Path, tmp_path: Path
) -> None:
    config = _with_technicians(config_file)
    with Store(tmp_path / "data" / "station.db", STATION):
        pass
    _sql(tmp_path / "data" / "station.db", _FAIL_750G)
    args = ["--weight", "750 g", "--request-id", "abcd-1234", "--json"]
    done = _station(config, *_entry(*args), env={"PESEE_PIN": PIN})
    assert done.returncode == 74, done.stderr
    assert "disk trouble; nothing recorded" in done.stderr
    assert _records(tmp_path) == []
    _sql(tmp_path / "data" / "station.db", "DROP TRIGGER fail_750g")
    first = _station(config, *_entry(*args), env={"PESEE_PIN": PIN})
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["seqs"] == [1, 2]
    again = _station(config, *_entry(*args), env={"PESEE_PIN": PIN})
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) == {
        "ok": True,
        "via": "journal",
        "seqs": [1, 2],
        "technician": "Alice",
        "source": "manual",
        "repeat": True,
    }
    assert len(_records(tmp_path)) == 2


def test_at_most_50_weights_per_entry(config_file: Path, tmp_path: Path) -> None:
    config = _with_technicians(config_file)
    many = [a for _i in range(51) for a in ("--weight", "1kg")]
    done = _station(config, *_entry(*many), env={"PESEE_PIN": PIN})
    assert done.returncode == 65, done.stderr
    assert done.stderr.strip() == (
        "Refused: 52 weights: at most 50 in one entry; split it into several"
    )
    assert _records(tmp_path) == []
    raw = _request("1kg").to_json() | {"weights_mg": [1_000_000] * 51}
    with pytest.raises(ManualError, match="at most 50"):
        ManualRequest.from_json(raw)
    config_ = _live_config(tmp_path)
    with pytest.raises(ManualError, match="51 weights"):
        check(config_, CodeBook(config_), _request(*["1kg"] * 51))


def test_the_daemon_records_the_proof_it_checked_not_the_claim(live: Station) -> None:
    path = live.config.station.runtime_dir / "control.sock"
    server = ControlServer(path, daemon_handlers(live, None))
    assert server.start()
    try:
        claim = _request("1kg", technician="Bob").to_json() | {"auth": "pin"}
        reply = request(path, {"op": "manual", "badge": "TECH-BOB", "request": claim})
        assert reply == {"ok": True, "seqs": [1]}
        claim = _request("2kg").to_json() | {"auth": "badge"}
        reply = request(path, {"op": "manual", "pin": PIN, "request": claim})
        assert reply == {"ok": True, "seqs": [2]}
        reply = request(path, {"op": "manual", "badge": "TECH-BOB ", "request": claim})
        assert reply["kind"] == "auth" and "does not match" in reply["error"]
    finally:
        server.stop()
    auths = [(r["operator"], json.loads(str(r["data"]))["auth"]) for r in live.store.records()]
    assert auths == [("Bob", "badge"), ("Alice", "pin")]


def test_below_min_and_above_the_most_a_station_records(tmp_path: Path) -> None:
    config = _live_config(tmp_path, e="5 g")  # class III: Min = 20 e = 100 g
    codes = CodeBook(config)
    with pytest.raises(ManualError) as refused:
        check(config, codes, _request("50 g"))
    assert str(refused.value) == (
        "weight 0.050 kg is below the scale's minimum capacity Min 0.100 kg"
    )
    check(config, codes, _request("100 g"))
    with pytest.raises(ManualError, match=r"above the scale's capacity 15\.000 kg"):
        check(config, codes, _request("99999t"))
    config = _live_config(tmp_path, capacity=None)
    with pytest.raises(ManualError) as refused:
        check(config, CodeBook(config), _request("99999t"))
    assert "must be above zero" not in str(refused.value)
    assert "above the most a station records" in str(refused.value)
