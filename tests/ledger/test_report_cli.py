"""`ledger report` and `ledger profiles import` through the real command line (click's runner)."""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from ledger.cli import cli
from ledger.store import open_store
from tests.support import ledger_dataset


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("report-cli")
    store = open_store(str(root / "ledger.db"))
    ledger_dataset.ingest(store, ledger_dataset.issue_example())
    store.close()
    path = root / "ledger.toml"
    path.write_text(
        f'[ledger]\ndatabase = "{root / "ledger.db"}"\nlanguage = "fr"\n'
        '[groups]\n"Épiceries du Nord" = ["epicerie-1"]\n',
        encoding="utf-8",
    )
    yield path


def run(config: Path, *args: str, lang: str = "en") -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["--lang", lang, "--config", str(config), *args])
    return result.exit_code, result.stdout, result.stderr


def test_table_in_english_and_french(config: Path) -> None:
    code, out, _err = run(config, "report", "--year", "2016", "--by", "referrer_type")
    assert code == 0
    assert (
        "2016: 25 t redistributed to 1,482 persons (124 a month) referred by 28 structures" in out
    )
    assert "+55 % over the same period last year" in out
    assert "hospital" in out.split("\n\n")[1]
    code, out, _err = run(config, "report", "--year", "2016", lang="fr")
    assert code == 0
    assert (
        "25 t redistribuées à 1\u202f482 personnes (124 par mois) orientées par 28 structures"
        in out
    )


def test_profiles_import_then_report_by_profile_and_type(config: Path, tmp_path: Path) -> None:
    # on a copy: the module's ledger stays without profiles for the tests that share it, in
    # whatever order (and on whichever xdist worker) they run
    shutil.copy(config.parent / "ledger.db", tmp_path / "ledger.db")
    config = tmp_path / "ledger.toml"
    config.write_text(
        f'[ledger]\ndatabase = "{tmp_path / "ledger.db"}"\nlanguage = "fr"\n', encoding="utf-8"
    )
    tags = tmp_path / "profils.csv"
    lines = ["code;tags"] + [f"B{p:06d};women_with_children" for p in range(332)]
    tags.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, out, _err = run(config, "profiles", "import", str(tags))
    assert (code, out.strip()) == (0, "332 codes, 332 profile tags imported")
    code, out, _err = run(config, "report", "--year", "2016", "--by", "profile,referrer_type")
    assert code == 0, out
    assert "of whom 332 women with children (2.2 t) referred by 4 hospitals" in out
    bad = tmp_path / "bad.csv"
    bad.write_text("B000001;\n", encoding="utf-8")
    code, _out, err = run(config, "profiles", "import", str(bad))
    assert code == 65 and err.count("\n") == 1 and "line 1" in err


def test_csv_json_html_to_files(config: Path, tmp_path: Path) -> None:
    target = tmp_path / "2016.csv"
    code, _out, err = run(
        config, "report", "--year", "2016", "--by", "group", "--format", "csv", "--excel",
        "-o", str(target),
    )  # fmt: skip
    assert code == 0 and str(target) in err
    raw = target.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    # a spreadsheet for people: column titles in the staff's language (English here)
    assert rows[0]["group (name)"] == "Épiceries du Nord"
    assert next(r for r in rows if r["group"] == "total")["kg"] == "25000,000"
    code, out, _err = run(config, "report", "--month", "2016-03", "--format", "json")
    body = json.loads(out)
    assert code == 0 and body["period"]["label"] == "2016-03" and len(body["monthly"]) == 1
    page = tmp_path / "r.html"
    code, _out, _err = run(config, "report", "--year", "2016", "--format", "html", "-o", str(page))
    assert code == 0 and "<svg" in page.read_text(encoding="utf-8")
    code, out, _err = run(config, "report", "--year", "2016", "--format", "csv", "--sep", "\\t")
    assert code == 0 and out.splitlines()[0].startswith("month\tmonth_name\tkg\t")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--year", "2016", "--by", "colour"], "unknown grouping 'colour'"),
        (["--year", "2016", "--by", "month,station,category"], "at most two groupings"),
        (["--from", "2016-13-01"], "is not a date"),
        (["--from", "2016-03-01", "--to", "2016-02-01"], "before it starts"),
        (["--year", "2016", "--month", "14"], "month must be 1 to 12"),
        (["--year", "2016", "--from", "2016-01-01"], "not both"),
        (["--year", "2016", "--sep", ";;"], "one character"),
    ],
)
def test_bad_input_is_one_line(config: Path, args: list[str], message: str) -> None:
    code, out, err = run(config, "report", *args)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("Error: ") and message in err


def test_a_table_not_shown_on_a_terminal_has_the_same_width_everywhere(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a pipe or a file gets 100 columns whatever the terminal that started it (was: COLUMNS)
    monkeypatch.setenv("COLUMNS", "60")
    code, out, _err = run(config, "report", "--year", "2016")
    assert code == 0
    assert (
        "2016: 25 t redistributed to 1,482 persons (124 a month) referred by 28 structures\n" in out
    )
