"""The counter screen in real headless Chromium, on the real daemon driven through the simulators:
the page follows a session live (weight, scans, records, refusals, void), the touch buttons go
through the panel's workflow, the token guards LAN mode, and a disabled screen costs nothing."""

from __future__ import annotations

import json
import logging
import os
import queue
import socket
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from common.i18n import set_language
from station.config import ConfigError, parse_config
from station.outcomes import Outcome
from station.screen.view import catalogue
from station.sim import EXAMPLE_CONFIG, SimulatedCounter
from tests.support.helpers import beneficiary

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
VISITOR = beneficiary(123456)  # referrer 001: "CCAS" in the example config
TOKEN = "a-long-enough-screen-token"


def _counter(tmp_path: Path, screen: dict[str, Any], **scale: Any) -> SimulatedCounter:
    set_language("fr")  # what staff see: the station's default language
    overrides: dict[str, Any] = {
        "station": {"language": "fr"},
        "screen": {"enabled": True, "port": 0, **screen},
        "sync": {"enabled": False},
        "scale": {"stable_wait": 0.6, **scale},
    }
    return SimulatedCounter(tmp_path, overrides)


@pytest.fixture
def screen_counter(tmp_path: Path) -> Iterator[SimulatedCounter]:
    with _counter(tmp_path, {}) as c:
        yield c


@pytest.fixture
def touch_counter(tmp_path: Path) -> Iterator[SimulatedCounter]:
    # a long double-tap gap: a second POST is a double tap however late a loaded machine sends it
    with _counter(tmp_path, {"touch_buttons": True, "tap_gap": 30}) as c:
        yield c


def _url(c: SimulatedCounter) -> str:
    screen = c.daemon.screen
    assert screen is not None, "the screen server did not start"
    return str(screen.url)


def _open(context: BrowserContext, c: SimulatedCounter, query: str = "") -> Page:
    page = context.new_page()
    page.goto(_url(c) + query)
    # live: the first server-sent view has arrived
    expect(page.locator("body")).to_have_attribute("data-live", "1")
    return page


def _result(c: SimulatedCounter, outcome: Outcome) -> None:
    assert c.next_result().outcome is outcome


def _weigh(c: SimulatedCounter, page: Page, kg: str, outcome: Outcome) -> None:
    """Put ``kg`` on the pan, see the page show it (French comma), press: ``outcome``."""
    c.scale.place(kg, settle_s=0.05)
    expect(page.locator("#weight-number")).to_have_text(kg.replace(".", ","))
    c.press()
    _result(c, outcome)


def test_the_page_follows_a_scripted_session(
    browser: BrowserContext,
    tmp_path: Path,
) -> None:
    with _counter(tmp_path, {}) as c:
        page = _open(browser, c)
        weight, state = page.locator("#weight-number"), page.locator("#weight-state")
        box, last = page.locator("#weight"), page.locator("#last")
        expect(page.locator("#hint")).to_have_text("Scannez le code du bénéficiaire")

        # the weight follows the scale, with its state in words and in the colour class
        c.scale.place("2.500", settle_s=float("inf"))
        expect(state).to_have_text("En mouvement")
        expect(box).to_have_attribute("data-state", "motion")
        c.scale.place("1.250", settle_s=0.05)
        expect(weight).to_have_text("1,250")
        expect(state).to_have_text("Stable")
        expect(box).to_have_attribute("data-state", "stable")
        c.scale.set_overload(True)
        expect(state).to_have_text("Surcharge : retirez la charge")
        expect(box).to_have_attribute("data-state", "over")
        c.scale.set_overload(False)
        expect(state).to_have_text("Stable")

        # scans: the beneficiary masked but for its end, the referring structure, the category
        c.scan(VISITOR)
        _result(c, Outcome.VISIT_OPENED)
        # three dots at most: a narrow screen's ellipsis never eats the last characters
        expect(page.locator("#beneficiary")).to_have_text("•" * 3 + VISITOR[-4:])
        expect(page.locator("#referrer")).to_have_text("CCAS")
        c.scan("CAT-VET")
        _result(c, Outcome.CATEGORY_SET)
        expect(page.locator("#category")).to_have_text("Vêtements")
        c.scan("OP-0001")  # the operator's badge: the name is shown
        _result(c, Outcome.OPERATOR_SET)
        expect(page.locator("#operator")).to_have_text("Marie")

        # the press: the record appears with the panel's words
        c.press()
        _result(c, Outcome.RECORDED)
        expect(page.locator("#last-text")).to_have_text("Enregistré : 1,250 kg Vêtements")
        expect(last).to_have_attribute("data-kind", "recorded")
        expect(page.locator("#items li")).to_have_count(1)
        expect(page.locator("#total")).to_have_text("1,250 kg")

        c.scan("CAT-BEBE")
        _result(c, Outcome.CATEGORY_SET)
        _weigh(c, page, "3.400", Outcome.RECORDED)
        expect(page.locator("#items li")).to_have_count(2)
        expect(page.locator("#items li").nth(1)).to_have_text("3,400 kgPuériculture")
        expect(page.locator("#total")).to_have_text("4,650 kg")
        _screenshots(page, tmp_path)

        # refusals show their reason, and nothing is added
        _weigh(c, page, "0.010", Outcome.BELOW_MINIMUM)
        expect(page.locator("#last-text")).to_have_text(
            "Refusé : poids inférieur au minimum (0,020 kg)"
        )
        expect(last).to_have_attribute("data-kind", "refused")
        c.scale.place("5.000", settle_s=float("inf"))
        expect(state).to_have_text("En mouvement")
        c.press()
        _result(c, Outcome.UNSTABLE)
        expect(page.locator("#last-text")).to_have_text("Refusé : poids instable")
        expect(page.locator("#items li")).to_have_count(2)

        # the hold voids the last record of the visit
        c.hold()
        _result(c, Outcome.VOIDED)
        expect(page.locator("#last-text")).to_contain_text("Annulé")
        expect(last).to_have_attribute("data-kind", "voided")
        expect(page.locator("#items li")).to_have_count(1)
        expect(page.locator("#total")).to_have_text("1,250 kg")
        assert c.store.count("weighing") == 2 and c.store.count("void") == 1


SIZES = ((800, 480), (1280, 800))


def _fits(page: Page, width: int, height: int, ids: tuple[str, ...] = ()) -> None:
    """At ``width``×``height`` nothing scrolls and each part is on screen."""
    page.set_viewport_size({"width": width, "height": height})
    ids = ("weight", "last", "items", "beneficiary", "category", "total", *ids)
    fits = page.evaluate(
        """(ids) => {
            const root = document.documentElement;
            return root.scrollWidth <= innerWidth && root.scrollHeight <= innerHeight &&
                ids.every((id) => {
                    const r = document.getElementById(id).getBoundingClientRect();
                    return r.bottom <= innerHeight && r.right <= innerWidth && r.height > 0;
                });
        }""",
        list(ids),
    )
    assert fits, f"the page does not fit {width}×{height}"


def _screenshots(page: Page, tmp_path: Path) -> None:
    """The README's pictures: taken on every run, written to docs/ when missing or with
    PESEE_UPDATE_SCREENSHOTS=1 (as the dashboard's), so a test run leaves the tree clean."""
    update = os.environ.get("PESEE_UPDATE_SCREENSHOTS") == "1"
    for width, height in SIZES:
        _fits(page, width, height)
        target = DOCS / f"screen-{width}x{height}.png"
        shot = page.screenshot(path=str(tmp_path / target.name))
        assert shot[:8] == b"\x89PNG\r\n\x1a\n"
        if update or not target.exists():
            target.write_bytes(shot)


def test_english_on_request(
    browser: BrowserContext,
    screen_counter: SimulatedCounter,
) -> None:
    page = _open(browser, screen_counter, "?lang=en")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("#hint")).to_have_text("Scan the beneficiary's code")
    screen_counter.scale.place("0.750", settle_s=0.05)
    expect(page.locator("#weight-number")).to_have_text("0.750")
    expect(page.locator("#weight-state")).to_have_text("Stable")


def test_a_tap_records_exactly_one_record(
    browser: BrowserContext,
    touch_counter: SimulatedCounter,
) -> None:
    c = touch_counter
    page = _open(browser, c)
    c.scan(VISITOR)
    _result(c, Outcome.VISIT_OPENED)
    c.scan("CAT-HYG")
    _result(c, Outcome.CATEGORY_SET)
    c.scale.place("0.800", settle_s=0.05)
    expect(page.locator("#weight-number")).to_have_text("0,800")
    expect(page.locator("#weight-state")).to_have_text("Stable")

    for width, height in SIZES:
        _fits(page, width, height, ("btn-press", "btn-void", "btn-end"))
    page.locator("#btn-press").dblclick()  # a shaky finger: two taps
    _result(c, Outcome.RECORDED)
    expect(page.locator("#last-text")).to_have_text("Enregistré : 0,800 kg Hygiène")
    # the second tap never reached the loop: it would have been refused as the same item
    with pytest.raises(queue.Empty):
        c.next_result(timeout=1.5)
    assert c.store.count("weighing") == 1

    # void asks for a second tap, then goes through the hold's workflow
    void = page.locator("#btn-void")
    void.click()
    expect(void).to_have_text("Touchez encore pour annuler le dernier")
    with pytest.raises(queue.Empty):
        c.next_result(timeout=0.3)
    void.click()
    _result(c, Outcome.VOIDED)
    expect(page.locator("#last-text")).to_contain_text("Annulé")
    assert c.store.count("void") == 1

    page.locator("#btn-end").click()
    _result(c, Outcome.VISIT_CLOSED)
    expect(page.locator("#beneficiary")).to_have_text("—")
    assert c.store.count("visit_close") == 1


def _post(url: str, headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(url, data=b"", method="POST", headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def _get(url: str, headers: dict[str, str] | None = None) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=5):
            return 200
    except urllib.error.HTTPError as exc:
        return exc.code


def test_actions_refuse_other_origins_and_double_taps(touch_counter: SimulatedCounter) -> None:
    url = _url(touch_counter)
    origin = url.rstrip("/")
    assert _post(url + "action/end") == 403  # no Origin, no Referer: not from the page
    assert _post(url + "action/end", {"Origin": "http://evil.example"}) == 403
    assert _get(url + "action/end") == 405  # GET never acts
    assert _post(url + "action/end", {"Origin": origin}) == 202
    assert _post(url + "action/end", {"Origin": origin}) == 429  # a double tap
    assert touch_counter.next_result().outcome is Outcome.VISIT_CLOSED  # "no visit was open"
    # a page reached through another name (DNS rebinding) is refused on loopback
    assert _get(url, {"Host": "evil.example"}) == 403


def test_actions_are_off_without_touch_buttons(screen_counter: SimulatedCounter) -> None:
    url = _url(screen_counter)
    assert _post(url + "action/press", {"Origin": url.rstrip("/")}) == 403
    with pytest.raises(queue.Empty):
        screen_counter.next_result(timeout=0.3)


def test_the_token_guards_the_page_feed_and_actions(
    browser: BrowserContext,
    tmp_path: Path,
) -> None:
    with _counter(tmp_path, {"token": TOKEN, "touch_buttons": True}) as c:
        url = _url(c)
        for path in ("", "events", "view.json", "static/screen.js", "?token=wrong"):
            assert _get(url + path) == 401, path
        assert _post(url + "action/press", {"Origin": url.rstrip("/")}) == 401
        # once with the token: a cookie, and the token leaves the address bar
        page = browser.new_page()
        page.goto(url + "?token=" + TOKEN)
        assert "token" not in page.url
        expect(page.locator("body")).to_have_attribute("data-live", "1")
        page.goto(url)  # the cookie is enough from now on
        expect(page.locator("body")).to_have_attribute("data-live", "1")
        cookies = {k["name"]: k for k in browser.cookies()}
        assert cookies["pesee_screen"]["httpOnly"] and TOKEN not in cookies["pesee_screen"]["value"]


def test_a_page_whose_session_ends_says_what_to_do(
    browser: BrowserContext,
    tmp_path: Path,
) -> None:
    """The token changes (a restart on the same port): the open page's feed is refused, which
    a browser never retries, so the page says to open the address with the token again."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    with _counter(tmp_path, {"token": TOKEN, "port": port}) as c:
        page = browser.new_page()
        page.goto(_url(c) + "?token=" + TOKEN)
        expect(page.locator("body")).to_have_attribute("data-live", "1")
    with _counter(tmp_path, {"token": "another-screen-token-now", "port": port}) as c:
        expect(page.locator("body")).to_have_attribute("data-live", "expired")
        expect(page.locator("#link")).to_have_text(
            catalogue("fr").gettext(
                "Session ended: open this address again with ?token=… (see [screen])"
            )
        )


def test_screen_config_refuses_the_lan_without_a_token() -> None:
    text = '[station]\nid = "s1"\n[[categories]]\ncode = "C"\nname = "c"\n'
    with pytest.raises(ConfigError) as caught:
        parse_config(text + '\n[screen]\nenabled = true\nhost = "0.0.0.0"\n')
    assert "screen" in str(caught.value) and "token" in str(caught.value)
    section = parse_config(
        text + f'\n[screen]\nenabled = true\nhost = "0.0.0.0"\ntoken = "{TOKEN}"\n'
    ).screen
    assert section.token == TOKEN and not section.loopback
    assert not parse_config(text).screen.enabled  # off unless asked for
    assert not parse_config(EXAMPLE_CONFIG.read_text(encoding="utf-8")).screen.enabled


def test_a_port_in_use_is_logged_and_the_station_carries_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        caplog.set_level(logging.ERROR, logger="station")
        with _counter(tmp_path, {"port": port}) as c:
            assert c.daemon.screen is None
            errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
            assert any(f"127.0.0.1 port {port}" in e for e in errors), errors
            c.scan(VISITOR)
            _result(c, Outcome.VISIT_OPENED)
            c.scan("CAT-VET")
            _result(c, Outcome.CATEGORY_SET)
            c.scale.place("1.000", settle_s=0.05)
            c.press()
            _result(c, Outcome.RECORDED)
            assert c.store.count("weighing") == 1


def test_a_disabled_screen_imports_no_web_stack(tmp_path: Path) -> None:
    """With [screen] off (the default) the daemon runs without Starlette or uvicorn loaded."""
    script = textwrap.dedent(
        f"""
        import json, sys
        from station.sim import SimulatedCounter
        with SimulatedCounter({str(tmp_path)!r}, {{"sync": {{"enabled": False}}}}) as c:
            assert c.daemon.screen is None
        web = sorted(m for m in sys.modules if m.split(".")[0] in
                     ("starlette", "uvicorn", "sse_starlette", "jinja2", "station"))
        print(json.dumps(web))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert "station.daemon" in loaded  # the check ran the real daemon
    assert not [m for m in loaded if not m.startswith("station")], loaded
    assert "station.screen" not in loaded


@pytest.mark.parametrize("name", ["pesee-kiosk.service", "pesee-kiosk-cage.service"])
def test_kiosk_units_open_the_screen_where_the_daemon_serves_it(name: str) -> None:
    service = _service_keys((ROOT / "systemd" / name).read_text(encoding="utf-8"))
    start = service["ExecStart"].split()
    section = parse_config(EXAMPLE_CONFIG.read_text(encoding="utf-8")).screen
    address = f"http://{section.host}:{section.port}/"
    assert f"--app={address}" in start
    assert {"--kiosk", "--noerrdialogs", "--disable-infobars"} <= set(start)
    assert f"/dev/tcp/{section.host}/{section.port}" in service["ExecStartPre"]
    assert service["Restart"] == "always"


def _service_keys(text: str) -> dict[str, str]:
    """The [Service] section's keys of a unit file (each asserted to appear once)."""
    keys: dict[str, str] = {}
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        elif section == "Service":
            key, _sep, value = line.partition("=")
            assert key.strip() not in keys, f"[Service] {key}= twice"
            keys[key.strip()] = value.strip()
    return keys
