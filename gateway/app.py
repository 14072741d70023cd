"""The FastAPI application: middleware, error handlers and every router, in one factory."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig
from starlette.types import ASGIApp

from connectors.registry import VERSIONS
from gateway import health
from gateway.audit.runtime import audit_runtime
from gateway.consent import endpoints as consent_endpoints
from gateway.console.routes import install_console
from gateway.database import Database
from gateway.docs import install_docs
from gateway.errors import install_problem_handlers
from gateway.logging import configure_logging
from gateway.middleware import RequestContextMiddleware
from gateway.migrate import schema_state
from gateway.oauth import endpoints as oauth_endpoints
from gateway.openapi import install_openapi
from gateway.pipeline.guard import authorise_for, justify
from gateway.pipeline.lane import ConnectorLane
from gateway.pipeline.route import ConnectorRoute
from gateway.pipeline.routes import add_connector_routes, sunset_dates
from gateway.pipeline.services import connector_services
from gateway.settings import Settings, get_settings


class SchemaBehindError(RuntimeError):
    """The database needs migrations the running code expects: the server must not serve."""


def ensure_schema_current(db: Database) -> None:
    state = schema_state(db.sync_engine, db.url)
    if not state.is_current:
        raise SchemaBehindError(state.describe())


def telemetry_config(enabled: bool) -> TelemetryConfig:
    return {"tracing": enabled, "metrics": enabled, "logs": enabled}


class GatewayApp(FastAPI):
    """The application, whose outermost layers are the request context and the connector lane.

    Every response, whatever produced it (a connector route, another route, the server-error
    middleware's 500), gets its request id, headers and log line; connector requests then go
    straight to their route (:mod:`gateway.pipeline.lane`).
    """

    connector_routes: Sequence[ConnectorRoute] = ()

    def build_middleware_stack(self) -> ASGIApp:
        settings: Settings | None = getattr(self.state, "settings", None)
        return RequestContextMiddleware(
            ConnectorLane(super().build_middleware_stack(), self.connector_routes),
            max_body_bytes=settings.max_request_body_bytes if settings else None,
        )


def create_app(settings: Settings | None = None) -> GatewayApp:
    settings = settings or get_settings()
    # Here rather than only in the CLI: each server worker process builds its own app.
    configure_logging(settings.log_format, settings.log_level, settings.log_file)
    db = Database(
        settings.database_url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ensure_schema_current(db)
        async with (
            audit_runtime(db, settings) as audit,
            connector_services(db, settings) as services,
        ):
            app.state.audit = audit
            app.state.connector_services = services
            if settings.freeze_heap_after_startup:
                gc.collect()
                gc.freeze()
            yield
            guard = getattr(app.state, "token_guard", None)
            if guard is not None:
                await guard.close()
        await db.dispose()

    app = GatewayApp(
        title="Tell-us-once gateway (URSSAF)",
        version="1.0.0",
        summary="URSSAF shares what it knows of self-employed people with public partners.",
        lifespan=lifespan,
        # Served by install_docs from installed assets: FastAPI's own pages load a CDN.
        docs_url=None,
        redoc_url=None,
        telemetry=telemetry_config(settings.telemetry),
    )
    app.state.settings = settings
    app.state.db = db
    install_problem_handlers(app)
    app.include_router(health.router)
    app.include_router(oauth_endpoints.router)
    app.state.sunsets = sunset_dates(VERSIONS, settings.sunset_dates)
    connector_routes = add_connector_routes(
        app, VERSIONS, authorise_for=authorise_for, justify=justify
    )
    app.include_router(consent_endpoints.router)
    install_console(app, settings)
    install_openapi(app)
    install_docs(app)
    app.connector_routes = connector_routes
    return app
