"""Bulk answers through the pipeline: every subject audited, retries replayed, JWS verifiable."""

from __future__ import annotations

import datetime as dt
import json

import httpx
import pytest
from jwcrypto import jwk, jws
from jwcrypto.common import JWException
from pipeline_support import Partner, audit_rows, audit_subjects, make_partner
from sqlalchemy import insert

from gateway.database import Database
from gateway.reference.models import Account, CfpPayment
from gateway.settings import Settings
from tests.factories import create_account, create_cfp_payment, create_status_event

BATCH = "/api/v1/cfp/attestations/batch"


@pytest.fixture
def fund(db: Database, settings: Settings) -> Partner:
    partner = make_partner(db, settings, "AGEFICE", "training-fund")
    partner.grant("cfp:read")
    return partner


def _accounts_with_cfp(db: Database, count: int) -> list[str]:
    sirens = []
    with db.sync_session.begin() as session:
        for _ in range(count):
            account = create_account(session, category="commercant")
            sirens.append(account.siren)
        session.flush()
        ids = dict(session.query(Account.siren, Account.id).all())
        session.execute(
            insert(CfpPayment),
            [
                {
                    "account_id": ids[siren],
                    "year": 2025,
                    "base": "30000.00",
                    "rate": "0.100",
                    "amount_due": "30.00",
                    "amount_paid": "30.00",
                    "payment_date": dt.date(2026, 2, 25),
                    "fund": "AGEFICE",
                    "recorded_at": dt.datetime.now(dt.UTC),
                    "updated_at": dt.datetime.now(dt.UTC),
                }
                for siren in sirens
            ],
        )
    return sirens


async def test_a_batch_of_10000_answers_and_audits_every_subject(
    http: httpx.AsyncClient, fund: Partner, db: Database
) -> None:
    sirens = _accounts_with_cfp(db, 9_990)
    items = [{"siren": siren, "year": 2025} for siren in sirens]
    items += [{"siren": "732829321", "year": 2025}] * 5 + [{"siren": "732829320", "year": 2025}] * 5
    response = await http.post(
        BATCH, json={"items": items}, headers=await fund.headers(http, "cfp:read")
    )
    assert response.status_code == 200, response.text[:500]
    results = response.json()["items"]
    assert len(results) == 10_000
    outcomes = [r["outcome"] for r in results]
    assert outcomes.count("found") == 9_990
    assert outcomes.count("invalid_identifier") == 5
    assert outcomes.count("not_found") == 5
    [record] = await audit_rows(db)
    subjects = await audit_subjects(db, record.id)
    assert len(subjects) == 9_990
    assert len({s.pseudonym for s in subjects}) == 9_990


async def test_over_the_limit_is_413(http: httpx.AsyncClient, fund: Partner) -> None:
    items = [{"siren": "732829320", "year": 2025}] * 10_001
    response = await http.post(
        BATCH, json={"items": items}, headers=await fund.headers(http, "cfp:read")
    )
    assert response.status_code == 413
    assert response.json()["code"] == "batch.too_many_items"


async def test_idempotency_key_replays_the_answer_without_a_new_disclosure(
    http: httpx.AsyncClient, fund: Partner, db: Database
) -> None:
    sirens = _accounts_with_cfp(db, 3)
    body = {"items": [{"siren": siren, "year": 2025} for siren in sirens]}
    headers = await fund.headers(http, "cfp:read", **{"Idempotency-Key": "batch-2026-11-27-1"})
    first = await http.post(BATCH, json=body, headers=headers)
    second = await http.post(BATCH, json=body, headers=headers)
    assert first.status_code == second.status_code == 200
    assert second.content == first.content
    assert second.headers["idempotent-replayed"] == "true"
    other = await http.post(BATCH, json={"items": body["items"][:1]}, headers=headers)
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency.key_reused"

    first_record, replay_record, reused_record = await audit_rows(db)
    assert len(await audit_subjects(db, first_record.id)) == 3
    assert replay_record.reason_code == "idempotency.replayed"
    assert await audit_subjects(db, replay_record.id) == []
    assert reused_record.outcome == "refused"


async def test_an_attestation_verifies_offline_and_fails_once_altered(
    http: httpx.AsyncClient, fund: Partner, db: Database
) -> None:
    with db.sync_session.begin() as session:
        account = create_account(session, category="artisan")
        create_cfp_payment(session, account, year=2025, fund="FAFCEA")
        siren = account.siren
    response = await http.get(
        f"/api/v1/cfp/attestations/{siren}/2025", headers=await fund.headers(http, "cfp:read")
    )
    assert response.status_code == 200, response.text
    attestation = response.json()["attestation_jws"]
    keys = jwk.JWKSet.from_json((await http.get("/.well-known/jwks.json")).text)

    verified = jws.JWS()
    verified.deserialize(attestation)
    verified.verify(keys)
    assert json.loads(verified.payload)["fund"] == "FAFCEA"

    header, payload, signature = attestation.split(".")
    altered_payload = payload[:10] + ("A" if payload[10] != "A" else "B") + payload[11:]
    tampered = jws.JWS()
    tampered.deserialize(f"{header}.{altered_payload}.{signature}")
    with pytest.raises(JWException):
        tampered.verify(keys)


async def test_a_feed_page_audits_each_subject(
    http: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    cnam = make_partner(db, settings, "CNAM", "cnam")
    cnam.grant("status:feed")
    with db.sync_session.begin() as session:
        for _ in range(4):
            account = create_account(session)
            create_status_event(session, account, "affiliation", dt.date(2026, 1, 5))
    response = await http.get(
        "/api/v1/status/events?limit=10", headers=await cnam.headers(http, "status:feed")
    )
    assert response.status_code == 200, response.text
    assert len(response.json()["events"]) == 4
    [record] = await audit_rows(db)
    assert len(await audit_subjects(db, record.id)) == 4
