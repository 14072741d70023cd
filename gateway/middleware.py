"""ASGI middleware shared by every route: request id, request log line, response headers,
and the cap on request bodies.

Every response carries the request id and the security headers, plus any header a step of
the request handed to :func:`add_response_headers` (the rate-limit state, set by the token
check), whatever produced the response: a route, an error handler or a refusal.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterable
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.errors import RequestTooLargeError
from gateway.identifiers import token_not_nir_shaped
from gateway.logging import start_request_fields

REQUEST_ID_HEADER = "x-request-id"
_REQUEST_ID_HEADER_BYTES = REQUEST_ID_HEADER.encode()
_CONTENT_LENGTH = b"content-length"
_ACCEPTABLE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_RESPONSE_HEADERS_KEY = "response_headers"

log = structlog.get_logger("gateway.request")

SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]


class RequestContextMiddleware:
    """Takes or makes a request id, binds it to every log line and returns it to the caller.

    With ``max_body_bytes``, reading a body larger than that (as declared by Content-Length,
    or as received) raises :class:`~gateway.errors.RequestTooLargeError` in the code that
    reads it, which answers 413: a connector route's pipeline audits the refusal.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int | None = None) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id_from(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        start_request_fields(request_id=request_id)
        started = time.perf_counter()
        status_holder: dict[str, Any] = {}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                message["headers"] = _with_our_headers(
                    message.get("headers", ()),
                    request_id,
                    scope["state"].get(_RESPONSE_HEADERS_KEY),
                )
            await send(message)

        if self.max_body_bytes is not None:
            receive = _capped(scope, receive, self.max_body_bytes)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            log.info(
                "request_finished",
                method=scope["method"],
                path=scope["path"],
                status=status_holder.get("status"),
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
            )


def _capped(scope: Scope, receive: Receive, limit: int) -> Receive:
    """``receive`` refusing a body of more than ``limit`` bytes, before reading past it."""
    received = 0

    async def receive_capped() -> Message:
        nonlocal received
        if received == 0 and _declared_length(scope) > limit:
            raise RequestTooLargeError(limit)
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise RequestTooLargeError(limit)
        return message

    return receive_capped


def _declared_length(scope: Scope) -> int:
    for name, value in scope.get("headers", []):
        if name == _CONTENT_LENGTH:
            # The server has already refused a malformed Content-Length.
            return int(value) if value.isdigit() else 0
    return 0


def _with_our_headers(
    headers: Iterable[tuple[bytes, bytes]], request_id: str, added: dict[str, str] | None
) -> list[tuple[bytes, bytes]]:
    """The response's headers, then ours (request id, security, the request's own) unless the
    response set one of the same name itself."""
    result = list(headers)
    names = {name.lower() for name, _ in result}
    result.append((_REQUEST_ID_HEADER_BYTES, request_id.encode()))
    result.extend(header for header in SECURITY_HEADERS if header[0] not in names)
    for name, value in (added or {}).items():
        raw = name.lower().encode()
        if raw not in names:
            result.append((raw, value.encode()))
    return result


def _request_id_from(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == _REQUEST_ID_HEADER_BYTES:
            candidate: str = value.decode("latin-1")
            if _ACCEPTABLE_REQUEST_ID.match(candidate):
                return candidate
            break
    return token_not_nir_shaped(_new_request_id)


def _new_request_id() -> str:
    # 128 random bits in hex, as a UUID4's hex form has, without building a UUID.
    return secrets.token_hex(16)


def add_response_headers(scope: Scope, headers: dict[str, str]) -> None:
    """Headers for the response of this request, whatever produces it; a header the response
    sets itself wins."""
    scope.setdefault("state", {}).setdefault(_RESPONSE_HEADERS_KEY, {}).update(headers)
