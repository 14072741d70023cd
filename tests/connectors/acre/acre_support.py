"""Test support for the ACRE connector: Pôle emploi played by the mock app, chosen NIRs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import httpx

from connectors.kit import ConnectorContext
from gateway.identifiers import nir_with_key
from mocks.pole_emploi_api.app import job_seeker_answer

TODAY = dt.date(2026, 7, 15)
NOW = dt.datetime.combine(TODAY, dt.time(12), tzinfo=dt.UTC)
MOCK_ID = "gateway-tests"
MOCK_SECRET = "mock-secret-for-tests"

Connect = Callable[..., AbstractAsyncContextManager[ConnectorContext]]


class RecordingTransport(httpx.AsyncBaseTransport):
    """Passes requests to the mock app and keeps them, to count calls to Pôle emploi."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return await self.inner.handle_async_request(request)

    def paths(self) -> list[str]:
        return [request.url.path for request in self.requests]


def mock_case(nir: str) -> str:
    """Which documented case the mock answers for ``nir``."""
    answer = job_seeker_answer(nir, TODAY, NOW)
    if not answer:
        return "unknown"
    if answer["benefits"]:
        return str(answer["benefits"][0])
    if answer["under_review"]:
        return "under_review"
    return "registered" if answer["registration_months_last_18"] >= 6 else "nothing"


def nir_for(case: str, *, skip: int = 0) -> str:
    """A valid NIR the mock answers with ``case`` (ARE, ASS, registered, under_review, ...)."""
    for serial in range(20_000):
        nir = nir_with_key(f"2920344{serial:06d}")
        if mock_case(nir) == case:
            if skip == 0:
                return nir
            skip -= 1
    raise AssertionError(f"no NIR for {case}")
