"""Pôle emploi's contract: monthly turnover, ACRE proofs, and the life of a consent.

Its scenario asks the same question several times and gets different answers as the
person's consent comes and goes; a contract holds one answer per request, so this test
calls the partner's operations one by one, each about a different person in its own state.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import httpx
from pact import Pact, generate, match
from pact.match.matcher import GenericMatcher
from pact_support import (
    TEST_TOKEN,
    UUID,
    data_headers,
    date,
    datetime,
    decimal,
    discovery,
    expect_headers,
    new_pact,
    one_of,
    problem,
    publish,
    siren,
)

from mocks.common import GatewayClient, StaticBearer, api
from mocks.common.auth import discover
from mocks.pole_emploi import CONSENT_PURPOSE, PROFILE

JOB_SEEKER = "299037590000121"
CREATOR = "880000039"
WITHOUT_CONSENT = "299037590000220"
GIVING_CONSENT = "299037590000319"
CONSENTED = "299037590000418"
WITHDRAWING = "299037590000517"
RANGE = ("2026-04", "2026-09")
# Far ahead: the verifier replays this example, and a consent ending in the past is refused.
CONSENT_END = "2099-12-31T23:00:00+00:00"
EVIDENCE = "Consent form signed at the agency, scanned in the job seeker's file"


def _monthly_turnover(nir_siren: str) -> dict[str, Any]:
    return {
        "siren": siren(nir_siren),
        "periodicity": one_of("monthly", "monthly", "quarterly"),
        "as_of": datetime("2026-10-01T02:00:00Z"),
        "periods": match.each_like(
            {
                "period": match.regex("2026-09", regex=r"^\d{4}-(Q[1-4]|\d{2})$"),
                "declared": match.bool(True),
                "total": decimal("1530.00"),
            }
        ),
    }


def _consent(state: str, example_id: str) -> dict[str, Any]:
    return {
        "id": match.regex(example_id, regex=UUID),
        "state": state,
        "expires_at": datetime(CONSENT_END),
        "receipt": match.regex("eyJhbGciOiJFUzI1NiJ9.e30.c2ln", regex=r"^[\w-]+\.[\w-]+\.[\w-]+$"),
    }


def pole_emploi_pact() -> Pact:
    pact = new_pact("pole-emploi")
    discovery(pact, "Pôle emploi")
    headers = data_headers(PROFILE.purpose, PROFILE.recipient)
    consent_headers = data_headers(CONSENT_PURPOSE, PROFILE.recipient)

    search = (
        pact.upon_receiving("Pôle emploi reads a job seeker's monthly turnover by NIR")
        .given("a micro-entrepreneur declares monthly", nir=JOB_SEEKER)
        .with_request("POST", "/api/v2/turnover/search")
    )
    expect_headers(search, headers)
    search.with_body(
        {"nir": JOB_SEEKER, "from": RANGE[0], "to": RANGE[1]}, content_type="application/json"
    )
    search.will_respond_with(200).with_body(
        _monthly_turnover("880000099"), content_type="application/json"
    )

    proof = (
        pact.upon_receiving("Pôle emploi reads the ACRE decision of a business creator")
        .given("a business creator was granted ACRE", siren=CREATOR)
        .with_request("GET", f"/api/v1/acre/proofs/{CREATOR}")
    )
    expect_headers(proof, headers)
    proof.will_respond_with(200).with_body(
        {
            "siren": CREATOR,
            "decision": one_of("granted", "granted", "refused", "pending"),
            "criterion": match.str("unemployment_benefit_are"),
            "exemption": {"start_date": date("2026-03-01"), "end_date": date("2027-02-28")},
            "decided_at": datetime("2026-03-02T09:14:05Z"),
        },
        content_type="application/json",
    )

    refused = (
        pact.upon_receiving("Pôle emploi asks, under consent, about a person who gave none")
        .given("a person gave Pôle emploi no consent", nir=WITHOUT_CONSENT)
        .with_request("POST", "/api/v2/turnover/search")
    )
    expect_headers(refused, consent_headers)
    refused.with_body(
        {"nir": WITHOUT_CONSENT, "from": RANGE[0], "to": RANGE[1]},
        content_type="application/json",
    )
    refused.will_respond_with(403).with_body(
        problem("consent.missing", 403, "Forbidden"), content_type="application/problem+json"
    )

    grant = (
        pact.upon_receiving("Pôle emploi records the consent a person signed")
        .given("a micro-entrepreneur declares monthly", nir=GIVING_CONSENT)
        .with_request("POST", "/api/v1/consents")
        .with_header(
            "Authorization", match.regex(f"Bearer {TEST_TOKEN}", regex=r"^Bearer [\x21-\x7e]+$")
        )
    )
    grant.with_body(
        {
            "subject": {"nir": GIVING_CONSENT},
            "scopes": ["turnover:read"],
            "purpose": CONSENT_PURPOSE,
            "evidence": match.str(EVIDENCE),
            "expires_at": datetime(CONSENT_END),
        },
        content_type="application/json",
    )
    grant.will_respond_with(201).with_body(
        _consent("active", "3f0c1a52-8d8e-4c1b-9a53-2f1e6c0d7b21"),
        content_type="application/json",
    )

    consented = (
        pact.upon_receiving("Pôle emploi asks, under consent, about a person who consented")
        .given("a person consented to Pôle emploi's support", nir=CONSENTED)
        .with_request("POST", "/api/v2/turnover/search")
    )
    expect_headers(consented, consent_headers)
    consented.with_body(
        {"nir": CONSENTED, "from": RANGE[0], "to": RANGE[1]}, content_type="application/json"
    )
    consented.will_respond_with(200).with_body(
        _monthly_turnover("880000098"), content_type="application/json"
    )

    # The consent's id is the provider's: the state hands it over, the verifier puts it in.
    revoke_path = GenericMatcher(
        "regex",
        "/api/v1/consents/0b7d4c7e-2f5a-4e8e-9a1d-6c3b2a1f0e9d/revoke",
        regex=r"^/api/v1/consents/[0-9a-f-]{36}/revoke$",
        generator=generate.provider_state("/api/v1/consents/${consentId}/revoke"),
    )
    revoke = (
        pact.upon_receiving("Pôle emploi withdraws a consent at the person's request")
        .given("Pôle emploi recorded a person's consent", nir=WITHDRAWING)
        .with_request("POST", revoke_path)
        .with_header(
            "Authorization", match.regex(f"Bearer {TEST_TOKEN}", regex=r"^Bearer [\x21-\x7e]+$")
        )
    )
    revoke.with_body(
        {"reason": match.str("The person withdrew it")}, content_type="application/json"
    )
    revoke.will_respond_with(200).with_body(
        _consent("revoked", "0b7d4c7e-2f5a-4e8e-9a1d-6c3b2a1f0e9d"),
        content_type="application/json",
    )
    return pact


def test_pole_emploi_expectations_are_the_committed_pact(tmp_path: Path) -> None:
    pact = pole_emploi_pact()
    with pact.serve() as server:
        with httpx.Client() as http:
            discover(http, str(server.url))
        client = GatewayClient(
            str(server.url),
            auth=StaticBearer(TEST_TOKEN),
            purpose=PROFILE.purpose,
            recipient=PROFILE.recipient,
        )
        with client:
            monthly = api.turnover_by_nir(
                client, JOB_SEEKER, from_month=RANGE[0], to_month=RANGE[1]
            ).value()
            proof = api.acre_proof(client, CREATOR).value()
            refused = api.turnover_by_nir(
                client,
                WITHOUT_CONSENT,
                from_month=RANGE[0],
                to_month=RANGE[1],
                purpose=CONSENT_PURPOSE,
            )
            granted = api.record_consent(
                client,
                nir=GIVING_CONSENT,
                scopes=["turnover:read"],
                purpose=CONSENT_PURPOSE,
                evidence=EVIDENCE,
                expires_at=dt.datetime.fromisoformat(CONSENT_END),
            ).value()
            answered = api.turnover_by_nir(
                client, CONSENTED, from_month=RANGE[0], to_month=RANGE[1], purpose=CONSENT_PURPOSE
            ).value()
            revoked = api.revoke_consent(
                client, "0b7d4c7e-2f5a-4e8e-9a1d-6c3b2a1f0e9d", reason="The person withdrew it"
            ).value()
    assert monthly.periods[0].total is not None
    assert proof.decision == "granted"
    assert proof.exemption is not None
    assert refused.problem is not None
    assert refused.problem.code == "consent.missing"
    assert granted.state == "active"
    assert answered.periodicity == "monthly"
    assert revoked.state == "revoked"
    publish(pact, tmp_path)
