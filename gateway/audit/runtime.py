"""The audit trail inside the running app: the writer, the pseudonymiser and the sealer loop.

Started by the app's lifespan and reachable as ``app.state.audit``. On shutdown the writer
commits what is queued first, then the sealer stops after one last run, so a clean stop leaves
nothing unsealed.

The sealer runs in a thread of the app's process unless ``audit_seal_in_process`` is off:
``gateway serve`` turns it off and runs the sealer as a process of its own beside the workers
(:mod:`gateway.audit.sealer_process`), since hashing and signing in a thread would take the
GIL from the requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass

from gateway.audit.pseudonym import Pseudonymiser
from gateway.audit.sealer import seal_until_stopped
from gateway.audit.signing import CheckpointSigner, gateway_checkpoint_signer
from gateway.audit.writer import AuditWriter
from gateway.database import Database
from gateway.settings import Settings


@dataclass(frozen=True)
class AuditRuntime:
    writer: AuditWriter
    pseudonymiser: Pseudonymiser
    signer: CheckpointSigner


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
    stop = threading.Event()
    runtime.writer.start()
    sealer = None
    if settings.audit_seal_in_process:
        interval = settings.audit_seal_interval_seconds
        sealer = asyncio.create_task(
            asyncio.to_thread(seal_until_stopped, db.sync_engine, signer, interval, stop),
            name="audit-sealer",
        )
    try:
        yield runtime
    finally:
        await runtime.writer.stop()
        stop.set()
        if sealer is not None:
            await sealer
