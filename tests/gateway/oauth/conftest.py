"""Fixtures of the OAuth tests: a test-only protected router, a client at the issuer's URL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from oauth_support import JwtClient, RefusalLog, Registry, protected_router

from gateway.database import Database
from gateway.settings import Settings


@pytest.fixture
async def app(app: FastAPI) -> FastAPI:
    app.include_router(protected_router)
    return app


@pytest.fixture
async def http(app: FastAPI, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    # At the issuer's own URL: client assertions name the token endpoint there.
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=settings.issuer) as client:
        yield client


@pytest.fixture
def registry(db: Database, settings: Settings) -> Registry:
    return Registry(db, settings)


@pytest.fixture
def caf(registry: Registry) -> JwtClient:
    """A CAF client (private_key_jwt) holding a habilitation for turnover:read."""
    registry.partner("CAF", "caf")
    client = registry.jwt_client("CAF")
    registry.grant("turnover:read", "CAF")
    return client


@pytest.fixture
async def raw_http(app: FastAPI, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """Like ``http`` but shows the status a real server would send (a 500) instead of
    re-raising the app's exception: a test proves "never a 500" with it."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=settings.issuer) as client:
        yield client


@pytest.fixture
def auth_log(monkeypatch: pytest.MonkeyPatch) -> RefusalLog:
    return RefusalLog(monkeypatch)
