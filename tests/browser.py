"""Headless Chromium for tests: Debian's /usr/bin/chromium driven by Playwright.

``open_page(url)`` is a context manager yielding a Playwright page whose console errors and
uncaught page errors are collected in ``page.errors`` (a list of strings). A missing browser
or Playwright fails the test with the install command: a browser test that skips would let a
broken page pass CI unnoticed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest

# Debian's package; PSAE_CHROMIUM points elsewhere (and then nothing else is tried)
CHROMIUM = os.environ.get("PSAE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
INSTALL = "apt-get install -y chromium; pip install '.[test]' (Playwright; no 'playwright install')"
# a fresh profile, and nothing that phones home: the test machine may have no network at all
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require():
    """Playwright's ``sync_playwright`` and the Chromium executable, or fail the test (never
    skip) saying how to install them."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(f"Playwright is not installed: {INSTALL}")
    if not os.path.isfile(CHROMIUM):
        pytest.fail(f"Chromium not found at {CHROMIUM}: {INSTALL}")
    return sync_playwright, CHROMIUM


@contextlib.contextmanager
def open_page(
    url: str | None = None, width: int = 1280, height: int = 900, timeout_ms: int = 20_000
) -> Iterator:
    """A fresh headless Chromium page (optionally at ``url``), with ``page.errors`` listing
    every console error and page error seen while it was open."""
    sync_playwright, exe = require()
    with tempfile.TemporaryDirectory(prefix="psae-chromium-") as profile:
        with sync_playwright() as pw:
            # launch_persistent_context is Playwright's way to pass a --user-data-dir
            ctx = pw.chromium.launch_persistent_context(
                profile,
                executable_path=exe,
                headless=True,
                args=ARGS,
                viewport={"width": width, "height": height},
            )
            try:
                page = ctx.pages[0] if ctx.pages else ctx.new_page()
                page.set_default_timeout(timeout_ms)
                errors: list[str] = []
                page.on(
                    "console",
                    lambda m: (
                        errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None
                    ),
                )
                page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
                page.errors = errors
                if url is not None:
                    page.goto(url)
                yield page
            finally:
                ctx.close()
