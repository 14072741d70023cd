"""Every connector version, through the pipeline: bad identifier, unknown subject, wrong scope."""

from __future__ import annotations

import httpx
import pytest
from pipeline_support import audit_rows, audit_subjects, make_partner

from connectors.kit import ConnectorVersion, Operation
from connectors.registry import VERSIONS
from gateway.database import Database
from gateway.settings import Settings

UNKNOWN_SIREN = "732829320"
BAD_SIREN = "732829321"


def _lookups() -> list[tuple[ConnectorVersion, Operation]]:
    return [
        (version, operation)
        for version in VERSIONS
        for operation in version.operations
        if operation.method == "GET" and "{siren}" in operation.path
    ]


def _url(version: ConnectorVersion, operation: Operation, siren: str) -> str:
    path = operation.path.replace("{siren}", siren).replace("{year}", "2025")
    return version.prefix + path


LOOKUPS = _lookups()
IDS = [f"{version.key}{operation.path}" for version, operation in LOOKUPS]


def test_every_dataset_has_a_lookup_by_siren() -> None:
    assert {version.dataset for version, _ in LOOKUPS} == {"turnover", "status", "cfp", "acre"}


@pytest.mark.parametrize(("version", "operation"), LOOKUPS, ids=IDS)
async def test_unknown_subject_is_a_404_problem_and_audited(
    http: httpx.AsyncClient,
    db: Database,
    settings: Settings,
    version: ConnectorVersion,
    operation: Operation,
) -> None:
    partner = make_partner(db, settings, "Partner", "cnam")
    partner.grant(version.scope)
    response = await http.get(
        _url(version, operation, UNKNOWN_SIREN), headers=await partner.headers(http, version.scope)
    )
    assert response.status_code == 404, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "subject.unknown"
    [record] = await audit_rows(db)
    assert (record.outcome, record.reason_code) == ("not_found", "subject.unknown")
    assert (record.connector, record.connector_version) == (version.dataset, version.version)
    assert len(await audit_subjects(db, record.id)) == 1


@pytest.mark.parametrize(("version", "operation"), LOOKUPS, ids=IDS)
async def test_bad_identifier_is_a_422_problem(
    http: httpx.AsyncClient,
    db: Database,
    settings: Settings,
    version: ConnectorVersion,
    operation: Operation,
) -> None:
    partner = make_partner(db, settings, "Partner", "cnam")
    partner.grant(version.scope)
    response = await http.get(
        _url(version, operation, BAD_SIREN), headers=await partner.headers(http, version.scope)
    )
    assert response.status_code == 422
    assert response.json()["code"] == "siren.bad_checksum"
    assert BAD_SIREN not in response.text


@pytest.mark.parametrize(("version", "operation"), LOOKUPS, ids=IDS)
async def test_a_token_for_another_scope_is_403(
    http: httpx.AsyncClient,
    db: Database,
    settings: Settings,
    version: ConnectorVersion,
    operation: Operation,
) -> None:
    other = "consent:write"
    partner = make_partner(db, settings, "Partner", "cnam")
    partner.grant(version.scope)
    partner.grant(other)
    response = await http.get(
        _url(version, operation, UNKNOWN_SIREN), headers=await partner.headers(http, other)
    )
    assert response.status_code == 403
    assert response.json()["code"] == "token.insufficient_scope"
    [record] = await audit_rows(db)
    assert record.outcome == "refused"
