"""Fixtures of the audit trail's tests."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from audit_factories import Cli
from sqlalchemy import text
from typer.testing import CliRunner, Result

from gateway.audit import AuditWriter, Es256CheckpointSigner, Pseudonymiser
from gateway.cli import app
from gateway.database import Database
from gateway.settings import Settings


@pytest.fixture
def signer() -> Es256CheckpointSigner:
    return Es256CheckpointSigner.generate()


@pytest.fixture
def pseudonymiser(db: Database, settings: Settings) -> Pseudonymiser:
    return Pseudonymiser(db, settings)


@pytest.fixture
async def writer(async_db: Database) -> AsyncIterator[AuditWriter]:
    async with AuditWriter(async_db) as audit_writer:
        yield audit_writer


@pytest.fixture
def app_role(db: Database) -> Iterator[str]:
    """A throwaway PostgreSQL role (roles are cluster-wide: dropped after the test)."""
    role = f"gw_app_{uuid.uuid4().hex[:8]}"
    with db.sync_engine.begin() as conn:
        conn.execute(text(f'CREATE ROLE "{role}" NOLOGIN'))
    yield role
    with db.sync_engine.begin() as conn:
        conn.execute(text(f'DROP OWNED BY "{role}"'))
        conn.execute(text(f'DROP ROLE "{role}"'))


@pytest.fixture
def cli(cli_environment: None) -> Cli:
    """``gateway audit ...`` against the test database: ``cli("verify", "--json")``."""
    runner = CliRunner()

    def invoke(*args: str, stdin: str | None = None) -> Result:
        return runner.invoke(app, ["audit", *args], input=stdin, catch_exceptions=False)

    return invoke
