"""Fixtures of the console's tests: staff accounts and an HTTP client at the issuer URL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from console_support import add_default_staff
from fastapi import FastAPI

from gateway.database import Database
from gateway.settings import Settings


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The suite's settings, with the sealer left to the tests: what is sealed is known."""
    return settings.model_copy(update={"audit_seal_interval_seconds": 3600.0})


@pytest.fixture
def staff(db: Database) -> None:
    add_default_staff(db)


@pytest.fixture
async def http(app: FastAPI, settings: Settings, staff: None) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=settings.issuer) as client:
        yield client
