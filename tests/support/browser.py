"""Debian's chromium driven by Playwright, for tests of pages the service serves.

Playwright's own browser download is not used: `executable_path` points at the system chromium
(`IRIS_TEST_CHROMIUM` overrides it); `make test` installs it first (scripts/ensure-chromium).
A missing browser fails the test rather than skipping it: a skipped browser test proves nothing.

Playwright's sync API keeps an event loop running in the main thread while it is started, so
callers start it for as short a time as they can (module-scoped fixtures), and tests
that call asyncio.run() afterwards are not disturbed.
"""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

CHROMIUM = Path(os.environ.get("IRIS_TEST_CHROMIUM", "/usr/bin/chromium"))
# Without the background-networking flags chromium tries to reach Google's hosts at start-up.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless chromium for the duration of the block."""
    if not CHROMIUM.exists():
        pytest.fail(f"chromium not found at {CHROMIUM}: run scripts/ensure-chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS
        )
        try:
            yield browser
        finally:
            browser.close()
