"""Fixtures for the CFP connector: an ES256 attestation signer and the operation's context."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import pytest
from cfp_support import TODAY, Connect, Es256Signer
from factories import connector_context

from connectors.cfp.attestation import SIGNER_SERVICE
from connectors.kit import ConnectorContext
from gateway.database import Database


@pytest.fixture
def signer() -> Es256Signer:
    return Es256Signer()


@pytest.fixture
def connect(async_db: Database, signer: Es256Signer) -> Connect:
    """``async with connect() as ctx``: what the pipeline passes, with the signer as service."""

    @asynccontextmanager
    async def open_context(
        *, today: dt.date = TODAY, services: Mapping[str, Any] | None = None
    ) -> AsyncIterator[ConnectorContext]:
        async with connector_context(async_db, today=today, partner_kind="training_fund") as ctx:
            given = {SIGNER_SERVICE: signer} if services is None else services
            yield dataclasses.replace(ctx, services=given)

    return open_context
