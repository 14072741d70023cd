"""The audit trail inside the running app: the writer, the pseudonymiser and the sealer loop.

Started by the app's lifespan and reachable as ``app.state.audit``. On shutdown the writer
commits what is queued first, then the sealer stops after one last run, so a clean stop leaves
nothing unsealed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import structlog
from sqlalchemy import Engine

from gateway.audit.pseudonym import Pseudonymiser
from gateway.audit.sealer import run_sealer_once
from gateway.audit.signing import CheckpointSigner, gateway_checkpoint_signer
from gateway.audit.writer import AuditWriter
from gateway.database import Database
from gateway.settings import Settings

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class AuditRuntime:
    writer: AuditWriter
    pseudonymiser: Pseudonymiser
    signer: CheckpointSigner


async def _seal_once(engine: Engine, signer: CheckpointSigner) -> None:
    try:
        # Hashing and signing are CPU work on a sync connection: off the event loop.
        await asyncio.to_thread(run_sealer_once, engine, signer)
    except Exception as exc:
        # Unsealed records stay queued and are sealed by a later run.
        log.error("audit_seal_failed", error_type=type(exc).__name__)


async def _seal_periodically(
    engine: Engine, signer: CheckpointSigner, interval: float, stop: asyncio.Event
) -> None:
    while not stop.is_set():
        await _seal_once(engine, signer)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)


@contextlib.asynccontextmanager
async def audit_runtime(
    db: Database, settings: Settings, *, signer: CheckpointSigner | None = None
) -> AsyncIterator[AuditRuntime]:
    signer = signer or gateway_checkpoint_signer(settings, db.sync_engine)
    runtime = AuditRuntime(
        writer=AuditWriter(
            db,
            timeout=settings.audit_write_timeout_seconds,
            batch_size=settings.audit_write_batch_size,
        ),
        pseudonymiser=Pseudonymiser(db, settings),
        signer=signer,
    )
    stop = asyncio.Event()
    runtime.writer.start()
    sealer = asyncio.create_task(
        _seal_periodically(db.sync_engine, signer, settings.audit_seal_interval_seconds, stop),
        name="audit-sealer",
    )
    try:
        yield runtime
    finally:
        await runtime.writer.stop()
        stop.set()
        await sealer
        await _seal_once(db.sync_engine, signer)
