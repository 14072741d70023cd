"""Errors as RFC 9457 problem details, each with a stable machine ``code``.

The tree: ``GatewayError`` is the root; each subclass fixes an HTTP status. Raise one with a
stable code (``dotted.snake_case``) and a detail that never echoes personal identifiers; the
handlers installed by ``install_problem_handlers`` render every error, including framework
ones, as ``application/problem+json``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway.identifiers import InvalidIdentifierError

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "urn:dlnuf:problem:"
# The code of a failure nothing else handled: a defect of ours, never the client's input.
INTERNAL_ERROR = "internal_error"

log = structlog.get_logger(__name__)


class GatewayError(Exception):
    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"

    def __init__(
        self,
        code: str,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra or {}


class BadRequestError(GatewayError):
    status = 400
    title = "Bad request"


class UnauthorizedError(GatewayError):
    status = 401
    title = "Unauthorized"


class ForbiddenError(GatewayError):
    status = 403
    title = "Forbidden"


class NotFoundError(GatewayError):
    status = 404
    title = "Not found"


class ConflictError(GatewayError):
    status = 409
    title = "Conflict"


class GoneError(GatewayError):
    status = 410
    title = "Gone"


class PayloadTooLargeError(GatewayError):
    status = 413
    title = "Payload too large"


class RequestTooLargeError(StarletteHTTPException):
    """A request body past ``max_request_body_bytes``, raised while it is being received.

    An HTTPException, because FastAPI turns any other error met while reading the body of one
    of its routes into 400; ``error`` is the problem every route answers with.
    """

    def __init__(self, limit: int) -> None:
        self.error = PayloadTooLargeError(
            "request.too_large",
            f"The request body is larger than the {limit} bytes this gateway accepts.",
            extra={"max_bytes": limit},
        )
        super().__init__(status_code=self.error.status, detail=self.error.detail)


class UnprocessableError(GatewayError):
    status = 422
    title = "Unprocessable content"


class TooManyRequestsError(GatewayError):
    status = 429
    title = "Too many requests"


class BadGatewayError(GatewayError):
    status = 502
    title = "Bad gateway"


class ServiceUnavailableError(GatewayError):
    status = 503
    title = "Service unavailable"


class GatewayTimeoutError(GatewayError):
    status = 504
    title = "Gateway timeout"


def request_id_of(request: Request) -> str | None:
    value = request.scope.get("state", {}).get("request_id")
    return value if isinstance(value, str) else None


def problem_response(
    request: Request,
    *,
    status: int,
    code: str,
    title: str,
    detail: str,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + code,
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    request_id = request_id_of(request)
    if request_id:
        body["instance"] = f"urn:request:{request_id}"
        body["request_id"] = request_id
    body.update(extra or {})
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


def error_response(request: Request, error: GatewayError) -> JSONResponse:
    return problem_response(
        request,
        status=error.status,
        code=error.code,
        title=error.title,
        detail=error.detail,
        headers=error.headers,
        extra=error.extra,
    )


def validation_code(exc: RequestValidationError) -> str:
    """The stable code of a validation failure: an identifier's own code when one is at fault."""
    for err in exc.errors():
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, InvalidIdentifierError):
            return cause.code
    return "request.invalid"


def validation_problem(request: Request, exc: RequestValidationError) -> JSONResponse:
    return problem_response(
        request,
        status=422,
        code=validation_code(exc),
        title="Unprocessable content",
        detail="The request does not match the documented schema.",
        extra={"errors": _validation_errors(exc)},
    )


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    # Pydantic echoes the offending input; it may be a NIR, so only location and message
    # leave, and a message that wraps our own error is replaced by its fixed reason.
    errors = []
    for err in exc.errors():
        cause = (err.get("ctx") or {}).get("error")
        message = cause.reason if isinstance(cause, InvalidIdentifierError) else err.get("msg", "")
        errors.append({"location": [str(part) for part in err.get("loc", ())], "message": message})
    return errors


_HTTP_CODES = {
    400: ("request.malformed", "Bad request"),
    404: ("route.not_found", "Not found"),
    405: ("route.method_not_allowed", "Method not allowed"),
    413: ("request.too_large", "Payload too large"),
    415: ("request.unsupported_media_type", "Unsupported media type"),
}


def _http_code(exc: StarletteHTTPException) -> tuple[str, str]:
    return _HTTP_CODES.get(exc.status_code, (f"http.{exc.status_code}", "Error"))


def http_error_code(exc: StarletteHTTPException) -> str:
    """The stable code of the answer :func:`http_error_response` gives."""
    if isinstance(exc, RequestTooLargeError):
        return exc.error.code
    return _http_code(exc)[0]


def http_error_response(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """The problem+json answer to a refusal of the framework's (a route not found, a body it
    could not parse)."""
    if isinstance(exc, RequestTooLargeError):
        return error_response(request, exc.error)
    code, title = _http_code(exc)
    return problem_response(
        request,
        status=exc.status_code,
        code=code,
        title=title,
        detail=title + ".",
        headers=dict(exc.headers or {}),
    )


def unexpected_error_response(request: Request, exc: Exception) -> JSONResponse:
    """500, logged with its traceback: the answer to a failure nothing else handled."""
    log.error("unexpected_error", error_type=type(exc).__name__, exc_info=exc)
    return problem_response(
        request,
        status=500,
        code=INTERNAL_ERROR,
        title="Internal error",
        detail="An unexpected error occurred; quote the request id to the operators.",
    )


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(GatewayError)
    async def _gateway_error(request: Request, exc: GatewayError) -> JSONResponse:
        return error_response(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_problem(request, exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return http_error_response(request, exc)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return unexpected_error_response(request, exc)
