"""The request log: one line per request, carrying who asked, never another request's caller."""

from __future__ import annotations

import json
import re
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


@pytest.mark.parametrize("separator", ["%C2%A0", "%E2%80%AF", "%09", "%20%20"])
async def test_a_nir_in_a_path_is_masked_in_the_request_line_however_its_groups_are_spaced(
    http: httpx.AsyncClient,
    caf: Partner,
    person: Account,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    separator: str,
) -> None:
    nir = person.nir
    groups = (nir[0], nir[1:3], nir[3:5], nir[5:7], nir[7:10], nir[10:13], nir[13:])
    log_file = tmp_path / "gateway.log"
    headers = await caf.headers(http, "turnover:read")
    configure_logging("json", "info", log_file)
    monkeypatch.setattr(middleware, "log", structlog.get_logger("gateway.request"))
    try:
        # A NIR pasted where a SIREN goes, its groups spaced as the sender's software does.
        response = await http.get("/api/v2/turnover/" + separator.join(groups), headers=headers)
    finally:
        configure_logging("json", "info", SUITE_LOG)
    assert response.status_code == 422
    line = _request_lines(log_file)[response.headers["x-request-id"]]
    assert line["path"] == "/api/v2/turnover/[NIR]"
    assert nir not in re.sub(r"\s|\\[a-z]", "", log_file.read_text())
