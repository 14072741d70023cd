"""Fixtures to call connector operations as the pipeline would, on the test's own database."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator

import pytest
from factories import Connect, connector_context

from gateway.database import Database


@pytest.fixture
async def connect(db: Database) -> AsyncIterator[Connect]:
    """``async with connect(today=...) as ctx``: what the pipeline would pass an operation."""
    yield functools.partial(connector_context, db)
    # The ``db`` fixture only disposes the sync engine; pooled async connections must be closed
    # on the loop that opened them.
    await db.async_engine.dispose()
