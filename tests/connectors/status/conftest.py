"""Fixtures to call connector operations as the pipeline would, on the test's own database."""

from __future__ import annotations

import functools

import pytest
from factories import Connect, connector_context

from gateway.database import Database


@pytest.fixture
def connect(async_db: Database) -> Connect:
    """``async with connect(today=...) as ctx``: what the pipeline would pass an operation."""
    return functools.partial(connector_context, async_db)
