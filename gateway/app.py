"""The FastAPI application: middleware, error handlers and every router, in one factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from gateway import health
from gateway.database import Database
from gateway.errors import install_problem_handlers
from gateway.middleware import RequestContextMiddleware
from gateway.migrate import schema_state
from gateway.settings import Settings, get_settings


class SchemaBehindError(RuntimeError):
    """The database needs migrations the running code expects: the server must not serve."""


def ensure_schema_current(db: Database) -> None:
    state = schema_state(db.sync_engine, db.url)
    if not state.is_current:
        raise SchemaBehindError(state.describe())


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    db = Database(settings.database_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ensure_schema_current(db)
        yield
        await db.dispose()

    app = FastAPI(
        title="Tell-us-once gateway (URSSAF)",
        version="1.0.0",
        summary="URSSAF shares what it knows of self-employed people with public partners.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.db = db
    install_problem_handlers(app)
    app.add_middleware(RequestContextMiddleware)
    app.include_router(health.router)
    return app
