"""Fixtures for the ACRE connector: its context, and Pôle emploi played by the mock app."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from acre_support import MOCK_ID, MOCK_SECRET, NOW, Connect, RecordingTransport
from factories import connector_context

from connectors.acre.pole_emploi import PoleEmploiClient
from connectors.kit import ConnectorContext
from gateway.database import Database
from mocks.pole_emploi_api import create_app


@pytest.fixture
def pole_emploi_transport() -> RecordingTransport:
    app = create_app(client_id=MOCK_ID, client_secret=MOCK_SECRET)
    return RecordingTransport(httpx.ASGITransport(app=app))


@pytest.fixture
async def pole_emploi(
    pole_emploi_transport: RecordingTransport,
) -> AsyncIterator[PoleEmploiClient]:
    client = PoleEmploiClient(
        "http://pole-emploi.mock",
        MOCK_ID,
        MOCK_SECRET,
        backoff_seconds=0.001,
        transport=pole_emploi_transport,
        now=lambda: NOW + dt.timedelta(seconds=1),
    )
    async with client:
        yield client


@pytest.fixture
def connect(async_db: Database, pole_emploi: PoleEmploiClient) -> Connect:
    """``async with connect(now=..., services=...) as ctx``, Pôle emploi by default."""

    @asynccontextmanager
    async def open_context(
        *, now: dt.datetime = NOW, services: Mapping[str, Any] | None = None
    ) -> AsyncIterator[ConnectorContext]:
        async with connector_context(async_db, today=now.date(), partner_kind="cnam") as ctx:
            given = {"pole_emploi": pole_emploi} if services is None else services
            yield dataclasses.replace(ctx, now=now, services=given)

    return open_context
