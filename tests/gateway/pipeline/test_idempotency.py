"""``Idempotency-Key``: a stored answer is replayed only to the very request it was given for,
and only while the checks that let it leave the first time still pass."""

from __future__ import annotations

import datetime as dt

import httpx
from pipeline_support import PURPOSE, Partner, audit_rows, make_partner
from sqlalchemy import select

from gateway.database import Database
from gateway.partners.models import Habilitation
from gateway.reference.models import Account
from gateway.settings import Settings

SEARCH = "/api/v2/turnover/search"
OTHER_PURPOSE = "PRIME_ACTIVITE"


def _search(person: Account) -> dict[str, str]:
    return {"nir": person.nir, "from": "2026-01", "to": "2026-03"}


async def test_a_retry_of_the_same_request_replays_the_answer_naming_no_subject(
    http: httpx.AsyncClient, caf: Partner, person: Account, db: Database
) -> None:
    headers = await caf.headers(http, "turnover:read", **{"Idempotency-Key": "case-1"})
    first = await http.post(SEARCH, json=_search(person), headers=headers)
    again = await http.post(SEARCH, json=_search(person), headers=headers)
    assert first.status_code == again.status_code == 200, first.text
    assert again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    first_record, replay_record = await audit_rows(db)
    assert replay_record.reason_code == "idempotency.replayed"
    assert first_record.reason_code is None


async def test_a_withdrawn_consent_stops_replays_too(
    http: httpx.AsyncClient, db: Database, settings: Settings, person: Account
) -> None:
    caf = make_partner(db, settings, "CAF Lyon", "caf")
    caf.grant("turnover:read", consent_required=True)
    caf.grant("consent:write")
    granted = await http.post(
        "/api/v1/consents",
        json={
            "subject": {"nir": person.nir},
            "scopes": ["turnover:read"],
            "purpose": PURPOSE,
            "evidence": "Signed form",
            "expires_at": (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).isoformat(),
        },
        headers=await caf.headers(http, "consent:write"),
    )
    assert granted.status_code == 201, granted.text
    headers = await caf.headers(http, "turnover:read", **{"Idempotency-Key": "case-42"})
    first = await http.post(SEARCH, json=_search(person), headers=headers)
    assert first.status_code == 200, first.text
    replayed = await http.post(SEARCH, json=_search(person), headers=headers)
    assert replayed.headers["idempotent-replayed"] == "true"

    revoked = await http.post(
        f"/api/v1/consents/{granted.json()['id']}/revoke",
        json={"reason": "withdrawn by the person"},
        headers=await caf.headers(http, "consent:write"),
    )
    assert revoked.status_code == 200

    after = await http.post(SEARCH, json=_search(person), headers=headers)
    assert after.status_code == 403, after.text[:200]
    assert after.json()["code"] == "consent.missing"
    assert person.nir not in after.text
    records = [r for r in await audit_rows(db) if r.connector == "turnover"]
    assert [(r.outcome, r.reason_code) for r in records] == [
        ("granted", None),
        ("granted", "idempotency.replayed"),
        ("refused", "consent.missing"),
    ]
    # The replay was checked against the consent in force, and says which.
    assert records[1].consent_id == records[0].consent_id is not None


async def test_a_key_is_bound_to_its_operation_not_only_to_its_body(
    http: httpx.AsyncClient, caf: Partner, person: Account, db: Database
) -> None:
    caf.grant("status:read")
    body = {"nir": person.nir}
    status = await http.post(
        "/api/v1/status/search",
        json=body,
        headers=await caf.headers(http, "status:read", **{"Idempotency-Key": "k-1"}),
    )
    assert status.status_code == 200, status.text
    turnover = await http.post(
        SEARCH,
        json=body,
        headers=await caf.headers(http, "turnover:read", **{"Idempotency-Key": "k-1"}),
    )
    assert turnover.status_code == 422, turnover.text[:200]
    assert turnover.json()["code"] == "idempotency.key_reused"
    assert "idempotent-replayed" not in turnover.headers
    records = await audit_rows(db)
    assert [(r.connector, r.outcome, r.reason_code) for r in records] == [
        ("status", "granted", None),
        ("turnover", "refused", "idempotency.key_reused"),
    ]


async def test_a_key_reused_under_another_purpose_or_case_is_refused(
    http: httpx.AsyncClient, caf: Partner, person: Account, db: Database
) -> None:
    caf.grant("turnover:read", purposes=[OTHER_PURPOSE])
    key = {"Idempotency-Key": "k-2"}
    first = await http.post(
        SEARCH, json=_search(person), headers=await caf.headers(http, "turnover:read", **key)
    )
    assert first.status_code == 200, first.text
    other_purpose = await http.post(
        SEARCH,
        json=_search(person),
        headers=await caf.headers(http, "turnover:read", purpose=OTHER_PURPOSE, **key),
    )
    other_case = await http.post(
        SEARCH,
        json=_search(person),
        headers=await caf.headers(http, "turnover:read", **key, **{"Case-Reference": "D-2"}),
    )
    for response in (other_purpose, other_case):
        assert response.status_code == 422, response.text[:200]
        assert response.json()["code"] == "idempotency.key_reused"


async def test_a_habilitation_narrowed_since_stops_the_replay_of_fields_it_now_withholds(
    http: httpx.AsyncClient, db: Database, settings: Settings, person: Account
) -> None:
    cnam = make_partner(db, settings, "CNAM", "cnam")
    habilitation_id = cnam.grant("turnover:read")
    headers = await cnam.headers(http, "turnover:read", **{"Idempotency-Key": "k-3"})
    first = await http.post(SEARCH, json=_search(person), headers=headers)
    assert first.status_code == 200, first.text
    assert "amounts" in first.json()["periods"][0]

    with db.sync_session.begin() as session:
        habilitation = session.scalars(
            select(Habilitation).where(Habilitation.id == habilitation_id)
        ).one()
        habilitation.released_fields = ["periods.rectifications"]

    again = await http.post(SEARCH, json=_search(person), headers=headers)
    assert again.status_code == 422, again.text[:200]
    assert again.json()["code"] == "idempotency.key_reused"
    assert "amounts" not in again.text
