"""The token check every data route depends on: ``Depends(require_scope("turnover:read"))``.

For each request, in order (each failure is problem+json with a stable ``code``; 401 and 403
carry ``WWW-Authenticate: Bearer ...`` per RFC 6750):

1. a ``Bearer`` token in the ``Authorization`` header (never the query string: RFC 9700);
2. the token verifies (:class:`~gateway.oauth.tokens.AccessTokenVerifier`): 401
   ``invalid_token``; a verified token's claims are kept in a bounded LRU until its ``exp``,
   so the signature of a token is checked once per process, not once per request;
3. it is not revoked and its client is not disabled (:mod:`gateway.oauth.status`): 401;
4. it holds the route's scope: 403 ``insufficient_scope``;
5. a habilitation of the partner for that scope is in force today: 403;
6. the client is within the rate limit of that habilitation (:mod:`gateway.oauth.ratelimit`):
   429 with ``Retry-After``.

It returns :class:`TokenClaims`. No database session is opened on the way unless a cache is
stale; the rate-limit write is shared with concurrent requests.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import fastapi.routing
import structlog
from fastapi import FastAPI, Request, Security
from fastapi.dependencies.models import Dependant
from fastapi.openapi.models import OAuthFlowClientCredentials, OAuthFlows
from fastapi.routing import APIRoute
from fastapi.security import OAuth2
from joserfc.jwk import ECKey
from sqlalchemy.exc import SQLAlchemyError

from gateway.database import Database
from gateway.errors import (
    ForbiddenError,
    ServiceUnavailableError,
    TooManyRequestsError,
    UnauthorizedError,
)
from gateway.keys.models import KeyUse
from gateway.keys.store import KeyStore
from gateway.logging import bind_request_fields
from gateway.middleware import add_response_headers
from gateway.oauth.ratelimit import RateLimiter
from gateway.oauth.status import HabilitationGrant, StatusSnapshot, TokenStatus
from gateway.oauth.tokens import (
    AccessTokenVerifier,
    TokenClaims,
    TokenRejectedError,
    token_audience,
)
from gateway.partners.models import Scope
from gateway.settings import Settings

__all__ = [
    "HabilitationGrant",
    "TokenClaims",
    "TokenGuard",
    "check_token",
    "checks_token_for",
    "guard_of",
    "habilitations_for",
    "require_scope",
    "route_requires_token",
    "route_scopes",
    "served_routes",
    "unprotected_data_routes",
]

REALM = "dlnuf-gateway"
REQUIREMENT_ATTRIBUTE = "__gateway_token_scope__"
TOKEN_ENDPOINT_PATH = "/oauth/token"  # noqa: S105  (a path)
# How often an unknown kid or a missing habilitation may send a process back to the database.
_KEYS_RELOAD_MIN_SECONDS = 1.0
_KEYS_MAX_AGE_SECONDS = 300.0
_HABILITATIONS_RECHECK_SECONDS = 0.1

SCOPE_DESCRIPTIONS: dict[str, str] = {
    Scope.TURNOVER_READ: "Read micro-entrepreneurs' declared turnover",
    Scope.STATUS_READ: "Read a self-employed person's affiliation status",
    Scope.STATUS_FEED: "Follow the feed of affiliations and radiations",
    Scope.CFP_READ: "Read training contribution (CFP) attestations",
    Scope.ACRE_READ: "Read ACRE exemption proofs",
    Scope.CONSENT_WRITE: "Record and revoke people's consents",
}

oauth2_scheme = OAuth2(
    flows=OAuthFlows(
        clientCredentials=OAuthFlowClientCredentials(
            tokenUrl=TOKEN_ENDPOINT_PATH, scopes=SCOPE_DESCRIPTIONS
        )
    ),
    scheme_name="oauth2",
    description="Client credentials with private_key_jwt (preferred) or client_secret_basic.",
    auto_error=False,
)

log = structlog.get_logger(__name__)


def require_scope(scope: str) -> Callable[..., Awaitable[TokenClaims]]:
    """The dependency of a route that needs an access token holding ``scope``."""
    checked = Scope(scope).value  # an unknown scope is a programming error: fail at import

    async def token_claims(
        request: Request,
        authorization: str | None = Security(oauth2_scheme, scopes=[checked]),
    ) -> TokenClaims:
        return await check_token(request, authorization, checked)

    token_claims.__name__ = "require_" + checked.replace(":", "_")
    return checks_token_for(checked, token_claims)


async def check_token(request: Request, authorization: str | None, scope: str) -> TokenClaims:
    """The whole token check of a request for ``scope`` (what :func:`require_scope` runs)."""
    return await guard_of(request.app).check(request, authorization, scope)


Dependency = TypeVar("Dependency", bound=Callable[..., Any])


def checks_token_for(scope: str, dependency: Dependency) -> Dependency:
    """Mark ``dependency`` as running :func:`check_token` for ``scope`` itself.

    :func:`route_scopes` finds the mark at any depth of a route's dependencies, which is how
    a walk over every route proves that none under ``/api`` is served without the check.
    """
    setattr(dependency, REQUIREMENT_ATTRIBUTE, Scope(scope).value)
    return dependency


def route_scopes(route: object) -> set[str]:
    """The scopes a route's dependencies (at any depth) require through :func:`require_scope`.

    ``route`` is an :class:`~fastapi.routing.APIRoute` or a served route context.
    """
    dependant = getattr(route, "dependant", None)
    if not isinstance(dependant, Dependant):
        return set()
    return {
        getattr(child.call, REQUIREMENT_ATTRIBUTE)
        for child in _walk(dependant)
        if hasattr(child.call, REQUIREMENT_ATTRIBUTE)
    }


def route_requires_token(route: object) -> bool:
    return bool(route_scopes(route))


def served_routes(app: FastAPI) -> Iterator[tuple[str, object, object]]:
    """Every route as the app serves it: (path with prefixes, original route, served route).

    Recent FastAPI keeps included routers as nodes (their prefixes and dependencies apply
    when served), so ``app.routes`` alone would miss what they hold.
    """
    iter_contexts = getattr(fastapi.routing, "iter_route_contexts", None)
    if iter_contexts is None:
        for route in app.routes:
            yield str(getattr(route, "path", "")), route, route
        return
    for context in iter_contexts(app.routes):
        yield str(context.path or ""), context.original_route, context


def unprotected_data_routes(app: FastAPI, prefix: str = "/api") -> list[str]:
    """Paths under ``prefix`` served without :func:`require_scope` (empty when all is well).

    A route that is not a FastAPI route (a mount, a bare Starlette route) counts as
    unprotected: FastAPI dependencies never run for it.
    """
    found = []
    for path, original, served in served_routes(app):
        if path != prefix and not path.startswith(prefix + "/"):
            continue
        if not isinstance(original, APIRoute) or not route_requires_token(served):
            found.append(path)
    return found


def _walk(dependant: Dependant) -> Iterator[Dependant]:
    for child in dependant.dependencies:
        yield child
        yield from _walk(child)


def guard_of(app: FastAPI) -> TokenGuard:
    """The app's guard, made on first use from the app's settings and database."""
    guard = getattr(app.state, "token_guard", None)
    if guard is None:
        guard = TokenGuard(app.state.settings, app.state.db)
        app.state.token_guard = guard
    return guard


async def habilitations_for(
    request: Request, claims: TokenClaims, scope: str
) -> tuple[HabilitationGrant, ...]:
    """The partner's habilitations in force for ``scope``, from the snapshot the guard used."""
    snapshot = await guard_of(request.app).status.current()
    return snapshot.habilitations_for(claims.partner_id, scope)


class TokenGuard:
    """Per-application state of the token check: caches, snapshot, rate limiter."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self._monotonic = monotonic
        self._db = db
        self._key_store = KeyStore(settings)
        self.verifier = AccessTokenVerifier(
            issuer=settings.issuer,
            audience=token_audience(settings),
            leeway_seconds=settings.token_leeway_seconds,
        )
        self.status = TokenStatus(settings, db, clock=monotonic)
        self.limiter = RateLimiter(db.async_engine, clock=clock)
        self._claims: OrderedDict[str, TokenClaims] = OrderedDict()
        self._claims_capacity = settings.token_claims_cache_size
        self._keys: dict[str, ECKey] = {}
        self._keys_loaded_at = float("-inf")

    async def close(self) -> None:
        await self.limiter.close()

    async def check(self, request: Request, authorization: str | None, scope: str) -> TokenClaims:
        token = _bearer_token(authorization)
        try:
            claims = await self._verified(token)
            snapshot = await self.status.current()
            _check_status(claims, snapshot)
            if not claims.has_scope(scope):
                raise _insufficient_scope(scope)
            grants = snapshot.habilitations_for(claims.partner_id, scope)
            if not grants:
                snapshot = await self.status.reload_if_older_than(_HABILITATIONS_RECHECK_SECONDS)
                _check_status(claims, snapshot)
                grants = snapshot.habilitations_for(claims.partner_id, scope)
            if not grants:
                raise _forbidden(
                    "habilitation.not_in_force",
                    "No habilitation of this partner for this scope is in force today.",
                    scope,
                )
            limit = max(
                grant.rate_limit_per_minute or self.settings.rate_limit_per_minute
                for grant in grants
            )
            decision = await self.limiter.hit(f"{claims.client_id} {scope}", limit)
        except SQLAlchemyError as exc:
            log.warning("token_state_unavailable", error_type=type(exc).__name__)
            raise ServiceUnavailableError(
                "token.state_unavailable", "The token state cannot be read; try again shortly."
            ) from exc
        add_response_headers(request.scope, decision.headers())
        bind_request_fields(client_id=claims.client_id, partner_id=claims.partner_id)
        if not decision.allowed:
            raise TooManyRequestsError(
                "rate_limit.exceeded",
                f"More than {decision.limit} requests this minute for this scope.",
                headers={"Retry-After": str(decision.reset_seconds), **decision.headers()},
            )
        return claims

    async def _verified(self, token: str) -> TokenClaims:
        now = self.clock()
        cached = self._claims.get(token)
        if cached is not None:
            if now < cached.expires_at + self.verifier.leeway:
                self._claims.move_to_end(token)
                return cached
            del self._claims[token]
        try:
            claims = await self._verify(token, now)
        except TokenRejectedError as exc:
            raise _invalid_token(exc.code, exc.detail) from exc
        if self._claims_capacity:
            self._claims[token] = claims
            if len(self._claims) > self._claims_capacity:
                self._claims.popitem(last=False)
        return claims

    async def _verify(self, token: str, now: float) -> TokenClaims:
        if self._monotonic() - self._keys_loaded_at >= _KEYS_MAX_AGE_SECONDS:
            await self._load_keys()
        try:
            return self.verifier.verify(token, self._keys.get, now)
        except TokenRejectedError as exc:
            # A key made by a rotation in another process: look once more, at a bounded rate.
            recent = self._monotonic() - self._keys_loaded_at < _KEYS_RELOAD_MIN_SECONDS
            if exc.code != "token.unknown_key" or recent:
                raise
        await self._load_keys()
        return self.verifier.verify(token, self._keys.get, now)

    async def _load_keys(self) -> None:
        async with self._db.session() as session:
            published = await self._key_store.published_async(session, KeyUse.TOKEN)
        self._keys = {key.kid: key.import_key() for key in published}
        self._keys_loaded_at = self._monotonic()


def _bearer_token(authorization: str | None) -> str:
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        # RFC 6750 section 3.1: no error code when the request carried no token at all.
        raise UnauthorizedError(
            "token.missing",
            "This route needs an access token: Authorization: Bearer <token>.",
            headers={"WWW-Authenticate": f'Bearer realm="{REALM}"'},
        )
    return token


def _check_status(claims: TokenClaims, snapshot: StatusSnapshot) -> None:
    if claims.jti in snapshot.revoked_jtis:
        raise _invalid_token("token.revoked", "The access token was revoked.")
    if claims.client_id in snapshot.disabled_clients:
        raise _invalid_token("client.disabled", "The client of this access token is disabled.")


def _invalid_token(code: str, detail: str) -> UnauthorizedError:
    return UnauthorizedError(
        code,
        detail,
        headers={"WWW-Authenticate": _challenge("invalid_token", detail)},
        extra={"error": "invalid_token", "error_description": detail},
    )


def _insufficient_scope(scope: str) -> ForbiddenError:
    return _forbidden("token.insufficient_scope", f"This route needs the scope {scope}.", scope)


def _forbidden(code: str, detail: str, scope: str) -> ForbiddenError:
    return ForbiddenError(
        code,
        detail,
        headers={"WWW-Authenticate": _challenge("insufficient_scope", detail, scope)},
        extra={"error": "insufficient_scope", "error_description": detail, "scope": scope},
    )


def _challenge(error: str, description: str, scope: str | None = None) -> str:
    parts = [f'realm="{REALM}"', f'error="{error}"', f'error_description="{description}"']
    if scope is not None:
        parts.append(f'scope="{scope}"')
    return "Bearer " + ", ".join(parts)
