"""No route that serves data is reachable without the token check.

Every route under /api/ that ``app.routes`` serves (included routers flattened, prefixes and
router-level dependencies applied) must depend, at any depth, on ``require_scope``. The app
under test is the real one (``create_app``) with the test-only protected router mounted; the
connectors' routes, when they come, fall under the same walk.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, FastAPI

from gateway.oauth.resource import (
    require_scope,
    route_scopes,
    served_routes,
    unprotected_data_routes,
)
from gateway.oauth.tokens import TokenClaims


def test_every_api_route_depends_on_the_token_check(app: FastAPI) -> None:
    api_paths = [path for path, _, _ in served_routes(app) if path.startswith("/api/")]
    assert "/api/test/turnover" in api_paths, "the test-only protected router is mounted"
    assert unprotected_data_routes(app) == []


def test_the_walk_finds_a_route_that_forgot_the_check(app: FastAPI) -> None:
    @app.get("/api/test/leak")
    async def leak() -> dict[str, str]:
        return {"data": "personal"}

    assert unprotected_data_routes(app) == ["/api/test/leak"]


def test_the_walk_looks_inside_included_routers(app: FastAPI) -> None:
    inner = APIRouter()

    @inner.get("/cfp")
    async def cfp() -> dict[str, str]:
        return {"data": "personal"}

    app.include_router(inner, prefix="/api/v1")
    assert unprotected_data_routes(app) == ["/api/v1/cfp"]


def test_a_check_set_on_the_included_router_counts(app: FastAPI) -> None:
    inner = APIRouter()

    @inner.get("/acre")
    async def acre() -> dict[str, str]:
        return {"data": "ok"}

    app.include_router(inner, prefix="/api/v9", dependencies=[Depends(require_scope("acre:read"))])
    assert unprotected_data_routes(app) == []


def test_the_walk_finds_a_plain_starlette_route_under_api(app: FastAPI) -> None:
    async def raw(scope: object, receive: object, send: object) -> None:
        return None

    app.router.add_route("/api/raw", raw)  # type: ignore[arg-type]
    assert "/api/raw" in unprotected_data_routes(app)


def test_a_check_nested_in_another_dependency_counts(app: FastAPI) -> None:
    async def access_context(
        claims: TokenClaims = Depends(require_scope("cfp:read")),
    ) -> TokenClaims:
        return claims

    @app.get("/api/test/nested")
    async def nested(claims: TokenClaims = Depends(access_context)) -> dict[str, str]:
        return {"client_id": claims.client_id}

    served = next(route for path, _, route in served_routes(app) if path == "/api/test/nested")
    assert route_scopes(served) == {"cfp:read"}
    assert unprotected_data_routes(app) == []
