"""A table, CSV or JSON report needs no chart library: matplotlib is only for charts (issue 13)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# matplotlib made unimportable, as on an office install without the [ledger] extra's charts
SCRIPT = """
import sys
sys.modules["matplotlib"] = None
from ledger.reports import Period, build_report
from ledger.report_render import to_csv, to_json, to_table
from ledger.store import open_store
store = open_store(sys.argv[1])
report = build_report(store, Period.year(2026), ("category",))
print(to_table(report).splitlines()[0])
print(len(to_csv(report)), len(to_json(report)))
"""


def test_a_table_report_runs_without_matplotlib(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "ledger.db")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "2026" in done.stdout
