"""Liveness and readiness probes for orchestrators and load balancers."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from sqlalchemy import text

from gateway.database import Database
from gateway.errors import ServiceUnavailableError
from gateway.migrate import schema_state

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="The database is reachable and its schema is current",
    responses={503: {"description": "Not ready", "content": {"application/problem+json": {}}}},
)
async def readyz(request: Request) -> dict[str, str]:
    db: Database = request.app.state.db
    try:
        async with db.session() as session:
            await session.execute(text("SELECT 1"))
        state = await asyncio.to_thread(schema_state, db.sync_engine, db.url)
    except Exception as exc:
        raise ServiceUnavailableError(
            "readiness.database_unreachable", "The database cannot be reached."
        ) from exc
    if not state.is_current:
        raise ServiceUnavailableError("readiness.schema_behind", state.describe())
    return {"status": "ready"}
