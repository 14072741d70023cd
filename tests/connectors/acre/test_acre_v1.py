"""ACRE proofs v1, called as the pipeline calls them, with Pôle emploi played by the mock app."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import httpx
import pytest
import respx
from acre_support import NOW, Connect, RecordingTransport, nir_for
from factories import create_account, create_acre_decision, create_ingestion_run, new_siren
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from connectors.acre.pole_emploi import SOURCE, PoleEmploiClient
from connectors.acre.v1 import VERSION, AcreProof, get_proof
from connectors.kit import (
    Subject,
    SubjectNotFound,
    UpstreamBadAnswer,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from gateway.reference.models import AcreDecision

STATUS_PATH = "/api/v1/job-seekers/status"
AFFILIATED = dt.date(2025, 9, 1)


def count_decisions(session: Session) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(AcreDecision)) or 0


async def mock_bytes(transport: RecordingTransport, nir: str, situation: dt.date) -> bytes:
    """What the mock sends for ``nir``, asked directly: the bytes the digest must cover."""
    async with httpx.AsyncClient(transport=transport.inner, base_url="http://pe") as http:
        token = await http.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=("gateway-tests", "mock-secret-for-tests"),
        )
        answer = await http.post(
            STATUS_PATH,
            json={"nir": nir, "situation_date": situation.isoformat()},
            headers={"Authorization": f"Bearer {token.json()['access_token']}"},
        )
    return answer.content


def test_version_declares_scope_path_and_withholdable_fields() -> None:
    assert VERSION.scope == "acre:read"
    assert VERSION.key == "acre.v1"
    (operation,) = VERSION.operations
    assert (operation.method, operation.path) == ("GET", "/acre/proofs/{siren}")
    assert operation.subject is not None
    assert operation.subject({"siren": "732829320"}) == Subject("siren", "732829320")
    # The criterion reveals unemployment benefits: it must be withholdable, hence optional.
    assert {"criterion", "evidence"} <= VERSION.releasable
    for name in VERSION.releasable:
        assert not AcreProof.model_fields[name].is_required()


@pytest.mark.parametrize(
    ("case", "decision", "criterion"),
    [
        ("ARE", "granted", "unemployment_benefit_are"),
        ("ASS", "granted", "solidarity_allowance_ass"),
        ("registered", "granted", "job_seeker_6_of_18_months"),
        ("under_review", "pending", None),
        ("nothing", "refused", None),
        ("unknown", "refused", None),
    ],
)
async def test_proof_against_the_mock_pole_emploi(
    session: Session,
    connect: Connect,
    pole_emploi_transport: RecordingTransport,
    case: str,
    decision: str,
    criterion: str | None,
) -> None:
    nir = nir_for(case)
    account = create_account(session, nir=nir, affiliation_date=AFFILIATED)
    accounts_loaded = dt.datetime(2026, 7, 14, 2, 0, tzinfo=dt.UTC)
    create_ingestion_run(session, "accounts", accounts_loaded)
    session.commit()

    async with connect() as ctx:
        disclosure = await get_proof(siren=account.siren, ctx=ctx)

    proof = disclosure.body
    assert list(disclosure.subjects) == [Subject("siren", account.siren)]
    assert (proof.siren, proof.decision) == (account.siren, decision)
    assert (proof.criterion.value if proof.criterion else None) == criterion
    if decision == "granted":
        assert proof.exemption is not None
        assert (proof.exemption.start_date, proof.exemption.end_date) == (
            AFFILIATED,
            dt.date(2026, 8, 31),
        )
    else:
        assert proof.exemption is None
    assert proof.evidence is not None
    assert proof.evidence.source == SOURCE
    assert proof.evidence.fetched_at == NOW + dt.timedelta(seconds=1)
    expected = await mock_bytes(pole_emploi_transport, nir, AFFILIATED)
    assert proof.evidence.digest == "sha256:" + hashlib.sha256(expected).hexdigest()
    if case == "unknown":
        assert proof.evidence.reference is None
    else:
        assert proof.evidence.reference == json.loads(expected)["reference"]
    assert proof.as_of == accounts_loaded
    assert proof.source == "URSSAF"

    # The decision and its evidence are stored, exactly as answered.
    session.expire_all()
    stored = session.scalars(select(AcreDecision)).one()
    assert stored.account_id == account.id
    assert stored.decision == decision
    assert stored.criterion == criterion
    assert stored.evidence_digest == proof.evidence.digest
    assert stored.evidence_reference == proof.evidence.reference
    assert stored.evidence_fetched_at == proof.evidence.fetched_at

    # The NIR went to Pôle emploi in a body only, and never comes back out.
    status_requests = [r for r in pole_emploi_transport.requests if r.url.path == STATUS_PATH]
    assert json.loads(status_requests[0].content)["nir"] == nir
    assert all(nir not in str(request.url) for request in pole_emploi_transport.requests)
    sent = proof.model_dump_json()
    assert nir not in sent
    AcreProof.model_validate_json(sent)


async def test_an_old_affiliation_still_gets_its_period(session: Session, connect: Connect) -> None:
    account = create_account(session, nir=nir_for("ARE"), affiliation_date=dt.date(2016, 2, 29))
    session.commit()
    async with connect() as ctx:
        proof = (await get_proof(siren=account.siren, ctx=ctx)).body
    assert proof.exemption is not None
    assert proof.exemption.start_date == dt.date(2016, 2, 29)
    assert proof.exemption.end_date == dt.date(2017, 2, 28)


async def test_a_recent_decision_is_reused_and_an_old_one_renewed(
    session: Session, connect: Connect, pole_emploi_transport: RecordingTransport
) -> None:
    account = create_account(session, nir=nir_for("ASS"), affiliation_date=AFFILIATED)
    session.commit()

    async with connect() as ctx:
        first = (await get_proof(siren=account.siren, ctx=ctx)).body
    async with connect(now=NOW + dt.timedelta(hours=23)) as ctx:
        again = (await get_proof(siren=account.siren, ctx=ctx)).body
    assert pole_emploi_transport.paths().count(STATUS_PATH) == 1
    assert again == first
    assert count_decisions(session) == 1

    # A day later Pôle emploi is asked again and the new decision is kept beside the old one.
    async with connect(now=NOW + dt.timedelta(hours=25)) as ctx:
        renewed = (await get_proof(siren=account.siren, ctx=ctx)).body
    assert pole_emploi_transport.paths().count(STATUS_PATH) == 2
    assert renewed.decided_at == NOW + dt.timedelta(hours=25)
    assert count_decisions(session) == 2


async def test_a_stored_decision_is_served_without_pole_emploi(
    session: Session, connect: Connect
) -> None:
    account = create_account(session, affiliation_date=AFFILIATED)
    older = create_acre_decision(
        session, account, NOW - dt.timedelta(hours=20), decision="refused", criterion=None
    )
    latest = create_acre_decision(
        session,
        account,
        NOW - dt.timedelta(hours=2),
        exemption_start_date=AFFILIATED,
        exemption_end_date=dt.date(2026, 8, 31),
    )
    session.commit()
    async with connect(services={}) as ctx:
        proof = (await get_proof(siren=account.siren, ctx=ctx)).body
    assert older.id != latest.id
    assert proof.decision == "granted"
    assert proof.decided_at == latest.decided_at
    assert proof.evidence is not None
    assert proof.evidence.reference == latest.evidence_reference


async def test_unknown_siren_is_subject_unknown_and_pole_emploi_is_not_asked(
    session: Session, connect: Connect, pole_emploi_transport: RecordingTransport
) -> None:
    create_account(session)
    session.commit()
    async with connect() as ctx:
        with pytest.raises(SubjectNotFound) as caught:
            await get_proof(siren=new_siren(), ctx=ctx)
    assert caught.value.code == "subject.unknown"
    assert pole_emploi_transport.requests == []


async def test_without_a_configured_client_the_answer_is_503(
    session: Session, connect: Connect
) -> None:
    account = create_account(session)
    session.commit()
    async with connect(services={}) as ctx:
        with pytest.raises(UpstreamUnavailable) as caught:
            await get_proof(siren=account.siren, ctx=ctx)
    assert caught.value.code == "upstream.unavailable"
    assert count_decisions(session) == 0


@pytest.mark.parametrize(
    ("reply", "error", "code"),
    [
        (httpx.Response(503), UpstreamUnavailable, "upstream.unavailable"),
        (httpx.ReadTimeout("slow"), UpstreamTimeout, "upstream.timeout"),
        (httpx.Response(200, json={"registered": "yes"}), UpstreamBadAnswer, "upstream.bad_answer"),
        (httpx.Response(200, text="<html/>"), UpstreamBadAnswer, "upstream.bad_answer"),
    ],
)
async def test_upstream_failures_store_nothing(
    session: Session,
    connect: Connect,
    reply: httpx.Response | Exception,
    error: type[Exception],
    code: str,
) -> None:
    account = create_account(session, affiliation_date=AFFILIATED)
    session.commit()
    base = "https://pole-emploi.example.test"
    with respx.mock(base_url=base) as upstream:
        upstream.post("/oauth/token").respond(
            200, json={"access_token": "t" * 20, "token_type": "Bearer", "expires_in": 600}
        )
        route = upstream.post(STATUS_PATH)
        if isinstance(reply, Exception):
            route.side_effect = reply
        else:
            route.mock(return_value=reply)
        client = PoleEmploiClient(base, "id", "secret", backoff_seconds=0.001)
        async with client, connect(services={"pole_emploi": client}) as ctx:
            with pytest.raises(error) as caught:
                await get_proof(siren=account.siren, ctx=ctx)
    assert getattr(caught.value, "code", None) == code
    assert count_decisions(session) == 0
