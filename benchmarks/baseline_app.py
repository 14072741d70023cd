"""The lookup benchmark's baseline: the same reads as the gateway, with nothing else around them.

No token, purpose, habilitation, consent, audit, rate limit, request log or middleware: each
route opens a session and calls the very connector function the gateway's pipeline calls (same
queries, same driver and pool through :class:`gateway.database.Database`, same response models
and serialisation, the CFP attestation signed with the same signer, and the same runtime: its
startup heap frozen, as `gateway serve` does). The difference between
the two servers' throughput is therefore the price of the safe path and nothing else.

Run: ``uvicorn benchmarks.baseline_app:create_app --factory`` with the gateway's environment.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import FastAPI, Path, Query
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from connectors.cfp.v1 import get_attestation
from connectors.kit import ConnectorContext, ConnectorError, Disclosure, Siren, YearMonth
from connectors.status.v1 import status_by_siren
from connectors.turnover.v2 import turnover_by_siren
from gateway.app import telemetry_config
from gateway.database import Database, utcnow
from gateway.pipeline.services import connector_services
from gateway.settings import get_settings

JSON = "application/json"


def create_app() -> FastAPI:
    settings = get_settings()
    # The gateway's own pool settings, so both servers reach PostgreSQL the same way.
    db = Database(
        settings.database_url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
    )
    services: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async with connector_services(db, settings) as made:
            services.update(made)
            # The runtime `gateway serve` gives its workers (the `freeze_heap_after_startup`
            # setting): without it, this server's full collections would stall it as they
            # would the gateway.
            gc.collect()
            gc.freeze()
            yield
        await db.dispose()

    # FastAPI's telemetry as the gateway has it (off unless configured), so both pay the same.
    app = FastAPI(lifespan=lifespan, telemetry=telemetry_config(settings.telemetry))

    async def answer(read: Callable[[ConnectorContext], Awaitable[Disclosure[Any]]]) -> Response:
        now = utcnow()
        context = ConnectorContext(
            reader=db.reader,
            open_session=db.session,
            today=now.date(),
            now=now,
            partner_kind="caf",
            services=services,
        )
        try:
            disclosure = await read(context)
        except ConnectorError as exc:
            return JSONResponse({"code": exc.code}, status_code=exc.status)
        body: BaseModel = disclosure.body
        return Response(body.model_dump_json(), media_type=JSON)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/v2/turnover/{siren}")
    async def turnover(
        siren: Siren,
        from_: Annotated[YearMonth | None, Query(alias="from")] = None,
        to: Annotated[YearMonth | None, Query()] = None,
    ) -> Response:
        return await answer(lambda ctx: turnover_by_siren(siren=siren, from_=from_, to=to, ctx=ctx))

    @app.get("/api/v1/status/{siren}")
    async def status(siren: Siren) -> Response:
        return await answer(lambda ctx: status_by_siren(siren=siren, ctx=ctx))

    @app.get("/api/v1/cfp/attestations/{siren}/{year}")
    async def cfp(siren: Siren, year: Annotated[int, Path()]) -> Response:
        return await answer(lambda ctx: get_attestation(siren=siren, year=year, ctx=ctx))

    return app
