"""Fuzzing: every operation of the gateway's OpenAPI document, driven by schemathesis.

Invariant 5 (bad input gets a problem, never a 500) and the OpenAPI document's promises, tried
on generated requests rather than on the cases someone thought of. The gateway runs in process
with its lifespan (audit trail, connector services), on a store seeded with synthetic people
plus the people the document's examples name, with Pôle emploi played by its mock. Each data
request carries a valid token for the operation's scope, an allowed purpose and a valid
recipient, so generated paths, queries and bodies reach the connectors instead of stopping at
the guard; the other headers (``Case-Reference``, ``Idempotency-Key``) stay generated.

Checks: no 5xx; every status, content type, documented header and body as the document says.
Phases: the document's examples, schemathesis' coverage cases, then hypothesis-generated valid
and invalid requests, at most ``MAX_EXAMPLES`` per operation.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import select

from connectors.acre.pole_emploi import PoleEmploiClient
from gateway.app import create_app
from gateway.contracts import generate_document
from gateway.database import Database
from gateway.openapi import iter_operations
from gateway.reference.models import Account
from gateway.reference.seed import seed_reference_data
from gateway.settings import Settings
from mocks.pole_emploi_api import create_app as create_pole_emploi
from tests.factories import (
    create_account,
    create_cfp_payment,
    create_declaration,
    create_ingestion_run,
    create_status_event,
)
from tests.gateway.pipeline.pipeline_support import ASSERTION_TYPE, RECIPIENT, make_partner

MAX_EXAMPLES = 25
PURPOSE = "DEMO"
# The purpose the consent example names: with it habilitated, the example consent is recorded.
EXAMPLE_PURPOSE = "rsa-instruction"
SEEDED_PEOPLE = 40
# The people the OpenAPI examples name: with them in the store, the examples phase gets answers.
EXAMPLE_SIREN = "732829320"
EXAMPLE_NIR = "269054958815780"
POLE_EMPLOI_ID = "gateway-fuzz"
POLE_EMPLOI_SECRET = "gateway-fuzz-secret"

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@dataclass
class FuzzedGateway:
    """The running gateway and what a legitimate partner sends with each request."""

    app: Any
    tokens: dict[str, str]
    scopes: dict[tuple[str, str], str]

    def headers_for(self, method: str, path: str) -> dict[str, str]:
        scope = self.scopes.get((method.lower(), path))
        if scope is None:
            return {}
        return {
            "Authorization": f"Bearer {self.tokens[scope]}",
            "Purpose": PURPOSE,
            "Recipient": RECIPIENT,
        }


def _seed(db: Database) -> None:
    seed_reference_data(db.sync_engine, SEEDED_PEOPLE, seed=7)
    with db.sync_session.begin() as session:
        taken = session.scalar(
            select(Account.id).where(
                (Account.siren == EXAMPLE_SIREN) | (Account.nir == EXAMPLE_NIR)
            )
        )
        if taken is not None:
            return
        account = create_account(
            session, siren=EXAMPLE_SIREN, nir=EXAMPLE_NIR, affiliation_date=dt.date(2024, 3, 1)
        )
        create_status_event(session, account, "affiliation", dt.date(2024, 3, 1))
        for month in ("2026-01", "2026-02", "2026-03"):
            create_declaration(session, account, month, services_bic="1234.50")
        for year in (2024, 2025):
            create_cfp_payment(session, account, year=year)
        for dataset in ("accounts", "status-events", "turnover", "cfp"):
            create_ingestion_run(session, dataset, dt.datetime(2026, 4, 2, tzinfo=dt.UTC))


def _scopes(document: dict[str, Any]) -> dict[tuple[str, str], str]:
    scopes = {}
    for path, method, operation in iter_operations(document):
        for requirement in operation.get("security", []):
            for scope in requirement.get("oauth2", []):
                scopes[(method, path)] = scope
    return scopes


@pytest.fixture
def fuzzed_gateway(settings: Settings, db: Database) -> Iterator[FuzzedGateway]:
    # The fuzzer sends hundreds of requests a minute with one client.
    fuzz_settings = settings.model_copy(update={"rate_limit_per_minute": 1_000_000})
    _seed(db)
    partner = make_partner(db, fuzz_settings, "CAF", "caf")
    app: Any = create_app(fuzz_settings)  # an ASGI app, as schemathesis types it
    scopes = _scopes(app.openapi())
    for scope in sorted(set(scopes.values())):
        partner.grant(scope, purposes=[PURPOSE, EXAMPLE_PURPOSE])
    tokens: dict[str, str] = {}
    try:
        with asgi.get_client(app) as client:  # starts the app's lifespan, kept until shutdown
            for scope in sorted(set(scopes.values())):
                response = client.post(
                    f"{fuzz_settings.issuer}/oauth/token",
                    data={
                        "grant_type": "client_credentials",
                        "scope": scope,
                        "client_assertion_type": ASSERTION_TYPE,
                        "client_assertion": partner.assertion(),
                    },
                )
                assert response.status_code == 200, response.text
                tokens[scope] = response.json()["access_token"]
        # Pôle emploi is the mock, reached in process: ACRE answers come from it.
        app.state.connector_services["pole_emploi"] = PoleEmploiClient(
            "http://pole-emploi.mock",
            POLE_EMPLOI_ID,
            POLE_EMPLOI_SECRET,
            backoff_seconds=0.001,
            transport=httpx.ASGITransport(
                app=create_pole_emploi(client_id=POLE_EMPLOI_ID, client_secret=POLE_EMPLOI_SECRET)
            ),
        )
        yield FuzzedGateway(app=app, tokens=tokens, scopes=scopes)
    finally:
        asgi.shutdown_lifespans()


# The document as the code generates it; each test sends its cases to its own running gateway.
schema = schemathesis.openapi.from_dict(generate_document())


@schema.parametrize()
@hypothesis_settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    # One gateway per operation, shared by its generated cases: that is the point.
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_no_generated_request_gets_a_5xx_or_an_undocumented_answer(
    case: Any, fuzzed_gateway: FuzzedGateway
) -> None:
    case.headers = {**(case.headers or {}), **fuzzed_gateway.headers_for(case.method, case.path)}
    response = case.call(app=fuzzed_gateway.app)
    case.validate_response(response, checks=CHECKS)


def test_the_fuzzed_gateway_answers_a_legitimate_request(fuzzed_gateway: FuzzedGateway) -> None:
    """Without this, a broken token or purpose would leave the fuzzer knocking at the guard."""
    path = "/api/v2/turnover/{siren}"
    with asgi.get_client(fuzzed_gateway.app) as client:
        answered = client.get(
            f"/api/v2/turnover/{EXAMPLE_SIREN}", headers=fuzzed_gateway.headers_for("get", path)
        )
        refused = client.get(f"/api/v2/turnover/{EXAMPLE_SIREN}")
    assert answered.status_code == 200, answered.text
    assert answered.json()["siren"] == EXAMPLE_SIREN
    assert refused.status_code == 401
    assert set(fuzzed_gateway.tokens) >= {"turnover:read", "status:read", "cfp:read", "acre:read"}
