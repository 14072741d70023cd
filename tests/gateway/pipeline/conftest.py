"""Fixtures of the pipeline tests: the whole app at its issuer URL, a partner, a person."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from pipeline_support import Partner, make_partner

from gateway.database import Database
from gateway.reference.models import Account
from gateway.settings import Settings
from tests.factories import create_account, create_declaration, create_ingestion_run


@pytest.fixture(autouse=True)
def close_test_pool(async_db: Database) -> None:
    """The helpers (``audit_rows`` and the like) read through ``db``'s async pool."""


@pytest.fixture
async def http(app: FastAPI, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=settings.issuer) as client:
        yield client


@pytest.fixture
def caf(db: Database, settings: Settings) -> Partner:
    partner = make_partner(db, settings, "CAF", "caf")
    partner.grant("turnover:read")
    return partner


@pytest.fixture
def person(db: Database) -> Account:
    """A monthly micro-entrepreneur with three declarations in 2026."""
    import datetime as dt

    with db.sync_session.begin() as session:
        account = create_account(
            session, nir="269054958815780", affiliation_date=dt.date(2024, 3, 1)
        )
        for month in ("2026-01", "2026-02", "2026-03"):
            create_declaration(session, account, month, services_bic="1234.50")
        create_ingestion_run(session, "turnover", dt.datetime(2026, 4, 2, tzinfo=dt.UTC))
        session.expunge(account)
    return account
