"""Review findings on the ledger's CLI, rendering and dashboard, each reproduced for real: passwords
in output, maths in chart labels, formulas in CSV, periods that crashed, `serve` on a missing
database, and copied session cookies after logout."""

from __future__ import annotations

import csv
import io
import random
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from ledger.charts import bars_svg
from ledger.cli import cli
from ledger.redact import redacted
from ledger.report_render import to_csv, to_html
from ledger.reports import Figures, Period, Row, build_report
from ledger.store import open_store
from sync.wire import Batch, StationStatus, decode_batch, decode_status, encode
from tests.support.dashboard import (
    cookie_of,
    get,
    http_login,
    http_logout,
    ledger_config,
    serving,
)
from tests.support.ledger_dataset import Journal

ROOT = Path(__file__).resolve().parents[2]
MATHS = "$\\foo$"  # mathtext: "Unknown symbol: \foo" (ValueError) when parsed as TeX
FORMULA = '=HYPERLINK("http://x")'
PG_SECRET = "topsecretpw"
UNREACHABLE_PG = f"postgresql://pesee:{PG_SECRET}@127.0.0.1:1/ledger"  # nothing listens on 1


def _fill(path: Path) -> None:
    """A station whose codes a spreadsheet or matplotlib would misread; its status too."""
    journal = Journal("st-x", random.Random(1))
    for hour, (category, referrer, net_mg) in enumerate(
        [(MATHS, FORMULA, 1_500_000), ("-5", "@SUM(A1)", 2_500_000), ("FRU", "R01", 4_000_000)]
    ):
        journal.append(
            "weighing",
            datetime(2026, 2, 3, 9 + hour, tzinfo=UTC),
            net_mg=net_mg,
            category=category,
            referrer=referrer,
            visit=f"v{hour}",
            beneficiary=f"B00000{hour}",
        )
    store = open_store(str(path))
    try:
        store.ingest(
            decode_batch(encode(Batch(journal.station, journal.epoch, tuple(journal.records))))
        )
        status = StationStatus(
            "st-x", True, 1, version=FORMULA, calibration_age_days=-1.5, ts="2026-02-03T12:00:00Z"
        )
        store.update_status(decode_status(encode(status)), retained=True)
    finally:
        store.close()


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fixes") / "ledger.db"
    _fill(path)
    return path


def _cli(config: Path, *args: str, lang: str | None = "en") -> tuple[int, str, str]:
    result = CliRunner().invoke(
        cli, [*(["--lang", lang] if lang else []), "--config", str(config), *args]
    )
    return result.exit_code, result.stdout, result.stderr


def _toml(tmp_path: Path, database: str, language: str = "fr") -> Path:
    path = tmp_path / "ledger.toml"
    path.write_text(f'[ledger]\ndatabase = "{database}"\nlanguage = "{language}"\n')
    return path


# -- 4: the database password ----------------------------------------------------------------------
def test_the_database_password_is_never_shown(tmp_path: Path) -> None:
    config = _toml(tmp_path, UNREACHABLE_PG)
    code, out, err = _cli(config, "config", "check")
    assert code == 0 and "postgresql://pesee:***@127.0.0.1:1/ledger" in out
    assert PG_SECRET not in out + err
    code, out, err = _cli(config, "stations")  # cannot connect: one line, no password
    assert code == 74 and err.count("\n") == 1 and "Cannot open the ledger database" in err
    assert PG_SECRET not in out + err
    assert redacted("host=db password=s3cret dbname=l") == "host=db password=*** dbname=l"
    assert redacted("postgresql://u@h/l?password=s3cret") == "postgresql://u@h/l?password=***"
    assert redacted("postgresql://u:p@ss/w@rd@h/l") == "postgresql://u:***@h/l"
    assert redacted("/var/lib/pesee-ledger/ledger.db") == "/var/lib/pesee-ledger/ledger.db"


def test_run_and_serve_logs_hide_the_password(pg_url: str, tmp_path: Path) -> None:
    """The test server trusts loopback: a password in the URL is accepted and ignored."""
    url = pg_url.replace("://postgres@", f"://postgres:{PG_SECRET}@")
    assert PG_SECRET in url
    config = ledger_config(tmp_path, url)
    with config.open("a") as f:
        f.write('[mqtt]\nhost = "127.0.0.1"\nport = 1\n')  # no broker: it keeps retrying
    proc = subprocess.Popen(
        [sys.executable, "-m", "ledger", "--lang", "en", "--config", str(config), "run"],
        stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    deadline = threading.Timer(60, proc.kill)  # a hang ends the reading below (EOF)
    deadline.start()
    lines: list[str] = []
    try:
        assert proc.stderr is not None
        while not lines or ("ledger running" not in lines[-1] and lines[-1]):
            lines.append(proc.stderr.readline())
    finally:
        deadline.cancel()
        proc.terminate()
        proc.wait(timeout=30)
    running = lines[-1]
    assert "postgres:***@127.0.0.1" in running and PG_SECRET not in "".join(lines)
    log = tmp_path / "serve.log"
    with serving(config, log):
        pass
    reading = next(line for line in log.read_text().splitlines() if "dashboard reading" in line)
    assert "postgres:***@127.0.0.1" in reading and PG_SECRET not in log.read_text()


# -- 5: a label is text, not maths --------------------------------------------------------------
def test_chart_labels_with_dollars_are_drawn_as_text(database: Path, tmp_path: Path) -> None:
    svg = bars_svg([Row((MATHS,), (MATHS,), Figures(net_mg=1_000_000, items=1))], "t", lang="en")
    assert MATHS in svg
    store = open_store(str(database))
    try:
        report = build_report(store, Period.year(2026), ("category",))
    finally:
        store.close()
    assert MATHS in to_html(report, "en")
    page = tmp_path / "r.html"
    code, _out, err = _cli(
        _toml(tmp_path, str(database)), "report", "--year", "2026", "--by", "category",
        "--format", "html", "-o", str(page),
    )  # fmt: skip
    assert code == 0, err
    assert MATHS in page.read_text(encoding="utf-8")


# -- 6: CSV for spreadsheets -----------------------------------------------------------------------
def _rows(data: bytes, sep: str = ",") -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig")), delimiter=sep))


def test_report_csv_keeps_station_codes_as_text_and_numbers_as_numbers(
    database: Path, tmp_path: Path
) -> None:
    store = open_store(str(database))
    try:
        by_referrer = build_report(store, Period.year(2026), ("referrer",))
        by_category = build_report(store, Period.year(2026), ("category",))
    finally:
        store.close()
    for excel, sep in [(False, ","), (True, ";")]:
        rows = {r[0]: r for r in _rows(to_csv(by_referrer, excel=excel), sep)[1:]}
        assert rows["'" + FORMULA][1] == "'" + FORMULA and "'@SUM(A1)" in rows
        assert rows["R01"][2] == ("4,000" if excel else "4.000")  # a number stays a number
    rows = {r[0]: r for r in _rows(to_csv(by_category))[1:]}
    assert rows["'-5"][3] == "2500000"  # a code that looks negative is text
    config = _toml(tmp_path, str(database))
    code, out, _err = _cli(config, "totals", "--by", "referrer", "--format", "csv")
    assert code == 0 and {r[0] for r in _rows(out.encode())[1:]} == {
        "'" + FORMULA,
        "'@SUM(A1)",
        "R01",
    }


# -- 11: bad periods and languages on the command line -------------------------------------------
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["totals", "--from", "2026-05-01", "--to", "2026-01-01"],
            "the period ends (2026-01-01) before it starts (2026-05-01)",
        ),
        (
            ["totals", "--from", "2300-01-01"],
            "--from: year 2300 is out of range (years 2000 to 2100",
        ),
        (["report", "--from", "9999-01-01", "--to", "9999-12-31"], "--from: year 9999 is out of"),
        (["report", "--from", "2026-01-01", "--to", "9999-12-31"], "--to: year 9999 is out of"),
        (
            ["report", "--from", "0001-01-01", "--to", "0001-12-31"],
            "--from: year 1 is out of range",
        ),
        (["report", "--year", "1900"], "--year: year 1900 is out of range"),
        (["report", "--month", "2101-01"], "--month: year 2101 is out of range"),
    ],
)
def test_out_of_range_dates_are_one_line(
    database: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    code, out, err = _cli(_toml(tmp_path, str(database)), *args)
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and err.startswith("Error: ") and message in err, err


def test_report_errors_speak_the_configs_language(database: Path, tmp_path: Path) -> None:
    config = _toml(tmp_path, str(database), language="en")
    code, _out, err = _cli(
        config, "report", "--from", "2026-05-01", "--to", "2026-01-01", lang=None
    )
    assert (
        code == 2 and err == "Error: the period ends (2026-01-01) before it starts (2026-05-01)\n"
    )
    code, _out, err = _cli(config, "report", "--year", "2026", "--by", "colour", lang=None)
    assert code == 2 and err.startswith("Error: unknown grouping 'colour'")


# -- 11: `ledger serve` without its database -----------------------------------------------------
@pytest.mark.parametrize("where", ["bad path", "unreachable server"])
def test_serve_without_its_database_is_one_line_and_exit_74(tmp_path: Path, where: str) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    url = str(blocker / "ledger.db") if where == "bad path" else UNREACHABLE_PG
    done = subprocess.run(
        [sys.executable, "-m", "ledger", "--lang", "en",
         "--config", str(ledger_config(tmp_path, url)), "serve", "--port", "1"],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 74, done.stderr
    assert done.stderr.startswith("Cannot open the ledger database: ")
    assert done.stderr.count("\n") == 1 and PG_SECRET not in done.stderr


# -- 5, 6, 7, 14: the dashboard over HTTP ----------------------------------------------------------
@pytest.fixture(scope="module")
def dashboard(database: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("dashboard")
    with serving(ledger_config(root, str(database)), root / "serve.log") as (base, _port):
        yield base


def _login(base: str) -> str:
    status, headers, _body = http_login(base)
    assert status == 303
    return cookie_of(headers)


def test_dashboard_draws_maths_like_labels_and_names_range_files(dashboard: str) -> None:
    session = _login(dashboard)
    status, _h, page = get(f"{dashboard}/?year=2026&lang=en", cookie=session)
    assert status == 200 and "Figures for 2026" in page and MATHS in page  # its chart drew
    status, headers, text = get(
        f"{dashboard}/export/category.csv?from=2026-01-01&to=2026-03-31", cookie=session
    )
    # the session speaks English since the page above (lang=en): plain CSV, "," between columns
    total = next(r for r in _rows(text.encode(), ",") if r[0] == "total")
    assert status == 200 and total[3] == "8000000"
    disposition = headers["content-disposition"]
    assert 'filename="pesee-category-2026-01-01_2026-03-31.csv"' in disposition
    name = urllib.parse.quote("pesee-category-2026-01-01–2026-03-31.csv")
    assert f"filename*=UTF-8''{name}" in disposition


def test_dashboard_refuses_periods_out_of_range_with_400(dashboard: str) -> None:
    session = _login(dashboard)
    for query in ["from=2026-01-01&to=9999-12-31", "from=0001-01-01&to=2026-01-31", "year=3000"]:
        status, _h, page = get(f"{dashboard}/?{query}&lang=en", cookie=session)
        assert (
            status == 400
            and "That period is not valid (dates from 2000-01-01 to 2100-12-31)" in page
        )
        status, _h, text = get(f"{dashboard}/export/category.csv?{query}&lang=en", cookie=session)
        assert status == 400 and text.startswith("That period is not valid"), query


def test_dashboard_csv_keeps_station_codes_as_text(dashboard: str) -> None:
    session = _login(dashboard)
    status, _h, text = get(f"{dashboard}/export/referrer.csv?year=2026&lang=en", cookie=session)
    cells = {r[0] for r in _rows(text.encode())[1:]}
    assert {"'" + FORMULA, "'@SUM(A1)", "R01"} <= cells
    # French: the fleet page's column titles (a spreadsheet for people); English: field names
    for lang, sep, version, age_column, age in [
        ("en", ",", "version", "calibration_age_days", "-1.5"),
        ("fr", ";", "Version", "Étalonnage (jours)", "-1,5"),
    ]:
        status, _h, text = get(f"{dashboard}/export/fleet.csv?lang={lang}", cookie=session)
        fleet = list(csv.DictReader(io.StringIO(text), delimiter=sep))
        assert status == 200 and fleet[0][version] == "'" + FORMULA
        assert fleet[0][age_column] == age  # a negative number stays a number


def test_logout_revokes_copies_of_the_session_cookie(dashboard: str) -> None:
    first, second = _login(dashboard), _login(dashboard)
    copy = first  # what someone who copied the cookie holds
    assert get(dashboard + "/fleet", cookie=copy)[0] == 200
    assert http_logout(dashboard, first) == 303
    status, headers, _body = get(dashboard + "/fleet", cookie=copy)
    assert status == 303 and headers["location"] == "/login?next=%2Ffleet"
    assert get(dashboard + "/fleet", cookie=second)[0] == 200  # another session lives on
