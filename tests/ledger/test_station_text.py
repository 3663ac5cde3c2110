"""A hostile station's text reaches people as text: no terminal escape runs from a report, and a
spreadsheet never runs it as a formula (issue 15, item 8)."""

from __future__ import annotations

import random
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from common.text import visible
from ledger.report_render import spreadsheet_text
from ledger.store import open_store
from sync.wire import Batch, decode_batch, encode
from tests.support.ledger_dataset import Journal

ROOT = Path(__file__).resolve().parents[2]
# clear the screen, retitle the window, then a bidi override that reverses what follows
HOSTILE = "\x1b[2J\x1b]0;pwned\x07CAT\u202eEVIL"


def test_control_characters_are_written_out_not_run() -> None:
    assert visible("Vêtements bébé") == "Vêtements bébé"
    assert visible(HOSTILE) == "\\x1b[2J\\x1b]0;pwned\\x07CAT\\u202eEVIL"


def test_formula_starts_hidden_behind_blanks_or_full_width_signs_stay_text() -> None:
    for text in ["=1+1", " =1+1", "\u00a0+1", "＝1+1", "＋SUM(A1)", "－5", "＠A1"]:
        assert spreadsheet_text(text) == "'" + text, text
    assert spreadsheet_text("CAT-VET") == "CAT-VET"


def test_reports_and_totals_print_a_hostile_category_as_text(tmp_path: Path) -> None:
    journal = Journal("st-h", random.Random(1))
    journal.append(
        "weighing",
        datetime(2026, 3, 2, 10, tzinfo=UTC),
        net_mg=1_250_000,
        category=HOSTILE,
        referrer="R\x1b[8m",
        visit="v1",
        beneficiary="B000001",
    )
    database = tmp_path / "ledger.db"
    store = open_store(str(database))
    try:
        store.ingest(
            decode_batch(encode(Batch(journal.station, journal.epoch, tuple(journal.records))))
        )
    finally:
        store.close()
    config = tmp_path / "ledger.toml"
    config.write_text(f'[ledger]\ndatabase = "{database}"\n', encoding="utf-8")
    for args in (
        ["report", "--year", "2026", "--by", "category,referrer"],
        ["totals", "--by", "category"],
        ["totals", "--by", "referrer"],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "ledger", "--lang", "en", "--config", str(config), *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert "\x1b" not in done.stdout and "\u202e" not in done.stdout, args
        assert "\x07" not in done.stdout, args
        assert "\\x1b" in done.stdout, args  # what the station sent, written out
