"""The training fund's contract: the gateway's keys and a batch of CFP attestations."""

from __future__ import annotations

from pathlib import Path

import httpx
from pact import Pact, match
from pact_support import (
    JWS,
    TEST_TOKEN,
    data_headers,
    date,
    decimal,
    discovery,
    expect_headers,
    new_pact,
    publish,
)

from mocks.common import GatewayClient, StaticBearer, api
from mocks.common.auth import discover
from mocks.training_fund import PROFILE
from mocks.training_fund.scenario import mistyped

CRAFTSMAN = "880000054"
YEAR = 2025


def training_fund_pact() -> Pact:
    pact = new_pact("training-fund")
    discovery(pact, "The training fund")

    (
        pact.upon_receiving("The training fund reads the gateway's public keys")
        .with_request("GET", "/.well-known/jwks.json")
        .will_respond_with(200)
        .with_body(
            {
                "keys": match.each_like(
                    {
                        "kty": "EC",
                        "crv": "P-256",
                        "kid": match.str("att-2026-01"),
                        "x": match.regex(
                            "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", regex=r"^[\w-]+$"
                        ),
                        "y": match.regex(
                            "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0", regex=r"^[\w-]+$"
                        ),
                    }
                )
            },
            content_type="application/jwk-set+json",
        )
    )

    batch = (
        pact.upon_receiving("The training fund asks for the CFP attestations of its applicants")
        .given("a craftsman paid the CFP of a year", siren=CRAFTSMAN, year=YEAR)
        .with_request("POST", "/api/v1/cfp/attestations/batch")
    )
    expect_headers(batch, data_headers(PROFILE.purpose, PROFILE.recipient))
    batch.with_header(
        "Idempotency-Key",
        match.regex("6f1d2a9c-3b4e-4f5a-8c7d-9e0f1a2b3c4d", regex=r"^[0-9a-f-]{36}$"),
    )
    batch.with_body(
        {
            "items": [
                {"siren": CRAFTSMAN, "year": YEAR},
                {"siren": mistyped(CRAFTSMAN), "year": YEAR},
            ]
        },
        content_type="application/json",
    )
    batch.will_respond_with(200).with_body(
        {
            "items": [
                {
                    "index": 0,
                    "siren": CRAFTSMAN,
                    "year": YEAR,
                    "outcome": "found",
                    "code": None,
                    "attestation": {
                        "siren": CRAFTSMAN,
                        "year": YEAR,
                        "fund": match.str("FAFCEA"),
                        "amount_due": decimal("144.75"),
                        "amount_paid": decimal("144.75"),
                        "payment_date": date("2026-02-25"),
                        "fully_paid": match.bool(True),
                        "attestation_jws": match.regex(
                            "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiI4ODAwMDAwNTQifQ.c2ln", regex=JWS
                        ),
                    },
                },
                {
                    "index": 1,
                    "siren": None,
                    "year": YEAR,
                    "outcome": "invalid_identifier",
                    "code": "siren.bad_checksum",
                    "attestation": None,
                },
            ],
            "found": 1,
            "not_found": 0,
            "invalid": 1,
        },
        content_type="application/json",
    )
    return pact


def test_training_fund_expectations_are_the_committed_pact(tmp_path: Path) -> None:
    pact = training_fund_pact()
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
            keys = api.gateway_keys(client).value()
            batch = api.cfp_batch(client, [(CRAFTSMAN, YEAR), (mistyped(CRAFTSMAN), YEAR)]).value()
    assert keys.keys[0]["crv"] == "P-256"
    found, typo = batch.items
    assert found.attestation is not None
    assert found.attestation.fully_paid
    assert typo.outcome == "invalid_identifier"
    assert typo.code == "siren.bad_checksum"
    publish(pact, tmp_path)
