"""Request bodies past ``max_request_body_bytes`` get 413 ``request.too_large``, on every route.

The cap is checked as the body is received, so an oversized body is never held in memory; a
connector route's refusal is audited like any other, and a request without a token is refused
before its body is read at all.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from pipeline_support import Partner, audit_rows, make_partner

from gateway.database import Database
from gateway.settings import Settings

BATCH = "/api/v1/cfp/attestations/batch"
LIMIT = 4096
PROBLEM = "application/problem+json"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"max_request_body_bytes": LIMIT})


@pytest.fixture
def fund(db: Database, settings: Settings) -> Partner:
    partner = make_partner(db, settings, "AGEFICE", "training-fund")
    partner.grant("cfp:read")
    return partner


def _batch_of(size: int) -> bytes:
    """A batch request body of exactly ``size`` bytes (padded with spaces, which JSON allows)."""
    body = b'{"items": [{"siren": "732829320", "year": 2025}]}'
    assert len(body) <= size
    return body + b" " * (size - len(body))


def _assert_too_large(response: httpx.Response) -> None:
    assert response.status_code == 413, response.text
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["code"] == "request.too_large"
    assert problem["max_bytes"] == LIMIT
    assert problem["request_id"] == response.headers["x-request-id"]


async def test_a_body_over_the_cap_is_refused_with_413_and_the_refusal_is_audited(
    http: httpx.AsyncClient, fund: Partner, db: Database
) -> None:
    headers = await fund.headers(http, "cfp:read")
    headers["Content-Type"] = "application/json"

    response = await http.post(BATCH, content=_batch_of(LIMIT + 1), headers=headers)

    _assert_too_large(response)
    [record] = await audit_rows(db)
    assert record.outcome == "refused"
    assert record.reason_code == "request.too_large"
    assert record.http_status == 413


async def test_a_body_without_a_declared_length_is_cut_off_at_the_cap(
    http: httpx.AsyncClient, fund: Partner
) -> None:
    """Chunked: no Content-Length to check up front, so the count of what arrives decides."""
    headers = await fund.headers(http, "cfp:read")
    headers["Content-Type"] = "application/json"
    sent: list[int] = []

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(64):
            sent.append(1024)
            yield b" " * 1024

    response = await http.post(BATCH, content=chunks(), headers=headers)

    _assert_too_large(response)
    assert "content-length" not in response.request.headers
    # The transport hands over what the generator makes; the gateway stopped reading at the
    # cap, well before the end.
    assert sum(sent) < 64 * 1024


async def test_a_body_at_the_cap_is_served(http: httpx.AsyncClient, fund: Partner) -> None:
    headers = await fund.headers(http, "cfp:read")
    headers["Content-Type"] = "application/json"

    response = await http.post(BATCH, content=_batch_of(LIMIT), headers=headers)

    assert response.status_code == 200, response.text


async def test_without_a_token_the_body_is_never_read(http: httpx.AsyncClient) -> None:
    response = await http.post(
        BATCH,
        content=_batch_of(LIMIT * 4),
        headers={"Content-Type": "application/json", "Purpose": "x", "Recipient": "y"},
    )

    assert response.status_code == 401
    assert response.json()["code"] == "token.missing"


async def test_a_framework_route_refuses_an_oversized_body_with_the_same_problem(
    http: httpx.AsyncClient,
) -> None:
    """The token endpoint is an ordinary FastAPI route, which would make any other error met
    while reading its form a 400."""
    response = await http.post(
        "/oauth/token",
        content=b"grant_type=client_credentials&scope=" + b"x" * LIMIT,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )

    _assert_too_large(response)
