"""The one pipeline: each step refuses what it must, and nothing leaves unaudited."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re

import httpx
import pytest
from fastapi import FastAPI
from pipeline_support import (
    PURPOSE,
    Partner,
    audit_rows,
    audit_subjects,
    dump_audit_tables,
    make_partner,
)
from sqlalchemy import text

from gateway.database import Database
from gateway.errors import UnprocessableError
from gateway.identifiers import NIR_SHAPE
from gateway.oauth.resource import unprotected_data_routes
from gateway.partners import service
from gateway.reference.models import Account
from gateway.settings import Settings

TURNOVER_V2 = "/api/v2/turnover/{siren}?from=2026-01&to=2026-03"


async def test_every_data_route_goes_through_the_token_check(app: FastAPI) -> None:
    """Invariant 1: no route under /api is served without the pipeline's token dependency."""
    assert unprotected_data_routes(app) == []


async def test_invariant_1_a_disclosure_leaves_with_its_committed_audit_record(
    http: httpx.AsyncClient, caf: Partner, person: Account, db: Database
) -> None:
    response = await http.get(
        TURNOVER_V2.format(siren=person.siren),
        headers=await caf.headers(http, "turnover:read", **{"Case-Reference": "DOSSIER-42"}),
    )
    assert response.status_code == 200, response.text
    assert [p["total"] for p in response.json()["periods"]] == ["1234.50"] * 3

    [record] = await audit_rows(db)
    assert record.outcome == "granted"
    assert record.http_status == 200
    assert record.client_id == caf.client_id
    assert record.partner_id is not None
    assert (record.connector, record.connector_version) == ("turnover", 2)
    assert record.purpose == PURPOSE
    assert record.recipient
    assert record.legal_basis
    assert record.case_reference == "DOSSIER-42"
    assert record.response_sha256 == hashlib.sha256(response.content).hexdigest()
    [subject] = await audit_subjects(db, record.id)
    assert subject.subject_kind == "siren"
    assert subject.pseudonym != person.siren
    assert len(subject.pseudonym) == 64


async def test_invariant_1_fail_closed_when_the_audit_write_fails(
    http: httpx.AsyncClient, caf: Partner, person: Account, db: Database
) -> None:
    headers = await caf.headers(http, "turnover:read")
    with db.sync_engine.begin() as conn:
        conn.execute(text("ALTER TABLE audit_record RENAME TO audit_record_gone"))
    response = await http.get(TURNOVER_V2.format(siren=person.siren), headers=headers)
    assert response.status_code == 503
    assert response.json()["code"] == "audit.unavailable"
    assert "periods" not in response.text
    assert "1234.50" not in response.text


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({"Purpose": ""}, 400, "purpose.missing"),
        ({"Purpose": "not allowed!"}, 400, "purpose.malformed"),
        ({"Purpose": "JOB_SEEKING"}, 403, "purpose.not_allowed"),
        ({"Recipient": ""}, 400, "recipient.missing"),
        ({"Recipient": "12345678901234"}, 400, "recipient.invalid"),
        ({"Case-Reference": "x" * 101}, 400, "case_reference.invalid"),
    ],
)
async def test_purpose_and_recipient_are_checked_and_refusals_audited(
    http: httpx.AsyncClient,
    caf: Partner,
    person: Account,
    db: Database,
    headers: dict[str, str],
    status: int,
    code: str,
) -> None:
    request_headers = {**await caf.headers(http, "turnover:read"), **headers}
    response = await http.get(TURNOVER_V2.format(siren=person.siren), headers=request_headers)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code
    [record] = await audit_rows(db)
    assert (record.outcome, record.reason_code, record.http_status) == ("refused", code, status)
    assert record.client_id == caf.client_id


async def test_a_missing_token_is_refused_and_audited(
    http: httpx.AsyncClient, person: Account, db: Database
) -> None:
    response = await http.get(TURNOVER_V2.format(siren=person.siren))
    assert response.status_code == 401
    assert "Bearer" in response.headers["www-authenticate"]
    [record] = await audit_rows(db)
    assert record.outcome == "refused"
    assert record.client_id is None


async def test_a_token_without_the_scope_is_403(
    http: httpx.AsyncClient, caf: Partner, person: Account
) -> None:
    caf.grant("status:read")
    response = await http.get(
        f"/api/v1/status/{person.siren}", headers=await caf.headers(http, "status:read")
    )
    assert response.status_code == 200
    wrong = await http.get(
        TURNOVER_V2.format(siren=person.siren), headers=await caf.headers(http, "status:read")
    )
    assert wrong.status_code == 403
    assert wrong.json()["code"] == "token.insufficient_scope"
    assert "insufficient_scope" in wrong.headers["www-authenticate"]


async def test_bad_identifier_is_422_with_its_own_code_and_audited(
    http: httpx.AsyncClient, caf: Partner, db: Database
) -> None:
    response = await http.get(
        "/api/v2/turnover/732829321", headers=await caf.headers(http, "turnover:read")
    )
    assert response.status_code == 422
    assert response.json()["code"] == "siren.bad_checksum"
    [record] = await audit_rows(db)
    assert record.reason_code == "siren.bad_checksum"


async def test_unknown_subject_is_404_and_audited_with_its_pseudonym(
    http: httpx.AsyncClient, caf: Partner, db: Database
) -> None:
    response = await http.get(
        "/api/v2/turnover/732829320", headers=await caf.headers(http, "turnover:read")
    )
    assert response.status_code == 404
    assert response.json()["code"] == "subject.unknown"
    [record] = await audit_rows(db)
    assert record.outcome == "not_found"
    assert len(await audit_subjects(db, record.id)) == 1


async def test_invariant_4_deprecated_version_carries_deprecation_headers(
    http: httpx.AsyncClient, caf: Partner, person: Account
) -> None:
    response = await http.get(
        f"/api/v1/turnover/{person.siren}?from=2026-01&to=2026-03",
        headers=await caf.headers(http, "turnover:read"),
    )
    assert response.status_code == 200
    assert response.headers["deprecation"].startswith("@")
    assert response.headers["sunset"].endswith("GMT")
    assert "/api/v2/turnover" in response.headers["link"]
    assert 'rel="successor-version"' in response.headers["link"]


async def test_invariant_4_a_version_past_its_sunset_answers_410(
    http: httpx.AsyncClient, caf: Partner, person: Account, app: FastAPI
) -> None:
    app.state.sunsets["turnover.v1"] = dt.date(2020, 1, 1)
    response = await http.get(
        f"/api/v1/turnover/{person.siren}", headers=await caf.headers(http, "turnover:read")
    )
    assert response.status_code == 410
    assert response.json()["code"] == "version.sunset"
    assert "periods" not in response.text


async def test_minimisation_withholds_fields_the_habilitation_does_not_cover(
    http: httpx.AsyncClient, db: Database, settings: Settings, person: Account
) -> None:
    pole = make_partner(db, settings, "Pole emploi", "pole-emploi")
    with db.sync_session.begin() as session:
        service.grant_habilitation(
            session,
            partner_name=pole.name,
            scope="turnover:read",
            purposes=[PURPOSE],
            legal_basis="Code du travail, art. L. 5312-1",
            released_fields=["periods.rectifications"],
            today=service.legal_today(settings),
        )
    response = await http.get(
        TURNOVER_V2.format(siren=person.siren), headers=await pole.headers(http, "turnover:read")
    )
    assert response.status_code == 200
    periods = response.json()["periods"]
    assert all("amounts" not in period for period in periods)
    assert all("total" in period for period in periods)


def _without_whitespace(text: str) -> str:
    return re.sub(r"\s", "", text)


async def test_invariant_3_a_nir_grouped_with_non_breaking_spaces_is_masked_in_the_audit_trail(
    http: httpx.AsyncClient, caf: Partner, person: Account, db: Database
) -> None:
    nir = person.nir
    # As French software writes grouped digits: non-breaking spaces between the groups.
    grouped = "\u00a0".join((nir[0], nir[1:3], nir[3:5], nir[5:7], nir[7:10], nir[10:13], nir[13:]))
    headers = await caf.headers(http, "turnover:read")
    response = await http.get(
        TURNOVER_V2.format(siren=person.siren),
        headers={**headers, "Case-Reference": f"dossier {grouped}".encode("latin-1")},  # type: ignore[dict-item]
    )
    assert response.status_code == 200, response.text
    [record] = await audit_rows(db)
    assert record.case_reference == "dossier [NIR]"
    assert nir not in _without_whitespace(dump_audit_tables(db))


async def test_invariant_3_a_nir_search_leaves_no_nir_in_the_audit_trail_or_answer(
    http: httpx.AsyncClient, caf: Partner, person: Account, db: Database
) -> None:
    response = await http.post(
        "/api/v2/turnover/search",
        json={"nir": "2 69 05 49 588 157 80", "from": "2026-01", "to": "2026-03"},
        headers=await caf.headers(http, "turnover:read"),
    )
    assert response.status_code == 200, response.text
    assert person.nir not in response.text
    dumped = dump_audit_tables(db)
    assert person.nir not in dumped
    assert not NIR_SHAPE.search(dumped)
    [record] = await audit_rows(db)
    kinds = sorted(s.subject_kind for s in await audit_subjects(db, record.id))
    assert kinds == ["nir", "siren"]


async def test_invariant_3_an_invalid_nir_is_not_echoed(
    http: httpx.AsyncClient, caf: Partner, db: Database
) -> None:
    response = await http.post(
        "/api/v2/turnover/search",
        json={"nir": "269054958815781", "from": "2026-01", "to": "2026-03"},
        headers=await caf.headers(http, "turnover:read"),
    )
    assert response.status_code == 422
    assert response.json()["code"] == "nir.bad_key"
    assert "269054958815781" not in response.text
    assert "269054958815781" not in dump_audit_tables(db)


async def test_rate_limit_headers_are_on_data_answers(
    http: httpx.AsyncClient, caf: Partner, person: Account
) -> None:
    response = await http.get(
        TURNOVER_V2.format(siren=person.siren), headers=await caf.headers(http, "turnover:read")
    )
    assert any(name.lower().startswith("ratelimit") for name in response.headers)


async def test_problem_bodies_are_json_with_a_stable_code(
    http: httpx.AsyncClient, caf: Partner
) -> None:
    response = await http.get(
        "/api/v2/turnover/732829320?from=2026-13",
        headers=await caf.headers(http, "turnover:read"),
    )
    assert response.status_code == 422
    body = json.loads(response.text)
    assert body["code"] == "request.invalid"
    assert body["status"] == 422


def test_a_habilitation_may_only_cover_releasable_fields_of_its_scope(
    db: Database, settings: Settings
) -> None:
    partner = make_partner(db, settings, "CNAM", "cnam")
    with pytest.raises(UnprocessableError, match=r"periods\.amounts"), db.sync_session() as s:
        service.grant_habilitation(
            s,
            partner_name=partner.name,
            scope="status:read",
            purposes=["X"],
            legal_basis="law",
            released_fields=["periods.amounts"],
            today=service.legal_today(settings),
        )
