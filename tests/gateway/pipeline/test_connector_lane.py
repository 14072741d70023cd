"""Connector requests take the lane straight to their route, with every guarantee kept."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pipeline_support import audit_rows, make_partner
from starlette.routing import Match

from gateway.database import Database
from gateway.oauth.resource import served_routes
from gateway.pipeline.lane import ConnectorLane
from gateway.pipeline.route import ConnectorRoute
from gateway.settings import Settings

SAMPLES = {"siren": "732829320", "year": "2025"}


def _connector_routes(app: FastAPI) -> list[ConnectorRoute]:
    return [
        original for _, original, _ in served_routes(app) if isinstance(original, ConnectorRoute)
    ]


def _sample_path(route: ConnectorRoute) -> str:
    return re.sub(r"{([^}]+)}", lambda found: SAMPLES[found.group(1)], route.path)


def _first_match(app: FastAPI, scope: dict[str, Any]) -> object:
    """The route the application's router would serve ``scope`` with: the first full match."""
    for _, original, served in served_routes(app):
        matches = getattr(served, "matches", None)
        if matches is not None and matches(scope)[0] is Match.FULL:
            return original
    return None


async def test_every_connector_route_is_in_the_lane_and_refuses_a_request_without_token(
    app: FastAPI, client: httpx.AsyncClient, db: Database
) -> None:
    routes = _connector_routes(app)
    assert len(routes) >= 10
    for route in routes:
        [method] = route.methods or set()
        response = await client.request(method, _sample_path(route), json={})
        assert response.status_code == 401, (route.path, response.text)
        assert response.json()["code"] == "token.missing"
        assert response.headers["x-request-id"]
    refused = await audit_rows(db)
    assert [record.reason_code for record in refused] == ["token.missing"] * len(routes)


def _lane(app: FastAPI) -> ConnectorLane:
    layer: Any = app.build_middleware_stack()
    while not isinstance(layer, ConnectorLane):
        layer = layer.app
    return layer


def test_the_lane_picks_the_route_the_application_would(app: FastAPI) -> None:
    """For every connector path, the lane serves the route the application's router would."""
    lane = _lane(app)
    for route in _connector_routes(app):
        [method] = route.methods or set()
        scope: dict[str, Any] = {
            "type": "http",
            "method": method,
            "path": _sample_path(route),
            "root_path": "",
        }
        chosen = lane.route_for(scope)
        assert chosen is not None, route.path
        assert chosen[0] is route is _first_match(app, scope), route.path


async def test_another_method_on_a_connector_path_is_a_405_problem(
    client: httpx.AsyncClient,
) -> None:
    response = await client.delete("/api/v1/status/732829320")
    assert response.status_code == 405
    assert response.json()["code"] == "route.method_not_allowed"
    assert response.headers["x-request-id"]


async def test_an_unknown_api_path_is_a_404_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v9/nothing/732829320")
    assert response.status_code == 404
    assert response.json()["code"] == "route.not_found"


class _BrokenReader:
    def __getattr__(self, _name: str) -> Any:
        async def fail(*_args: object, **_kwargs: object) -> None:
            raise RuntimeError("the reference store broke")

        return fail


async def test_an_unexpected_failure_in_a_connector_is_a_500_problem_with_no_data_audited(
    app: FastAPI, db: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    partner = make_partner(db, settings, "CNAM", "cnam")
    partner.grant("status:read")
    monkeypatch.setattr(app.state.db, "reader", _BrokenReader())
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=settings.issuer) as http:
        response = await http.get(
            "/api/v1/status/732829320", headers=await partner.headers(http, "status:read")
        )
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "internal_error"
    assert response.headers["x-request-id"] == response.json()["request_id"]
    assert "732829320" not in response.text
    # Recorded like any refusal: an unaudited 500 would let a caller probe without a trace.
    [record] = await audit_rows(db)
    assert (record.outcome, record.reason_code, record.http_status) == (
        "error",
        "internal_error",
        500,
    )
    assert record.request_id == response.json()["request_id"]
