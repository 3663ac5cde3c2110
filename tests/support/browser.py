"""Real headless Chromium (Debian's package) driven by Playwright, for the web pages' tests."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, sync_playwright

# The flags the issues ask for: no sandbox (root in CI), no GPU, and no background traffic —
# this machine's network is closed and Chromium would otherwise retry Google's hosts.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def chromium_path() -> str:
    """Debian's Chromium; `make test` installs it (tools/ensure-debs.sh chromium)."""
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        raise RuntimeError(
            "chromium is missing: `make test` installs it (or: apt install chromium)"
        )
    return path


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[BrowserContext]:
    """A fresh Chromium with its own --user-data-dir, closed after the test."""
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=chromium_path(),
            headless=True,
            args=CHROMIUM_ARGS,
            locale="fr-FR",
            viewport={"width": 1280, "height": 800},
        )
        context.set_default_timeout(10_000)
        try:
            yield context
        finally:
            context.close()
