"""The partners' OAuth and HTTP client, against a fake gateway (httpx.MockTransport)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest
from factories import ManualClock
from joserfc import jwt
from joserfc.jwk import ECKey

from mocks.common import GatewayClient, PrivateKeyJwt, TokenError, load_private_key
from mocks.common.auth import ASSERTION_LIFETIME_SECONDS, ASSERTION_TYPE
from mocks.common.models import FeedPage, Turnover

TOKEN_ENDPOINT = "https://gateway.test/oauth/token"
Handler = Callable[[httpx.Request], httpx.Response]


class FakeGateway:
    """Issues numbered tokens; data requests answer 200 unless the token is on ``rejected``."""

    def __init__(self) -> None:
        self.assertions: list[str] = []
        self.forms: list[dict[str, list[str]]] = []
        self.issued = 0
        self.rejected: set[str] = set()
        self.data_headers: list[httpx.Headers] = []
        self.token_answer: httpx.Response | None = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            form = parse_qs(request.content.decode())
            self.forms.append(form)
            self.assertions.append(form["client_assertion"][0])
            if self.token_answer is not None:
                return self.token_answer
            self.issued += 1
            return httpx.Response(
                200,
                json={
                    "access_token": f"token-{self.issued}",
                    "token_type": "Bearer",
                    "expires_in": 600,
                },
            )
        self.data_headers.append(request.headers)
        if request.headers.get("Authorization", "").removeprefix("Bearer ") in self.rejected:
            return httpx.Response(401, json={"status": 401, "code": "token.invalid"})
        return httpx.Response(200, json={"events": [], "next_cursor": "abc"})


def _client(
    gateway: FakeGateway, key: ECKey, clock: ManualClock
) -> tuple[GatewayClient, PrivateKeyJwt]:
    auth = PrivateKeyJwt(
        client_id="gw-caf",
        key=key,
        token_endpoint=TOKEN_ENDPOINT,
        scopes=["status:feed"],
        clock=clock,
    )
    client = GatewayClient(
        "https://gateway.test",
        auth=auth,
        purpose="prestations-familiales",
        recipient="19750011900023",
        transport=httpx.MockTransport(gateway),
    )
    return client, auth


@pytest.fixture
def key() -> ECKey:
    return ECKey.generate_key("P-256", private=True, auto_kid=True)


def test_the_assertion_is_what_rfc_7523_asks_and_short_lived(key: ECKey) -> None:
    gateway, clock = FakeGateway(), ManualClock(1_800_000_000.0)
    client, _ = _client(gateway, key, clock)

    client.call("GET", "/api/v1/status/events", FeedPage)

    form = gateway.forms[0]
    assert form["grant_type"] == ["client_credentials"]
    assert form["scope"] == ["status:feed"]
    assert form["client_assertion_type"] == [ASSERTION_TYPE]
    token = jwt.decode(gateway.assertions[0], key, algorithms=["ES256"])
    claims = token.claims
    assert claims["iss"] == claims["sub"] == "gw-caf"
    assert claims["aud"] == TOKEN_ENDPOINT
    assert claims["exp"] - claims["iat"] == ASSERTION_LIFETIME_SECONDS
    assert token.header["kid"] == key.kid


def test_a_token_is_reused_until_it_nearly_expires(key: ECKey) -> None:
    gateway, clock = FakeGateway(), ManualClock(1_800_000_000.0)
    client, auth = _client(gateway, key, clock)

    for _ in range(3):
        client.call("GET", "/api/v1/status/events", FeedPage)
    clock.now += 600 - 29  # within the margin before expiry
    client.call("GET", "/api/v1/status/events", FeedPage)

    assert auth.tokens_fetched == 2
    assert len(set(gateway.assertions)) == 2, "an assertion was replayed"


def test_a_rejected_token_is_replaced_once_and_the_request_retried(key: ECKey) -> None:
    gateway, clock = FakeGateway(), ManualClock(1_800_000_000.0)
    client, auth = _client(gateway, key, clock)
    client.call("GET", "/api/v1/status/events", FeedPage)
    gateway.rejected.add("token-1")

    answer = client.call("GET", "/api/v1/status/events", FeedPage)

    assert answer.ok
    assert auth.tokens_fetched == 2
    assert gateway.data_headers[-1]["Authorization"] == "Bearer token-2"


def test_a_refused_token_request_raises_with_the_oauth_error(key: ECKey) -> None:
    gateway, clock = FakeGateway(), ManualClock(1_800_000_000.0)
    gateway.token_answer = httpx.Response(
        400, json={"error": "invalid_scope", "error_description": "No habilitation in force."}
    )
    client, _ = _client(gateway, key, clock)

    with pytest.raises(TokenError) as raised:
        client.call("GET", "/api/v1/status/events", FeedPage)

    assert raised.value.error == "invalid_scope"
    assert raised.value.status == 400


def test_every_data_request_states_purpose_recipient_and_case(key: ECKey) -> None:
    gateway, clock = FakeGateway(), ManualClock(1_800_000_000.0)
    client, _ = _client(gateway, key, clock)

    client.call("GET", "/x", FeedPage, case_reference="CAF-1")
    client.call("GET", "/x", FeedPage, purpose="other-purpose")

    first, second = gateway.data_headers
    assert first["Purpose"] == "prestations-familiales"
    assert first["Recipient"] == "19750011900023"
    assert first["Case-Reference"] == "CAF-1"
    assert second["Purpose"] == "other-purpose"


def _answer(response: httpx.Response) -> GatewayClient:
    return GatewayClient(
        "https://gateway.test",
        auth=None,
        purpose="p",
        recipient="19750011900023",
        transport=httpx.MockTransport(lambda request: response),
    )


def test_a_problem_document_comes_back_with_its_stable_code() -> None:
    client = _answer(
        httpx.Response(
            403,
            json={"status": 403, "title": "Forbidden", "code": "consent.missing", "detail": "No."},
            headers={"Content-Type": "application/problem+json"},
        )
    )

    answer = client.call("GET", "/x", Turnover)

    assert not answer.ok
    assert answer.problem is not None
    assert answer.problem.code == "consent.missing"
    with pytest.raises(RuntimeError, match=r"consent\.missing"):
        answer.value()


def test_an_answer_lacking_a_field_the_partner_relies_on_is_a_failure() -> None:
    client = _answer(httpx.Response(200, json={"siren": "732829320", "periods": []}))

    answer = client.call("GET", "/x", Turnover)

    assert answer.status == 200
    assert answer.body is None
    assert answer.problem is not None
    assert answer.problem.code == "answer.unreadable"


def test_anonymous_calls_send_no_token_and_no_purpose(key: ECKey) -> None:
    gateway, clock = FakeGateway(), ManualClock(1_800_000_000.0)
    client, auth = _client(gateway, key, clock)

    client.call("GET", "/.well-known/jwks.json", FeedPage, data_request=False, anonymous=True)

    assert auth.tokens_fetched == 0
    headers = gateway.data_headers[0]
    assert "Authorization" not in headers
    assert "Purpose" not in headers


def test_a_public_key_file_is_refused_as_a_client_key(tmp_path: Path, key: ECKey) -> None:
    public = tmp_path / "public.jwk"
    public.write_text(json.dumps(key.as_dict(private=False)))
    private = tmp_path / "private.jwk"
    private.write_text(json.dumps(key.as_dict(private=True)))

    with pytest.raises(ValueError, match="private"):
        load_private_key(public)
    assert load_private_key(private).kid == key.kid
