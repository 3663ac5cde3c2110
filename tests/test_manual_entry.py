"""``station manual-entry``: PIN or badge required, checked like a weighing, flagged manual."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from station.pinhash import hash_pin, verify_pin
from station.store import Store

from .conftest import beneficiary

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
    assert json.loads(str(manual["data"])) == {
        "auth": "pin",
        "note": "scale broken",
        "technician": "Alice",
    }
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
