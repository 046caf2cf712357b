"""
The dashboard page in headless Chromium: it follows a breaker as it trips.

Needs Debian's chromium (/usr/bin/chromium) and the playwright package
(Playwright's own browser download is not used). Without them the test
skips, or fails when RECOVERY_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from recovery.backup.repository import BackupRepository
from recovery.dashboard.collect import Collector, RedisRegistryReader
from recovery.dashboard.server import DashboardServer
from recovery.stores.sqlite import SqliteStore
from recovery.transactions import Saga, SqliteJournal, Step
from tests.conftest import _missing, free_port

from .helpers import calls, sqlite_breaker

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CHROMIUM = os.environ.get("RECOVERY_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 15_000


@pytest.fixture
def browser_page() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright package is not installed")
    if shutil.which(CHROMIUM) is None:
        _missing(f"no Chromium at {CHROMIUM} (apt-get install chromium)")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            yield page
        finally:
            browser.close()


@pytest.fixture
def registry_prefix(redis_url: str, unique_name: str) -> Iterator[str]:
    import redis

    yield unique_name
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(f"{unique_name}:*"):
        client.delete(key)
    client.close()


def fill_sources(tmp_path: Path, redis_url: str, prefix: str) -> None:
    """Give the page a saga journal, a backup repository and a registry."""
    from recovery.discovery import RedisServiceRegistry

    journal = SqliteJournal(tmp_path / "journal.db")
    saga = Saga("signup", [Step("create", lambda ctx: 1)], journal=journal)
    for number in range(2):
        saga.run(saga_id=f"signup-{number}")
    journal.close()

    data = tmp_path / "data"
    data.mkdir()
    (data / "orders.csv").write_text("id,total\n1,20\n")
    repo = BackupRepository(tmp_path / "repo")
    repo.init()
    repo.backup(data, tags=["nightly"])

    registry = RedisServiceRegistry(redis_url, prefix=prefix, watch=False)
    first, _ = registry.register("orders", ["10.1.0.1:8080", "10.1.0.2:8080"])
    registry.report_check(first, False)
    registry.close()


def test_the_page_shows_a_breaker_open_once_it_trips(
    browser_page: Any, tmp_path: Path, redis_url: str, registry_prefix: str
) -> None:
    from playwright.sync_api import expect

    state = tmp_path / "state.db"
    payments = sqlite_breaker(state, "payments")
    calls(payments, ok=5)
    calls(sqlite_breaker(state, "search"), ok=3, failed=1)
    fill_sources(tmp_path, redis_url, registry_prefix)
    collector = Collector(
        breakers=SqliteStore(state),
        registries=[RedisRegistryReader(redis_url, prefix=registry_prefix)],
        journal=SqliteJournal(tmp_path / "journal.db"),
        repository=BackupRepository(tmp_path / "repo"),
    )
    page = browser_page
    # Script errors and refused inline styles or scripts (the page's
    # content security policy) both land here.
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on(
        "console",
        lambda message: (
            problems.append(message.text) if message.type == "error" else None
        ),
    )

    with DashboardServer(collector, port=free_port(), interval=0.25) as server:
        page.goto(server.url)
        card = page.locator('[data-breaker="payments"]')
        expect(card.locator(".state")).to_have_text("CLOSED", timeout=TIMEOUT_MS)
        expect(page.locator("#link")).to_have_text("live")

        calls(payments, ok=1, failed=3)

        expect(card.locator(".state")).to_have_text("OPEN", timeout=TIMEOUT_MS)
        # 60 s minus the time since it tripped, shown to a tenth.
        expect(card.locator(".next-trial")).to_have_text(re.compile(r"^[56]\d\.\d s$"))
        expect(card).to_have_class(re.compile(r"\bopen\b"))
        expect(page.locator('[data-breaker="search"] .state')).to_have_text("CLOSED")
        expect(page.locator('[data-service="orders"] caption')).to_have_text(
            "orders: 1 of 2 healthy"
        )
        expect(page.locator('#sagas [data-status="completed"] b')).to_have_text("2")
        expect(page.locator("#backups tbody tr")).to_have_count(1)
        page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)

    # The server is gone: the page says so instead of showing stale state.
    expect(page.locator("#link")).to_have_text(
        re.compile(r"^disconnected"), timeout=TIMEOUT_MS
    )
    assert [p for p in problems if "ERR_CONNECTION_REFUSED" not in p] == []
