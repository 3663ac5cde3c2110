"""bench/ledger_scale.py runs end to end on a small network (SQLite, PostgreSQL, two workers)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_ledger_scale_bench_smoke() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "ledger_scale.py"), "--records", "2000"],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    last = json.loads(done.stdout.strip().splitlines()[-1])
    assert list(last) == [
        "bench",
        "sqlite_ingest_rps",
        "pg_ingest_rps",
        "pg_two_workers_rps",
        "report_1m_sqlite_s",
        "report_1m_pg_s",
    ]
    assert last["bench"] == "ledger_scale"
    assert all(last[k] > 0 for k in list(last)[1:])
    # the checks the bench makes: every record once on each database, the same report on both
    assert "2000 records, all acked, no conflict" in done.stdout
    assert "MISMATCH" not in done.stderr
