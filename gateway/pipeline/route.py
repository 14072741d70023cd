"""The route class every connector operation runs under: the pipeline's outer shell.

Whatever happens inside (a refused token, a bad parameter, a missing consent, an upstream
failure, a disclosure), the shell renders it, then commits the audit record, and only then lets
the response leave. When the audit record cannot be committed the client gets 503 and no data.
"""

from __future__ import annotations

import calendar
import hashlib
import time
from collections.abc import Callable, Coroutine
from typing import Any

import structlog
from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Receive, Scope, Send

from connectors.kit import ConnectorError, ConnectorVersion, Operation
from gateway.database import utcnow
from gateway.errors import (
    INTERNAL_ERROR,
    GatewayError,
    GoneError,
    error_response,
    http_error_code,
    http_error_response,
    problem_response,
    unexpected_error_response,
    validation_code,
    validation_problem,
)
from gateway.pipeline.audit import AuditUnavailableError, record_request
from gateway.pipeline.context import PipelineState
from gateway.pipeline.endpoint import SERVE_ATTRIBUTE
from gateway.pipeline.idempotency import remember

log = structlog.get_logger(__name__)

PIPELINE_ATTRIBUTE = "__pipeline_operation__"


def deprecation_headers(version: ConnectorVersion, sunset_on: Any) -> dict[str, str]:
    deprecation = version.deprecation
    if deprecation is None:
        return {}
    deprecated_at = calendar.timegm(deprecation.deprecated_on.timetuple())
    return {
        # RFC 9745: Deprecation is a structured-field date; RFC 8594: Sunset is an HTTP date.
        "Deprecation": f"@{deprecated_at}",
        "Sunset": sunset_on.strftime("%a, %d %b %Y 00:00:00 GMT"),
        "Link": f'<{deprecation.successor}>; rel="successor-version"',
    }


class PipelineRoute(APIRoute):
    """An APIRoute whose handler wraps the endpoint with the audit-before-answer shell."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        version, operation = getattr(self.endpoint, PIPELINE_ATTRIBUTE)

        async def pipeline_handler(request: Request) -> Response:
            return await run_pipeline(request, handler, version, operation)

        return pipeline_handler


class ConnectorRoute(PipelineRoute):
    """The route of a connector operation: the pipeline without FastAPI's per-request machinery.

    FastAPI reads the endpoint's signature to document the operation and to match requests;
    serving one, the route runs the access check, binds the parameters
    (:mod:`gateway.pipeline.parameters`) and calls the endpoint itself. Per request, FastAPI's
    request handling cost as much CPU as the read it wrapped (``benchmarks/RESULTS.md``).
    """

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        self._version, self._operation = getattr(endpoint, PIPELINE_ATTRIBUTE)
        self._serve: Callable[[Request], Coroutine[Any, Any, Response]] = getattr(
            endpoint, SERVE_ATTRIBUTE
        )

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.methods or scope["method"] not in self.methods:
            await super().handle(scope, receive, send)  # FastAPI's 405
            return
        request = Request(scope, receive, send)
        try:
            response = await run_pipeline(request, self._serve, self._version, self._operation)
        except Exception as exc:
            # Only the audit step itself can fail this way. Nothing has been sent yet: answer
            # 500 here rather than through the server-error middleware, which connector
            # requests do not cross (see ConnectorLane).
            response = unexpected_error_response(request, exc)
        await response(scope, receive, send)


async def run_pipeline(
    request: Request,
    handler: Callable[[Request], Coroutine[Any, Any, Response]],
    version: ConnectorVersion,
    operation: Operation,
) -> Response:
    started = time.perf_counter()
    state = PipelineState(
        version=version,
        operation=operation,
        request_id=request.scope.get("state", {}).get("request_id", ""),
    )
    request.state.pipeline = state
    sunset_on = request.app.state.sunsets.get(version.key)
    try:
        if sunset_on is not None and utcnow().date() >= sunset_on:
            raise GoneError(
                "version.sunset",
                f"Version {version.version} of {version.dataset} was withdrawn; "
                f"use {version.deprecation.successor if version.deprecation else 'a newer one'}.",
            )
        response = await handler(request)
    except GatewayError as exc:
        state.outcome = "refused" if exc.status < 500 else "error"
        state.reason_code = exc.code
        response = error_response(request, exc)
    except ConnectorError as exc:
        state.outcome = exc.outcome
        state.reason_code = exc.code
        response = problem_response(
            request,
            status=exc.status,
            code=exc.code,
            title="Not found" if exc.status == 404 else "Error",
            detail=exc.detail,
            extra=exc.extra,
        )
    except RequestValidationError as exc:
        state.outcome = "refused"
        state.reason_code = validation_code(exc)
        response = validation_problem(request, exc)
    except StarletteHTTPException as exc:
        # The framework's own refusals (a body FastAPI could not parse), answered as the app
        # answers them, and recorded.
        state.outcome = "refused" if exc.status_code < 500 else "error"
        state.reason_code = http_error_code(exc)
        response = http_error_response(request, exc)
    except Exception as exc:
        # A defect, not the client's doing. No data leaves, and the attempt is recorded like
        # any other: an unaudited 500 would let a caller probe the API without a trace.
        state.outcome = "error"
        state.reason_code = INTERNAL_ERROR
        response = unexpected_error_response(request, exc)
    if sunset_on is not None:
        response.headers.update(deprecation_headers(version, sunset_on))
    if state.extra_headers:
        response.headers.update(state.extra_headers)
    body = bytes(response.body) if hasattr(response, "body") else b""
    try:
        await record_request(
            request,
            state,
            status=response.status_code,
            response_sha256=hashlib.sha256(body).hexdigest(),
            latency_ms=(time.perf_counter() - started) * 1000,
        )
    except AuditUnavailableError as exc:
        log.error("audit_unavailable", connector=version.key, operation=operation.name)
        return error_response(request, exc)
    if state.idempotency is not None and state.client_id and response.status_code < 500:
        try:
            await remember(request.app.state.db, state.client_id, state.idempotency, response)
        except SQLAlchemyError as exc:
            # The answer is audited and may leave; only a later replay of it is lost.
            log.warning("idempotency_record_failed", error_type=type(exc).__name__)
    return response
