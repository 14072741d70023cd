"""HTTP routes of the authorisation server: token, revocation, introspection, metadata, JWKS.

The async routes read the form themselves (bounded, every parameter at most once: RFC 6749
section 3.2), then hand it to the Authlib server in a worker thread, at most
``oauth_max_concurrent_requests`` at once per process; a request that waited
``oauth_queue_seconds`` for its turn gets 503 ``temporarily_unavailable`` with ``Retry-After``.

Errors of these routes are OAuth errors *and* problem details in one JSON object, served as
``application/json`` (what OAuth client libraries expect): ``error`` and
``error_description`` (RFC 6749 section 5.2) beside ``type``, ``title``, ``status``,
``detail`` and ``code`` (``oauth.<error>``, RFC 9457). ``invalid_client`` is always a 401.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl

import structlog
from authlib.oauth2.rfc6749 import InvalidRequestError, OAuth2Error
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from gateway.database import Database, utcnow
from gateway.errors import PROBLEM_TYPE_BASE, request_id_of
from gateway.keys.store import KeyStore
from gateway.oauth.server import (
    ASSERTION_ALGORITHMS,
    AUTH_METHODS,
    CLIENT_AUTHENTICATION_FAILED,
    GRANT_TYPE,
    FormRequest,
    GatewayAuthorizationServer,
    OAuthResult,
    RegisteredClient,
    oauth_error,
)
from gateway.partners.models import Scope
from gateway.partners.service import credential_expires_soon
from gateway.settings import Settings

CREDENTIAL_EXPIRES_HEADER = "Gateway-Credential-Expires"
_MAX_FORM_BYTES = 16 * 1024
_MAX_FORM_FIELDS = 16
_FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"

log = structlog.get_logger(__name__)
router = APIRouter(tags=["oauth"])


class OAuthErrorBody(BaseModel):
    error: str = Field(description="RFC 6749 error code, e.g. invalid_client, invalid_scope")
    error_description: str
    type: str
    title: str
    status: int
    detail: str
    code: str = Field(description="Stable code: oauth.<error>")


_OAUTH_ERROR_RESPONSE: dict[str, Any] = {
    "model": OAuthErrorBody,
    "description": "OAuth error (RFC 6749 fields and problem details in one object)",
}


class TokenResponse(BaseModel):
    access_token: str = Field(description="A JWT (RFC 9068, typ at+jwt) signed ES256")
    token_type: str = Field(examples=["Bearer"])
    expires_in: int = Field(description="Seconds until the token expires")
    scope: str = Field(description="The scopes granted, space-separated")


class IntrospectionResponse(BaseModel):
    active: bool
    token_type: str | None = None
    client_id: str | None = None
    sub: str | None = None
    scope: str | None = None
    iss: str | None = None
    aud: str | None = None
    exp: int | None = None
    iat: int | None = None
    jti: str | None = None


def _form_body(parameters: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {
                _FORM_MEDIA_TYPE: {
                    "schema": {"type": "object", "properties": parameters},
                }
            },
        }
    }


_CLIENT_AUTH_FIELDS: dict[str, dict[str, Any]] = {
    "client_assertion_type": {
        "type": "string",
        "description": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
    },
    "client_assertion": {"type": "string", "description": "private_key_jwt assertion"},
}


def server_of(app: FastAPI) -> GatewayAuthorizationServer:
    """The app's authorisation server, made on first use."""
    server = getattr(app.state, "oauth_server", None)
    if server is None:
        server = GatewayAuthorizationServer(app.state.settings, app.state.db)
        app.state.oauth_server = server
    return server


class _BusyError(Exception):
    """No turn came within ``oauth_queue_seconds``."""


@contextlib.asynccontextmanager
async def _turn(app: FastAPI) -> AsyncIterator[None]:
    """One of the ``oauth_max_concurrent_requests`` turns of the authorisation server's work.

    Authlib runs in worker threads, and a client secret's check is an Argon2id hash that
    releases the GIL: without a cap, a flood of token requests could keep every core busy and
    starve the data routes and the thread pool they share.
    """
    settings: Settings = app.state.settings
    turns: asyncio.Semaphore | None = getattr(app.state, "oauth_turns", None)
    if turns is None:
        turns = asyncio.Semaphore(settings.oauth_max_concurrent_requests)
        app.state.oauth_turns = turns
    try:
        async with asyncio.timeout(settings.oauth_queue_seconds):
            await turns.acquire()
    except TimeoutError as exc:
        raise _BusyError from exc
    try:
        yield
    finally:
        turns.release()


@router.post(
    "/oauth/token",
    summary="Get an access token (client credentials)",
    response_model=TokenResponse,
    responses={400: _OAUTH_ERROR_RESPONSE, 401: _OAUTH_ERROR_RESPONSE},
    openapi_extra=_form_body(
        {
            "grant_type": {"type": "string", "enum": [GRANT_TYPE]},
            "scope": {"type": "string", "description": "Space-separated scopes (required)"},
            **_CLIENT_AUTH_FIELDS,
        }
    ),
)
async def token(request: Request) -> JSONResponse:
    return await _answer(request, "token", "/oauth/token")


@router.post(
    "/oauth/revoke",
    summary="Revoke one of your access tokens (RFC 7009)",
    responses={400: _OAUTH_ERROR_RESPONSE, 401: _OAUTH_ERROR_RESPONSE},
    openapi_extra=_form_body(
        {
            "token": {"type": "string"},
            "token_type_hint": {"type": "string", "enum": ["access_token"]},
            **_CLIENT_AUTH_FIELDS,
        }
    ),
)
async def revoke(request: Request) -> JSONResponse:
    return await _answer(request, "revocation", "/oauth/revoke")


@router.post(
    "/oauth/introspect",
    summary="Introspect one of your access tokens (RFC 7662)",
    response_model=IntrospectionResponse,
    responses={400: _OAUTH_ERROR_RESPONSE, 401: _OAUTH_ERROR_RESPONSE},
    openapi_extra=_form_body(
        {
            "token": {"type": "string"},
            "token_type_hint": {"type": "string", "enum": ["access_token"]},
            **_CLIENT_AUTH_FIELDS,
        }
    ),
)
async def introspect(request: Request) -> JSONResponse:
    return await _answer(request, "introspection", "/oauth/introspect")


@router.get(
    "/.well-known/oauth-authorization-server",
    summary="Authorisation server metadata (RFC 8414)",
)
async def metadata(request: Request) -> dict[str, Any]:
    return authorization_server_metadata(request.app.state.settings)


@router.get(
    "/.well-known/jwks.json",
    summary="The gateway's public signing keys (JWK set)",
    responses={200: {"content": {"application/jwk-set+json": {}}}},
)
async def jwks(request: Request) -> JSONResponse:
    db: Database = request.app.state.db
    keys: KeyStore = server_of(request.app).keys
    async with db.session() as session:
        published = await keys.published_async(session)
    return JSONResponse(
        KeyStore.jwks(published),
        media_type="application/jwk-set+json",
        # Short: a verifier that meets an unknown kid should come back soon anyway.
        headers={"Cache-Control": "public, max-age=60"},
    )


def authorization_server_metadata(settings: Settings) -> dict[str, Any]:
    base = settings.issuer.rstrip("/")
    return {
        "issuer": settings.issuer,
        "token_endpoint": base + "/oauth/token",
        "jwks_uri": base + "/.well-known/jwks.json",
        "scopes_supported": [scope.value for scope in Scope],
        # No authorisation endpoint: machines only, so no response type at all.
        "response_types_supported": [],
        "grant_types_supported": [GRANT_TYPE],
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGORITHMS,
        "revocation_endpoint": base + "/oauth/revoke",
        "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
        "revocation_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGORITHMS,
        "introspection_endpoint": base + "/oauth/introspect",
        "introspection_endpoint_auth_methods_supported": AUTH_METHODS,
        "introspection_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGORITHMS,
    }


async def _answer(request: Request, endpoint: str, path: str) -> JSONResponse:
    server = server_of(request.app)
    oauth_request: FormRequest | None = None
    try:
        form = await _read_form(request)
        oauth_request = FormRequest(
            "POST", server.settings.issuer.rstrip("/") + path, request.headers, form
        )
        async with _turn(request.app):
            result = await run_in_threadpool(server.respond, endpoint, oauth_request)
    except OAuth2Error as error:
        result = oauth_error(error)
    except SQLAlchemyError as exc:
        log.warning("oauth_database_unavailable", error_type=type(exc).__name__)
        result = _unavailable("The authorisation server cannot reach its database.", 5)
    except _BusyError:
        log.warning("oauth_busy", endpoint=endpoint)
        result = _unavailable("The authorisation server is busy; try again shortly.", 1)
    response = _to_response(request, result)
    client = getattr(oauth_request, "client", None)
    if result.status == 200 and isinstance(client, RegisteredClient):
        expires_at = client.credential_expires_at
        if credential_expires_soon(expires_at, server.settings, utcnow()):
            # Warns before the credential stops working: time to register a new one.
            response.headers[CREDENTIAL_EXPIRES_HEADER] = expires_at.isoformat().replace(
                "+00:00", "Z"
            )
    return response


def _unavailable(description: str, retry_after_seconds: int) -> OAuthResult:
    return OAuthResult(
        status=503,
        body={"error": "temporarily_unavailable", "error_description": description},
        headers=[("Retry-After", str(retry_after_seconds))],
    )


async def _read_form(request: Request) -> dict[str, str]:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != _FORM_MEDIA_TYPE:
        raise InvalidRequestError(f"Send the parameters as {_FORM_MEDIA_TYPE}.")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > _MAX_FORM_BYTES:
            raise InvalidRequestError("The request body is too large.")
    try:
        pairs = parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=False,
            max_num_fields=_MAX_FORM_FIELDS,
        )
    except ValueError as exc:
        raise InvalidRequestError("The request body is not a valid form.") from exc
    form: dict[str, str] = {}
    for name, value in pairs:
        if "\x00" in name or "\x00" in value:
            raise InvalidRequestError("The request body holds a NUL character.")
        if name in form:
            raise InvalidRequestError("A parameter is repeated: send each one once.")
        form[name] = value
    return form


def _to_response(request: Request, result: OAuthResult) -> JSONResponse:
    status = result.status
    body = dict(result.body)
    headers = {name: value for name, value in result.headers if name.lower() != "content-type"}
    error = body.get("error")
    if status >= 400 and isinstance(error, str):
        if error == "invalid_client":
            status = 401
            headers.setdefault("WWW-Authenticate", 'Basic realm="dlnuf-gateway"')
        description = str(body.get("error_description") or _DEFAULT_DESCRIPTIONS.get(error, ""))
        description = description or "The request was refused."
        code = f"oauth.{error}"
        body.update(
            error_description=description,
            type=PROBLEM_TYPE_BASE + code,
            title=http.HTTPStatus(status).phrase,
            status=status,
            detail=description,
            code=code,
        )
        request_id = request_id_of(request)
        if request_id:
            body.update(instance=f"urn:request:{request_id}", request_id=request_id)
        log.info("oauth_request_refused", error=error, status=status, description=description)
    return JSONResponse(body, status_code=status, headers=headers, media_type="application/json")


_DEFAULT_DESCRIPTIONS = {
    "invalid_request": "The request is missing a parameter or is malformed.",
    "invalid_client": CLIENT_AUTHENTICATION_FAILED,
    "invalid_grant": "The token was not issued to this client.",
    "unauthorized_client": "This client may not use this grant type.",
    "unsupported_grant_type": "Only grant_type=client_credentials is supported.",
    "invalid_scope": "The requested scope is invalid or not covered by a habilitation.",
    "unsupported_token_type": "Only access tokens can be revoked or introspected.",
}
