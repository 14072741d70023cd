"""What the browser tests share: Chromium's flags, the seeded site, screenshots."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import shutil
import socket
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page
from sqlalchemy import select

from gateway.audit import AuditEntry, AuditWriter, Pseudonymiser
from gateway.database import Database
from gateway.identifiers import siren_with_checksum
from gateway.partners.models import Partner as PartnerRow
from gateway.settings import Settings
from tests.gateway.pipeline.pipeline_support import Partner

CHROMIUM = (
    os.environ.get("GATEWAY_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
)
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
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
XSS_CASE_REFERENCE = "<script>window.__pwned = 1</script><img src=x onerror=alert(1)>"
NIR = "269054958815780"
REPORT_CSP_VIOLATIONS = """
document.addEventListener('securitypolicyviolation', (event) => {
  const target = event.target && event.target.outerHTML ? event.target.outerHTML.slice(0, 200) : '';
  window.__reportCspViolation(
    `${event.violatedDirective} ${event.sourceFile}:${event.lineNumber}:${event.columnNumber} `
    + `sample=${event.sample} target=${target} page=${location.pathname}`);
});
"""


@dataclass
class Site:
    """A running gateway with seeded data: ``url`` is its base URL."""

    url: str
    db: Database
    settings: Settings
    nir: str
    siren: str


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def seed_history(site: Site, caf: Partner) -> None:
    """A month of the CAF's older traffic about other people: more than one page.

    Written before the server starts, so that the sealer seals it in its first batch: records
    dated long before a checkpoint and sealed after it are what ``verify`` calls backdated.
    """
    with site.db.sync_session() as session:
        caf_id = session.scalar(select(PartnerRow.id).where(PartnerRow.name == caf.name))
    pseudonymiser = Pseudonymiser(site.db, site.settings)
    start = dt.datetime(2026, 3, 2, 8, tzinfo=dt.UTC)
    async with AuditWriter(site.db) as writer:
        entries = [
            AuditEntry(
                request_id=f"seed-{index:04d}",
                operation="get_turnover",
                outcome="granted",
                http_status=200,
                occurred_at=start + dt.timedelta(hours=7 * index),
                client_id=caf.client_id,
                partner_id=caf_id,
                connector="turnover",
                connector_version=2,
                purpose="RSA_INSTRUCTION",
                recipient="21750001600019",
                legal_basis="Code de la sécurité sociale, art. L. 114-8",
                case_reference=f"RSA-2026-{index:04d}",
                subjects=[
                    await pseudonymiser.subject("siren", siren_with_checksum(f"{73282932 + index}"))
                ],
            )
            for index in range(60)
        ]
        for entry in entries:
            await writer.write(entry)
    await site.db.async_engine.dispose()


async def seed_requests(site: Site, caf: Partner, job_centre: Partner, cnam: Partner) -> None:
    """Disclosures of the person through the real pipeline, a consent and a refusal."""
    async with httpx.AsyncClient(base_url=site.url, timeout=10) as http:
        url = f"/api/v2/turnover/{site.siren}?from=2026-01&to=2026-03"
        headers = await caf.headers(http, "turnover:read", **{"Case-Reference": XSS_CASE_REFERENCE})
        assert (await http.get(url, headers=headers)).status_code == 200
        consent = await http.post(
            "/api/v1/consents",
            json={
                "subject": {"nir": site.nir},
                "scopes": ["turnover:read"],
                "purpose": "RSA_INSTRUCTION",
                "evidence": "Formulaire signé, dossier 2026-000123",
                "expires_at": (dt.datetime.now(dt.UTC) + dt.timedelta(days=90)).isoformat(),
            },
            headers=await caf.headers(http, "consent:write"),
        )
        assert consent.status_code == 201, consent.text
        headers = await job_centre.headers(
            http, "turnover:read", purpose="JOB_SEEKING", **{"Case-Reference": "PE-2026-77"}
        )
        assert (await http.get(url, headers=headers)).status_code == 200
        # Refused before the person is known (purpose), and refused about them (no consent).
        refused = await job_centre.headers(http, "turnover:read", purpose="RSA_INSTRUCTION")
        assert (await http.get(url, headers=refused)).status_code == 403
        refused = await cnam.headers(http, "turnover:read")
        assert (await http.get(url, headers=refused)).status_code == 403


def run_in_thread(coroutine: Coroutine[Any, Any, None]) -> None:
    # Playwright's sync API owns this thread's event loop: run from another thread.
    with ThreadPoolExecutor(1) as executor:
        executor.submit(asyncio.run, coroutine).result()


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    # caret="initial": hiding the caret makes Playwright inject a style, which the page's CSP
    # (rightly) blocks and reports.
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True, caret="initial")
