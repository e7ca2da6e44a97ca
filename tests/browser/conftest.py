"""Real headless Chromium (Debian's `chromium`) driven by Playwright. Playwright's own
browser download does not work here, so it is pointed at /usr/bin/chromium."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, async_playwright

CHROMIUM_ARGS = [
    "--no-sandbox", "--enable-unsafe-swiftshader", "--use-angle=swiftshader",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    exe = shutil.which("chromium") or "/usr/bin/chromium"
    if not shutil.which(exe):
        pytest.fail("Debian's chromium is not installed: run `make setup` with "
                    "WANT_CHROMIUM=1 (make test does)", pytrace=False)
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        yield b
        await b.close()
