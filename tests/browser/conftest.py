"""The console in a real browser: a live gateway on a loopback port, headless Chromium.

Chromium is Debian's (``scripts/install`` installs it); Playwright only drives it, it never
downloads a browser. Each test gets its own database (SQLite or PostgreSQL, as the rest of the
suite) and its own server, seeded with partners whose requests went through the real pipeline.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from browser_support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    NIR,
    REPORT_CSP_VIOLATIONS,
    Site,
    free_port,
    run_in_thread,
    seed_history,
    seed_requests,
)
from playwright.sync_api import Browser, Page, sync_playwright

from gateway.app import create_app
from gateway.database import Database
from gateway.settings import Settings
from tests.factories import create_account, create_declaration, create_ingestion_run
from tests.gateway.console.console_support import add_default_staff
from tests.gateway.pipeline.pipeline_support import make_partner


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if Path(CHROMIUM).is_file():
        return
    skip = pytest.mark.skip(reason=f"no Chromium at {CHROMIUM}: run scripts/install")
    for item in items:
        if "tests/browser" in str(item.fspath):
            item.add_marker(skip)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Module scope, not session: while Playwright's sync API runs, this thread counts as
    # running an event loop, which the async tests collected after these would trip over.
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def site(settings: Settings) -> Iterator[Site]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    live = settings.model_copy(update={"issuer": url, "log_level": "warning"})
    db = Database(live.database_url)
    add_default_staff(db)
    with db.sync_session.begin() as session:
        account = create_account(session, nir=NIR, affiliation_date=dt.date(2024, 3, 1))
        for month in ("2026-01", "2026-02", "2026-03"):
            create_declaration(session, account, month, services_bic="1234.50")
        create_ingestion_run(session, "turnover", dt.datetime(2026, 4, 2, tzinfo=dt.UTC))
        siren = account.siren
    current = Site(url, db, live, NIR, siren)
    caf = make_partner(db, live, "CAF de Paris", "caf")
    caf.grant("turnover:read")
    caf.grant("consent:write")
    job_centre = make_partner(db, live, "Pôle emploi", "pole-emploi")
    job_centre.grant("turnover:read", purposes=["JOB_SEEKING"])
    cnam = make_partner(db, live, "CNAM", "cnam")
    cnam.grant("turnover:read", consent_required=True)
    run_in_thread(seed_history(current, caf))
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(live),
            host="127.0.0.1",
            port=port,
            log_config=None,
            access_log=False,
            lifespan="on",
        )
    )
    thread = threading.Thread(target=server.run, name="console-live-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the gateway did not start")
        time.sleep(0.02)
    try:
        run_in_thread(seed_requests(current, caf, job_centre, cnam))
        yield current
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        db.sync_engine.dispose()


@pytest.fixture
def page(browser: Browser, site: Site) -> Iterator[Page]:
    """A fresh browser context (no cookies) whose CSP violations fail the test."""
    context = browser.new_context(base_url=site.url, accept_downloads=True, locale="fr-FR")
    context.set_default_timeout(10_000)
    violations: list[str] = []
    # Reported by the page itself, with the element and the code at fault.
    context.expose_function("__reportCspViolation", lambda text: violations.append(text))
    context.add_init_script(REPORT_CSP_VIOLATIONS)
    tab = context.new_page()
    tab.on(
        "console",
        lambda message: (
            violations.append(f"{message.text} ({tab.url})")
            if "Content Security Policy" in message.text
            else None
        ),
    )
    dialogs: list[str] = []
    tab.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    yield tab
    context.close()
    assert violations == [], "the page broke its Content-Security-Policy"
    assert dialogs == [], "a script injected into the page ran"
