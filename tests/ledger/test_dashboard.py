"""The dashboard (`ledger serve`) served for real and read in headless Chromium: login, figures,
fleet, CSV download, screenshots; plain HTTP checks with urllib."""

from __future__ import annotations

import csv
import io
import os
import random
import shutil
import socket
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from common.settings import ConfigError
from ledger.config import parse_ledger_config
from ledger.reports import Period, build_report, import_profiles
from ledger.store import open_store
from ledger.web.auth import hash_password, verify_password
from sync.wire import Batch, StationStatus, decode_batch, encode, record_hash
from tests.support import ledger_dataset
from tests.support.dashboard import (
    PASSWORD,
    ROOT,
    cookie_of,
    get,
    http_login,
    ledger_config,
    serving,
)
from tests.support.ledger_dataset import Dataset

YEAR = 2016  # the dataset's year: the office's own figures (tests/ledger_dataset.py)


# -- the data: the issue's example, three stations, a conflict, a quarantined message ------------
def live(data: Dataset, year: int) -> list[dict[str, Any]]:
    """Weighings of ``year`` that no void cancels, computed here from the records as sent."""
    dead = {(r["station"], r["epoch"], r["voids"]) for r in data.records if r["kind"] == "void"}
    return [
        r
        for r in data.records
        if r["kind"] == "weighing"
        and data.effective_at[r["uuid"]].startswith(str(year))
        and (r["station"], r["epoch"], r["seq"]) not in dead
    ]


def fill(url: str) -> Dataset:
    """Ingest the dataset through the store's real ingest path; stations report their status."""
    data = ledger_dataset.issue_example()
    store = open_store(url)
    try:
        ledger_dataset.ingest(store, data)
        import_profiles(store, data.profiles.items())  # the 332 women with children
        now = datetime.now(UTC).isoformat()
        journals = {j.station: j for j in data.journals}
        for station, online, calibration in [
            ("epicerie-1", True, 40.0),
            ("epicerie-2", False, 10.0),
            ("vestiaire-1", True, 400.0),  # no record yet; calibration due (over 365 days)
        ]:
            journal = journals.get(station)
            store.update_status(
                StationStatus(
                    station,
                    True,
                    1,
                    epoch=journal.epoch if journal else "",
                    last_seq=len(journal.records) if journal else 0,
                    synced_through=len(journal.records) if journal else 0,
                    backlog=0 if online else 12,
                    clock_synced=True,
                    scale_ok=online,
                    calibration_age_days=calibration,
                    ts=now,
                ),
                retained=True,
            )
            if not online:  # its Last Will
                store.update_status(StationStatus(station, False, 1), retained=True)
        # a record re-sent with other content: a conflict; and a payload refused as invalid
        forged = dict(journals["epicerie-2"].records[0], net_mg=1)
        forged["hash"] = record_hash(forged)
        # records as plain mappings, as the tests forge them (sync.wire.Batch takes them as given)
        store.ingest(Batch("epicerie-2", forged["epoch"], (forged,)))  # type: ignore[arg-type]
        store.quarantine("pesee/v1/stations/epicerie-2/records", b"not json", "not JSON")
    finally:
        store.close()
    return data


@dataclass
class Served:
    url: str
    port: int
    data: Dataset
    store_url: str
    log: Path


@pytest.fixture
def served(tmp_path: Path, ledger_url: str) -> Iterator[Served]:
    data = fill(ledger_url)
    log = tmp_path / "serve.log"
    config = ledger_config(tmp_path, ledger_url, cache_seconds="0")  # reused only while unchanged
    with serving(config, log) as (base, port):
        yield Served(base, port, data, ledger_url, log)


def _french(value: float, decimals: int) -> str:
    return f"{value:,.{decimals}f}".replace(",", "\u202f").replace(".", ",")


def login(page: Page, base: str, password: str = PASSWORD) -> None:
    page.goto(base + "/")
    expect(page).to_have_url(f"{base}/login?next=%2F")
    page.fill("input[name=user]", "alice")
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


# -- tests ---------------------------------------------------------------------------------------
def test_passwords_are_salted_scrypt_and_checked_in_constant_time() -> None:
    first, second = hash_password("secret words"), hash_password("secret words")
    assert first != second and first.startswith("scrypt$131072$8$1$")  # salted, params kept
    assert verify_password("secret words", first)
    assert not verify_password("secret word", first)
    assert not verify_password("secret words", "scrypt$1$2$3$not base64$x")  # never raises
    assert not verify_password("secret words", "")


def test_passwd_prints_the_config_line_and_both_user_forms_load(tmp_path: Path) -> None:
    def passwd(answers: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ledger", "--lang", "en", "passwd", "alice"],
            input=answers,
            capture_output=True,
            text=True,
            timeout=60,
        )

    done = passwd("a long passphrase\na long passphrase\n")
    assert done.returncode == 0, done.stderr
    name, _eq, quoted = done.stdout.strip().partition(" = ")
    assert name == "alice" and verify_password("a long passphrase", quoted.strip('"'))
    short = passwd("short\nshort\n")
    assert short.returncode == 65 and "at least 10 characters" in short.stderr
    as_table = parse_ledger_config(f"[dashboard.users]\n{done.stdout}")
    as_list = parse_ledger_config(f'[[dashboard.users]]\nname = "alice"\npassword = {quoted}\n')
    assert as_table.dashboard.accounts == as_list.dashboard.accounts == {"alice": quoted[1:-1]}
    with pytest.raises(ConfigError):
        parse_ledger_config('[dashboard.users]\nalice = "plain text password"\n')


def test_a_restart_ends_the_sessions(tmp_path: Path) -> None:
    """Sessions live in the server's memory (a copied cookie dies at logout): a restart, which
    also applies a changed password or a removed user, logs everyone out."""
    database = str(tmp_path / "l.db")
    log = tmp_path / "serve.log"
    with serving(ledger_config(tmp_path, database), log) as (base, _port):
        status, headers, _body = http_login(base)
        assert status == 303
        session = cookie_of(headers)
        assert get(base + "/fleet", cookie=session)[0] == 200
    with serving(ledger_config(tmp_path, database), log) as (
        base,
        _port,
    ):  # same users, same secret
        status, headers, _body = get(base + "/fleet", cookie=session)
        assert status == 303 and headers["location"] == "/login?next=%2Ffleet"


def test_serve_refuses_to_start_without_users_or_secret(tmp_path: Path) -> None:
    for missing, expected in [
        ({"users": "{}"}, "No dashboard users"),
        ({"secret_key": ""}, "No session secret"),
    ]:
        config = ledger_config(tmp_path, str(tmp_path / "l.db"), **missing)
        done = subprocess.run(
            [sys.executable, "-m", "ledger", "--lang", "en", "--config", str(config), "serve"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 78, done.stderr
        assert done.stderr.startswith(expected) and done.stderr.count("\n") == 1
        assert "Traceback" not in done.stderr


def test_login_is_required_and_it_listens_on_loopback_only(served: Served) -> None:
    base = served.url
    for path in ["/", "/fleet", "/export/category.csv?year=2016"]:
        status, headers, _body = get(base + path)
        assert status == 303, path
        assert headers["location"] == "/login?" + urllib.parse.urlencode({"next": path})
    status, _h, css = get(base + "/static/style.css")  # static files need no login
    assert status == 200 and ".kpi" in css
    status, headers, _body = get(base + "/login")
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["cache-control"] == "no-store" and "server" not in headers
    status, headers, body = http_login(base, password="wrong")
    assert status == 401 and "set-cookie" not in {k.lower() for k in headers}
    assert "Identifiant ou mot de passe incorrect" in body  # French by default
    status, headers, _body = http_login(base)
    assert status == 303
    cookie = headers["set-cookie"]
    assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()
    # bound to 127.0.0.1, not to every address: another loopback address is refused
    with pytest.raises(OSError), socket.create_connection(("127.0.0.2", served.port), timeout=2):
        pass

    # logged in: periods from the query string, CSV in English, unknown tables
    session = cookie.split(";")[0]
    status, _h, page = get(f"{base}/?year={YEAR}&quarter=2&lang=en", cookie=session)
    assert status == 200 and f"Figures for Q2 {YEAR}" in page
    status, _h, page = get(f"{base}/?from={YEAR}-03-01&to={YEAR}-03-31&lang=en", cookie=session)
    assert f"Figures for {YEAR}-03-01 – {YEAR}-03-31" in page
    status, _h, page = get(f"{base}/?year=twenty&month=13&lang=en", cookie=session)
    assert status == 400 and "That period is not valid (dates from 2000-01-01" in page
    assert f"Figures for {datetime.now(UTC).year}" in page  # this year's, under the notice
    status, headers, text = get(
        f"{base}/export/month.csv?year={YEAR}&month=3&lang=en", cookie=session
    )
    rows = list(csv.DictReader(io.StringIO(text)))  # English: "," and decimal points
    march = [r for r in live(served.data, YEAR) if served.data.effective_at[r["uuid"]][5:7] == "03"]
    assert rows[0]["month"] == f"{YEAR}-03" and rows[1]["month"] == "total"
    assert int(rows[0]["net_mg"]) == sum(r["net_mg"] for r in march)
    assert headers["content-type"].startswith("text/csv")
    assert f'filename="pesee-month-{YEAR}-03.csv"' in headers["content-disposition"]
    status, _h, text = get(f"{base}/export/fleet.csv?lang=en", cookie=session)
    fleet = {r["station"]: r for r in csv.DictReader(io.StringIO(text))}
    assert (
        fleet["epicerie-2"]["online"] == "0" and fleet["vestiaire-1"]["calibration_due"] == "True"
    )
    status, _h, _text = get(f"{base}/export/passwords.csv", cookie=session)
    assert status == 404

    # figures are cached, and recomputed as soon as a record arrives
    def kg_shown() -> str:
        page = get(f"{base}/?year={YEAR}&lang=en", cookie=session)[2]
        return page.split('data-kpi="kg"')[1].split('class="sub">')[1].split("&nbsp;kg")[0]

    assert kg_shown() == "25,000.0"
    late = ledger_dataset.Journal("epicerie-3", random.Random(3))
    late.append("weighing", datetime(YEAR, 6, 1, 10, tzinfo=UTC), net_mg=5_000_000, visit="v")
    store = open_store(served.store_url)
    try:
        batch = Batch(late.station, late.epoch, tuple(late.records))  # type: ignore[arg-type]
        store.ingest(decode_batch(encode(batch)))
    finally:
        store.close()
    assert kg_shown() == "25,005.0"


def _check_pages(context: BrowserContext, served: Served, screenshots: Path | None) -> None:
    base = served.url
    page = context.new_page()
    login(page, base, password="not the password")
    expect(page.locator(".error")).to_contain_text("Identifiant ou mot de passe incorrect")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(base + "/")
    # the default period is the current year
    this_year = str(datetime.now(UTC).year)
    expect(page.locator("select[name=year]")).to_have_value(this_year)

    # choose the dataset's year in the period selector
    page.select_option("select[name=year]", str(YEAR))
    page.click(".period button[type=submit]")
    expect(page).to_have_url(f"{base}/?year={YEAR}&quarter=&month=&from=&to=&by=category")
    expect(page.locator("h1")).to_contain_text(str(YEAR))

    # the figures are the report API's, and those are the records' (computed here)
    store = open_store(served.store_url)
    try:
        report = build_report(store, Period.year(YEAR), ("category",))
        by_station = build_report(store, Period.year(YEAR), ("station",), compare=False)
    finally:
        store.close()
    weighed = live(served.data, YEAR)
    assert report.total.net_mg == sum(r["net_mg"] for r in weighed) == 25_000_000_000
    assert report.total.beneficiaries == len({r["beneficiary"] for r in weighed}) == 1482
    kpis = page.locator(".kpis")
    expect(kpis.locator("[data-kpi=kg] .value")).to_have_text("25,00\u00a0t")
    expect(kpis.locator("[data-kpi=kg] .sub")).to_have_text(
        _french(report.total.kg, 1) + "\u00a0kg"
    )
    expect(kpis.locator("[data-kpi=beneficiaries] .value")).to_have_text("1\u202f482")
    expect(kpis.locator("[data-kpi=beneficiaries] .sub")).to_contain_text("124 par mois")
    expect(kpis.locator("[data-kpi=visits] .value")).to_have_text(_french(report.total.visits, 0))
    # the monthly average as the office's sentence gives it ("moyenne mensuelle 2 083,3 kg")
    expect(kpis.locator("[data-kpi=monthly] .value")).to_have_text("2\u202f083,3\u00a0kg")
    expect(kpis.locator("[data-kpi=change] .value")).to_have_text("▲ +55\u00a0%")
    # the tables: one row per category / station, in the report's order, named
    cells = page.locator("table[data-table=category] tbody th")
    expect(cells).to_have_text([" / ".join(row.label) for row in report.rows])
    months = page.locator("table[data-table=month] tbody tr")
    expect(months).to_have_count(12)
    expect(page.locator("#month .chart svg")).to_have_count(1)
    if screenshots:
        page.screenshot(path=str(screenshots / "dashboard.png"))
    # one grouping at a time: the station tab, the same period
    page.click("nav.tabs a[data-tab=station]")
    expect(page).to_have_url(f"{base}/?year={YEAR}&by=station")
    first = by_station.rows[0]
    station_row = page.locator(f"table[data-table=station] tr[data-key='{first.key[0]}']")
    expect(station_row.locator("[data-col=kg]")).to_have_text(_french(first.figures.kg, 1))

    # the profile tab: the funders' sentence, as the issue quotes it
    page.click("nav.tabs a[data-tab=profile]")
    expect(page.locator("#profile .sentences li").first).to_have_text(
        "dont 332 femmes avec enfants (2,2 t) orientées par 4 hôpitaux"
    )
    expect(
        page.locator("table[data-table=profile] tr[data-key=women_with_children] td").first
    ).to_have_text("2\u202f200,0")
    if screenshots:
        page.locator("#profile").screenshot(path=str(screenshots / "dashboard-profile.png"))
    page.click("nav.tabs a[data-tab=station]")

    # a CSV of a table, downloaded as a person would
    with page.expect_download() as info:
        page.click("#station a.csv")
    download = info.value
    raw = Path(download.path()).read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # a BOM: Excel reads it as UTF-8
    # French: ";" and decimal commas, as LibreOffice and Excel open it in France
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    assert [r["station"] for r in rows[:-2]] == [row.key[0] for row in by_station.rows]
    assert [r["kg"] for r in rows[:-2]] == [
        f"{Decimal(row.figures.net_mg) / 10**6:.3f}".replace(".", ",") for row in by_station.rows
    ]
    # French column titles and total rows: a spreadsheet for people
    assert rows[-2]["station"] == "total"
    assert int(rows[-2]["net (mg)"]) == sum(r["net_mg"] for r in weighed)
    assert rows[-1]["station"] == "même période l'an dernier"
    assert download.suggested_filename.endswith(".csv")

    # the persons page: 1482 persons in 2016, of whom 741 first seen that year (2015 had the
    # other 741: tests/support/ledger_dataset.py)
    page.click("nav a[href='/persons']")
    page.select_option("select[name=year]", str(YEAR))
    page.click(".period button[type=submit]")
    expect(page.locator("[data-kpi=persons] .value")).to_have_text("1\u202f482")
    expect(page.locator("[data-kpi=new] .value")).to_have_text("741")
    expect(page.locator("table[data-table=trend] tbody tr")).to_have_count(2)
    if screenshots:
        page.screenshot(path=str(screenshots / "dashboard-persons.png"))

    # the fleet
    page.click("nav a[href='/fleet']")
    expect(page.locator("h1")).to_have_text("Postes")
    expect(page.locator("[data-kpi=online] .value")).to_have_text("2 / 3")
    expect(page.locator("tr[data-station=epicerie-2]")).to_contain_text("hors ligne")
    expect(page.locator("tr[data-station=epicerie-1]")).to_contain_text("en ligne")
    expect(page.locator("tr[data-station=vestiaire-1]")).to_contain_text("à refaire")  # due
    expect(page.locator("[data-kpi=conflicts] .value")).to_have_text("1")
    expect(page.locator("[data-kpi=quarantine] .value")).to_have_text("1")
    if screenshots:
        page.screenshot(path=str(screenshots / "dashboard-fleet.png"))

    # a period without records says so (no empty chart)
    page.goto(f"{base}/?year=2012")
    expect(page.locator(".empty")).to_have_text("Aucun enregistrement sur cette période.")
    expect(page.locator(".chart svg")).to_have_count(0)

    # the office's sentence, as the issue quotes it
    page.click("nav a[href='/']")
    page.select_option("select[name=year]", str(YEAR))
    page.click(".period button[type=submit]")
    expect(page.locator(".summary")).to_contain_text(
        "25 t redistribuées à 1\u202f482 personnes (124 par mois) orientées par 28 structures"
    )

    # English on request, kept for the session
    page.click("a[lang=en]")
    expect(page.locator(".summary")).to_contain_text(
        "25 t redistributed to 1,482 persons (124 a month) referred by 28 structures"
    )
    expect(page.locator("[data-kpi=beneficiaries] .value")).to_have_text("1,482")
    page.click("nav a[href='/fleet']")
    expect(page.locator("tr[data-station=epicerie-2]")).to_contain_text("offline")

    # on a tablet (portrait) the page fits its width: wide tables scroll inside their panel
    page.set_viewport_size({"width": 768, "height": 1024})
    page.goto(f"{base}/?year={YEAR}")
    expect(page.locator("#month .chart svg")).to_have_count(1)
    overflow = "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    assert page.evaluate(overflow) <= 0
    page.set_viewport_size({"width": 1280, "height": 800})

    # logging out ends the session
    page.click(".logout button")
    expect(page).to_have_url(base + "/login")
    page.goto(base + "/fleet")
    expect(page).to_have_url(base + "/login?next=%2Ffleet")


def test_dashboard_in_chromium(
    served: Served,
    browser: BrowserContext,
    tmp_path: Path,
) -> None:
    shots = tmp_path / "shots"
    shots.mkdir()
    _check_pages(browser, served, shots)
    for name in [
        "dashboard.png",
        "dashboard-fleet.png",
        "dashboard-profile.png",
        "dashboard-persons.png",
    ]:
        assert (shots / name).stat().st_size > 10_000
        if os.environ.get("PESEE_UPDATE_SCREENSHOTS") == "1" and not served.store_url.startswith(
            "postgresql"
        ):
            shutil.copy(shots / name, ROOT / "docs" / name)
