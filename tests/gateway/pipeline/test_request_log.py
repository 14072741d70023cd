"""The request log: one line per request, carrying who asked, never another request's caller."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import structlog
from pipeline_support import Partner

from gateway import middleware
from gateway.logging import configure_logging
from gateway.reference.models import Account
from tests.conftest import SUITE_LOG


def _request_lines(path: Path) -> dict[str, dict[str, object]]:
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {str(line["request_id"]): line for line in lines if line["event"] == "request_finished"}


async def test_each_request_line_names_its_own_request_and_caller(
    http: httpx.AsyncClient,
    caf: Partner,
    person: Account,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log_file = tmp_path / "gateway.log"
    headers = await caf.headers(http, "turnover:read")
    configure_logging("json", "info", log_file)
    # The middleware's logger keeps the level configured when it first logged, which an
    # earlier test may have set above info: a fresh one takes this configuration.
    monkeypatch.setattr(middleware, "log", structlog.get_logger("gateway.request"))
    try:
        granted = await http.get(f"/api/v2/turnover/{person.siren}", headers=headers)
        # Then a request with no token, from the same task: it must not inherit the caller
        # of the request before it.
        anonymous = await http.get(f"/api/v2/turnover/{person.siren}")
    finally:
        configure_logging("json", "info", SUITE_LOG)
    assert (granted.status_code, anonymous.status_code) == (200, 401)
    lines = _request_lines(log_file)
    first = lines[granted.headers["x-request-id"]]
    second = lines[anonymous.headers["x-request-id"]]
    assert first["client_id"] == caf.client_id
    assert isinstance(first["partner_id"], int)
    assert (first["status"], second["status"]) == (200, 401)
    assert "client_id" not in second
    assert "partner_id" not in second
