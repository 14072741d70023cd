"""Consents: a consent-based habilitation serves only a person who consented, until revoked."""

from __future__ import annotations

import datetime as dt
import json

import httpx
import pytest
from fastapi import FastAPI
from jwcrypto import jwk, jws
from pipeline_support import PURPOSE, Partner, audit_rows, dump_audit_tables, make_partner
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from connectors.kit import Subject
from gateway.audit.pseudonym import Pseudonymiser
from gateway.consent.service import find_active_consent
from gateway.database import Database
from gateway.identifiers import NIR_SHAPE
from gateway.reference.models import Account
from gateway.settings import Settings

TURNOVER = "/api/v2/turnover/{siren}?from=2026-01&to=2026-03"


def _consent_body(subject: dict[str, str], days: int = 30) -> dict[str, object]:
    return {
        "subject": subject,
        "scopes": ["turnover:read"],
        "purpose": PURPOSE,
        "evidence": "Signed form, case file 2026-000123",
        "expires_at": (dt.datetime.now(dt.UTC) + dt.timedelta(days=days)).isoformat(),
    }


async def _grant(http: httpx.AsyncClient, partner: Partner, person: Account) -> str:
    granted = await http.post(
        "/api/v1/consents",
        json=_consent_body({"siren": person.siren}),
        headers=await partner.headers(http, "consent:write"),
    )
    assert granted.status_code == 201, granted.text
    return str(granted.json()["id"])


async def _find(
    app: FastAPI, db: Database, partner: Partner, person: Account, pseudonymiser: Pseudonymiser
) -> str | None:
    return await find_active_consent(
        app.state.db,
        pseudonymiser,
        partner_id=audit_partner_id(db, partner),
        subject=Subject("siren", person.siren),
        scope="turnover:read",
        purpose=PURPOSE,
    )


async def test_consent_lifecycle_refused_then_granted_then_refused_after_revocation(
    http: httpx.AsyncClient, settings: Settings, person: Account, db: Database
) -> None:
    caf = make_partner(db, settings, "CAF Paris", "caf")
    caf.grant("turnover:read", consent_required=True)
    caf.grant("consent:write")
    data_headers = await caf.headers(http, "turnover:read")
    url = TURNOVER.format(siren=person.siren)

    refused = await http.get(url, headers=data_headers)
    assert refused.status_code == 403
    assert refused.json()["code"] == "consent.missing"

    granted = await http.post(
        "/api/v1/consents",
        json=_consent_body({"nir": person.nir}),
        headers=await caf.headers(http, "consent:write"),
    )
    assert granted.status_code == 201, granted.text
    consent = granted.json()
    assert consent["state"] == "active"
    assert granted.headers["location"] == f"/api/v1/consents/{consent['id']}"

    # A consent given by NIR covers a lookup by SIREN of the same person.
    served = await http.get(url, headers=data_headers)
    assert served.status_code == 200, served.text

    revoked = await http.post(
        f"/api/v1/consents/{consent['id']}/revoke",
        json={"reason": "withdrawn by the person"},
        headers=await caf.headers(http, "consent:write"),
    )
    assert revoked.status_code == 200
    assert revoked.json()["state"] == "revoked"
    assert [e["event"] for e in revoked.json()["events"]] == ["granted", "revoked"]

    again = await http.get(url, headers=data_headers)
    assert again.status_code == 403
    assert again.json()["code"] == "consent.missing"

    records = await audit_rows(db)
    data_records = [r for r in records if r.connector == "turnover"]
    assert [r.outcome for r in data_records] == ["refused", "granted", "refused"]
    assert data_records[1].consent_id == consent["id"]
    dumped = dump_audit_tables(db)
    assert person.nir not in dumped
    assert not NIR_SHAPE.search(dumped)


async def test_the_receipt_verifies_against_the_published_jwks(
    http: httpx.AsyncClient, caf: Partner, person: Account
) -> None:
    caf.grant("consent:write")
    caf.grant("turnover:read", consent_required=True)
    granted = await http.post(
        "/api/v1/consents",
        json=_consent_body({"siren": person.siren}),
        headers=await caf.headers(http, "consent:write"),
    )
    assert granted.status_code == 201, granted.text
    receipt = granted.json()["receipt"]
    keys = jwk.JWKSet.from_json((await http.get("/.well-known/jwks.json")).text)
    token = jws.JWS()
    token.deserialize(receipt)
    token.verify(keys)
    claims = json.loads(token.payload)
    assert claims["record_id"] == granted.json()["id"]
    assert claims["processing"][0]["purpose"] == PURPOSE
    assert claims["processing"][0]["data_categories"]
    assert person.siren not in receipt
    assert person.nir not in json.dumps(claims)


async def test_another_partner_cannot_read_or_revoke_a_consent(
    http: httpx.AsyncClient, caf: Partner, person: Account, db: Database
) -> None:
    caf.grant("consent:write")
    granted = await http.post(
        "/api/v1/consents",
        json=_consent_body({"siren": person.siren}),
        headers=await caf.headers(http, "consent:write"),
    )
    consent_id = granted.json()["id"]
    other = make_partner(db, caf.settings, "CNAM", "cnam")
    other.grant("consent:write")
    headers = await other.headers(http, "consent:write")
    assert (await http.get(f"/api/v1/consents/{consent_id}", headers=headers)).status_code == 404
    revoke = await http.post(f"/api/v1/consents/{consent_id}/revoke", headers=headers)
    assert revoke.status_code == 404
    mine = await http.get(
        f"/api/v1/consents/{consent_id}", headers=await caf.headers(http, "consent:write")
    )
    assert mine.json()["state"] == "active"


async def test_a_consent_for_a_scope_the_partner_is_not_habilitated_for_is_refused(
    http: httpx.AsyncClient, caf: Partner, person: Account
) -> None:
    caf.grant("consent:write")
    body = _consent_body({"siren": person.siren})
    body["scopes"] = ["acre:read"]
    response = await http.post(
        "/api/v1/consents", json=body, headers=await caf.headers(http, "consent:write")
    )
    assert response.status_code == 403
    assert response.json()["code"] == "consent.not_habilitated"


async def test_an_expired_consent_no_longer_serves(
    http: httpx.AsyncClient,
    app: FastAPI,
    db: Database,
    caf: Partner,
    person: Account,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caf.grant("consent:write")
    consent_id = await _grant(http, caf, person)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=31)
    monkeypatch.setattr("gateway.consent.service.utcnow", lambda: later)
    read = await http.get(
        f"/api/v1/consents/{consent_id}", headers=await caf.headers(http, "consent:write")
    )
    assert read.json()["state"] == "expired"
    assert read.json()["events"][-1]["event"] == "expired"
    assert await _find(app, db, caf, person, app.state.audit.pseudonymiser) is None


def audit_partner_id(db: Database, partner: Partner) -> int:
    with db.sync_engine.connect() as conn:
        return int(
            conn.execute(
                text("SELECT partner_id FROM oauth_client WHERE client_id = :c"),
                {"c": partner.client_id},
            ).scalar_one()
        )


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE consent_event SET event = 'granted'",
        "DELETE FROM consent_event",
        "DELETE FROM consent_subject",
        "UPDATE consent SET purpose = 'x'",
    ],
)
async def test_the_consent_ledger_is_append_only(
    http: httpx.AsyncClient, caf: Partner, person: Account, db: Database, statement: str
) -> None:
    caf.grant("consent:write")
    await _grant(http, caf, person)
    with pytest.raises(DBAPIError, match="append-only"), db.sync_engine.begin() as conn:
        conn.execute(text(statement))


async def test_a_consent_check_reads_no_pseudonym_key_from_the_database(
    http: httpx.AsyncClient,
    app: FastAPI,
    db: Database,
    caf: Partner,
    person: Account,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caf.grant("consent:write")
    consent_id = await _grant(http, caf, person)
    pseudonymiser = app.state.audit.pseudonymiser

    def no_read() -> None:
        raise AssertionError("the keys were read from the database")

    monkeypatch.setattr(pseudonymiser, "_read_keys", no_read)
    for _ in range(3):
        assert await _find(app, db, caf, person, pseudonymiser) == consent_id


async def test_a_consent_made_under_a_key_rotated_by_another_process_is_found(
    http: httpx.AsyncClient,
    app: FastAPI,
    db: Database,
    settings: Settings,
    caf: Partner,
    person: Account,
) -> None:
    """This process still holds the keys read before the rotation (refreshed every minute); a
    lookup that finds nothing re-reads them, at most once a second, and looks again."""
    now = [0.0]
    here = Pseudonymiser(db, settings, refresh_seconds=60, clock=lambda: now[0])
    await here.pseudonym("siren", person.siren)  # the keys as they were
    new_key = Pseudonymiser(db, settings).rotate()  # elsewhere
    caf.grant("consent:write")
    consent_id = await _grant(http, caf, person)  # recorded under the new key by the app
    assert app.state.audit.pseudonymiser.active_key_sync()[0] == new_key

    now[0] = 0.5
    assert await _find(app, db, caf, person, here) is None  # keys read 0.5 s ago: kept
    now[0] = 2.0
    assert await _find(app, db, caf, person, here) == consent_id


async def test_a_consent_body_that_is_not_utf_8_is_a_400_problem_and_recorded(
    http: httpx.AsyncClient, settings: Settings, db: Database
) -> None:
    """FastAPI refuses such a body itself: the refusal is answered and audited like any other."""
    caf = make_partner(db, settings, "CAF Nice", "caf")
    caf.grant("consent:write")
    headers = await caf.headers(http, "consent:write")
    response = await http.post(
        "/api/v1/consents",
        content=b"\xfd\x86{",
        headers={**headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "request.malformed"
    [record] = await audit_rows(db)
    assert (record.outcome, record.reason_code, record.http_status) == (
        "refused",
        "request.malformed",
        400,
    )
