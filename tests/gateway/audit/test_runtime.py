"""The audit trail inside the app: the writer, and the sealer loop started by the lifespan."""

from __future__ import annotations

import asyncio

from audit_factories import make_entry, subject_of
from fastapi import FastAPI
from sqlalchemy import func, select

from gateway.app import create_app
from gateway.audit import AuditRuntime, verify_trail
from gateway.audit.models import AuditPending, AuditSeal
from gateway.database import Database
from gateway.settings import Settings


def count(db: Database, table: type) -> int:
    with db.sync_engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


async def test_the_running_app_seals_what_it_writes(app: FastAPI, db: Database) -> None:
    """Sealing lag: records written by requests are sealed by the background loop."""
    audit: AuditRuntime = app.state.audit
    await asyncio.gather(
        *(audit.writer.write(make_entry(i, subjects=[subject_of(i)])) for i in range(40))
    )
    for _ in range(60):
        if count(db, AuditPending) == 0:
            break
        await asyncio.sleep(0.1)
    assert count(db, AuditSeal) == 40
    report = verify_trail(db.sync_engine, audit.signer)
    assert report.ok, report.problem


async def test_a_clean_shutdown_leaves_nothing_unsealed(settings: Settings, db: Database) -> None:
    slow = settings.model_copy(update={"audit_seal_interval_seconds": 600})
    app = create_app(slow)
    async with app.router.lifespan_context(app):
        audit: AuditRuntime = app.state.audit
        await asyncio.sleep(0.3)  # the loop's first run is over: the next is 10 minutes away
        await asyncio.gather(*(audit.writer.write(make_entry(i)) for i in range(10)))
    assert count(db, AuditPending) == 0
    assert count(db, AuditSeal) == 10
