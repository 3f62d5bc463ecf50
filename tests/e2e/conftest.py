"""A live server and a real headless Chromium for browser tests."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from parcours.app import create_app
from parcours.core.clock import ManualClock
from parcours.core.db import Database
from tests.conftest import make_settings
from tests.live_server import serving

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def live_server(sqlite_db: Database, clock: ManualClock, tmp_path: Path) -> Iterator[str]:
    app = create_app(make_settings(tmp_path, sqlite_db), sqlite_db, clock)
    with serving(app) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    # Module scope, not session: Playwright's sync API keeps an event loop running while
    # it is open, and the async API tests that follow need the thread's loop free.
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        raise RuntimeError("Chromium is not installed: `./dev test` installs it with apt.")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_FLAGS
        )
        yield launched
        launched.close()
