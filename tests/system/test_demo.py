"""``make demo`` ten times in a row: it must not depend on the machine being idle (issue 13)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUNS = 10


def _demo(workdir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tests.demo", "--workdir", str(workdir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_demo_runs_ten_times_in_a_row(tmp_path: Path) -> None:
    for run in range(RUNS):
        done = _demo(tmp_path / f"run-{run}")
        where = f"run {run + 1} of {RUNS}:\n{done.stdout}\n{done.stderr}"
        assert done.returncode == 0, where
        assert "Traceback" not in done.stderr, where
        assert "9/9 enregistrements acquittés par le registre" in done.stdout, where
        assert "chaîne de hachage intègre" in done.stdout, where


def test_the_demo_speaks_to_people(tmp_path: Path) -> None:
    """What a volunteer reads: a void on amber, French words in the journal table, the
    category's name, French numbers."""
    out = _demo(tmp_path).stdout
    void = next(line for line in out.splitlines() if "Annulé" in line)
    assert "[orange]" in void
    assert "fin passage" in out and "bénéficiaire suivant" in out
    assert "new_beneficiary" not in out and "visit_close" not in out
    assert "Vêtements" in out.split("Journal de la station")[1]
    # the ledger's report names categories (from the office's registry), never "0 par mois"
    report = out.split("ledger report")[1].split("ledger totals")[0]
    assert "Alimentaire" in report and "CAT-ALIM" not in report
    assert "(0 par mois)" not in report and "par mois" in report
    last = out.strip().splitlines()[-1]
    assert last.startswith("Terminé en ") and "," in last and "." not in last.rstrip(".")
