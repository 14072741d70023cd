"""Probes: /healthz says the process lives, /readyz that the database is reachable and current."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from gateway.app import SchemaBehindError, create_app
from gateway.database import Database
from gateway.migrate import schema_state, upgrade
from gateway.settings import Settings


async def test_healthz_answers_ok(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_is_200_on_a_migrated_database(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.headers["x-request-id"]


async def test_readyz_is_503_problem_when_schema_is_behind(
    client: httpx.AsyncClient, db: Database
) -> None:
    with db.sync_engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'behind'"))
    response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "readiness.schema_behind"
    assert "gateway db upgrade" in body["detail"]


async def test_server_refuses_to_start_on_a_database_that_is_behind(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/empty.db"
    app = create_app(Settings(database_url=url, var_dir=tmp_path))
    with pytest.raises(SchemaBehindError, match="gateway db upgrade"):
        async with app.router.lifespan_context(app):
            pass
    upgrade(url)
    database = Database(url)
    assert schema_state(database.sync_engine, url).is_current
    database.sync_engine.dispose()


async def test_request_id_is_taken_from_the_caller(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": "partner-abc.123"})
    assert response.headers["x-request-id"] == "partner-abc.123"


async def test_unacceptable_request_id_is_replaced(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": "<script>"})
    assert response.headers["x-request-id"] != "<script>"
    assert len(response.headers["x-request-id"]) == 32


async def test_unknown_route_is_a_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/nowhere")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "route.not_found"
