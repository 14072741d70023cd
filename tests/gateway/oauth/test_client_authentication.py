"""Client authentication at /oauth/token, /oauth/revoke and /oauth/introspect.

Every failure gets one answer (``invalid_client``, 401, one description), whatever the cause:
otherwise an outsider learns which client_ids exist and whether they are disabled or expired.
Hostile credentials get that answer too, never a 500 (invariant 5).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import argon2
import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet
from oauth_support import ASSERTION_TYPE, JwtClient, RefusalLog, Registry, SecretClient
from sqlalchemy import select

from gateway.database import Database, utcnow
from gateway.oauth import server as oauth_server
from gateway.oauth.server import (
    CLIENT_AUTHENTICATION_FAILED,
    ClientRefusedError,
    GatewayAuthorizationServer,
    PrivateKeyJwt,
    RegisteredClient,
)
from gateway.partners import service as partners_service
from gateway.partners.models import OAuthClient
from gateway.partners.service import verify_client_secret
from gateway.settings import Settings

PATHS = ["/oauth/token", "/oauth/revoke", "/oauth/introspect"]
# Enough for any of the three endpoints to reach client authentication.
FORM = {"grant_type": "client_credentials", "scope": "status:read", "token": "x"}
UNKNOWN_CLIENT_ID = "gw-000000000000000000000000"


@dataclass(frozen=True)
class Cast:
    """Clients in every state an outsider might want to learn about."""

    secret: SecretClient
    disabled_secret: SecretClient
    expired_secret: SecretClient
    jwt: JwtClient
    disabled_jwt: JwtClient
    expired_jwt: JwtClient


@pytest.fixture
def cast(registry: Registry) -> Cast:
    registry.partner("CNAM", "cnam")
    registry.grant("status:read", "CNAM")
    cast = Cast(
        secret=registry.secret_client("CNAM"),
        disabled_secret=registry.secret_client("CNAM"),
        expired_secret=registry.secret_client("CNAM"),
        jwt=registry.jwt_client("CNAM"),
        disabled_jwt=registry.jwt_client("CNAM"),
        expired_jwt=registry.jwt_client("CNAM"),
    )
    registry.disable(cast.disabled_secret.client_id)
    registry.disable(cast.disabled_jwt.client_id)
    registry.expire(cast.expired_secret.client_id)
    registry.expire(cast.expired_jwt.client_id)
    return cast


def _basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


def _assertion_for(client_id: str, key: ECKey, token_endpoint: str) -> dict[str, str]:
    """A well-formed assertion claiming to be ``client_id``, signed with ``key``."""
    now = int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": token_endpoint,
        "exp": now + 60,
        "jti": f"jti-{time.monotonic_ns()}",
    }
    assertion = jwt.encode({"alg": "ES256"}, claims, key, algorithms=["ES256"])
    return {"client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion}


# label -> (credentials as (extra form fields, headers), reason the log must give)
Credentials = tuple[dict[str, str], dict[str, str]]
_CASES: dict[str, tuple[Callable[[Cast], Credentials], str]] = {
    "unknown-client-basic": (
        lambda c: ({}, _basic(UNKNOWN_CLIENT_ID, "wrong-secret")),
        "client_unknown",
    ),
    "wrong-secret": (lambda c: ({}, _basic(c.secret.client_id, "wrong-secret")), "secret_mismatch"),
    "disabled-wrong-secret": (
        lambda c: ({}, _basic(c.disabled_secret.client_id, "wrong-secret")),
        "secret_mismatch",
    ),
    "disabled-right-secret": (
        lambda c: ({}, _basic(c.disabled_secret.client_id, c.disabled_secret.secret)),
        "client_disabled",
    ),
    "expired-right-secret": (
        lambda c: ({}, _basic(c.expired_secret.client_id, c.expired_secret.secret)),
        "credential_expired",
    ),
    "jwt-client-with-basic": (
        lambda c: ({}, _basic(c.jwt.client_id, "guessed")),
        "auth_method_not_registered",
    ),
    "secret-client-with-assertion": (
        lambda c: (_assertion_for(c.secret.client_id, c.jwt.key, c.jwt.token_endpoint), {}),
        "auth_method_not_registered",
    ),
    "unknown-client-assertion": (
        lambda c: (_assertion_for(UNKNOWN_CLIENT_ID, c.jwt.key, c.jwt.token_endpoint), {}),
        "client_unknown",
    ),
    "assertion-wrong-key": (
        lambda c: (
            _assertion_for(
                c.jwt.client_id, ECKey.generate_key("P-256", private=True), c.jwt.token_endpoint
            ),
            {},
        ),
        "assertion_signature_invalid",
    ),
    "disabled-jwt-valid-assertion": (lambda c: (c.disabled_jwt.form(), {}), "client_disabled"),
    "expired-jwt-valid-assertion": (lambda c: (c.expired_jwt.form(), {}), "credential_expired"),
    "no-credentials": (lambda c: ({}, {}), "no_credentials"),
    "malformed-basic": (
        lambda c: ({}, {"Authorization": "Basic bm8tY29sb24="}),
        "basic_credentials_malformed",
    ),
}


def _answer(response: httpx.Response) -> tuple[Any, ...]:
    body = response.json()
    return (
        response.status_code,
        body.get("error"),
        body.get("error_description"),
        body.get("detail"),
        body.get("code"),
        body.get("type"),
        body.get("title"),
        response.headers.get("www-authenticate"),
    )


_UNIFORM = (
    401,
    "invalid_client",
    CLIENT_AUTHENTICATION_FAILED,
    CLIENT_AUTHENTICATION_FAILED,
    "oauth.invalid_client",
    "urn:dlnuf:problem:oauth.invalid_client",
    "Unauthorized",
    # RFC 6749 section 5.2: a 401 names the scheme; it must not carry the reason either.
    f'Basic error="invalid_client", error_description="{CLIENT_AUTHENTICATION_FAILED}"',
)


@pytest.mark.parametrize("path", PATHS)
async def test_every_client_authentication_failure_gets_the_same_answer(
    raw_http: httpx.AsyncClient, cast: Cast, auth_log: RefusalLog, path: str
) -> None:
    """Were the answers to differ, an outsider would learn whether a client_id exists, how it
    authenticates, and whether it is disabled or its credential expired."""
    answers: dict[str, tuple[Any, ...]] = {}
    for label, (credentials, _) in _CASES.items():
        form, headers = credentials(cast)
        response = await raw_http.post(path, data={**FORM, **form}, headers=headers)
        answers[label] = _answer(response)
    assert answers == dict.fromkeys(_CASES, _UNIFORM)
    # The operators still learn the precise cause of each refusal, from the log.
    assert auth_log.reasons() == [reason for _, reason in _CASES.values()]


async def test_each_refusal_logs_its_reason_in_one_line_without_the_credential(
    raw_http: httpx.AsyncClient, cast: Cast, auth_log: RefusalLog
) -> None:
    """A secret or an assertion in the log would let anyone who reads it act as the client."""
    sent: list[str] = []
    for label, (credentials, reason) in _CASES.items():
        form, headers = credentials(cast)
        sent += [value for value in form.values() if len(value) > 40]
        await raw_http.post("/oauth/token", data={**FORM, **form}, headers=headers)
        lines = auth_log.refusals
        assert len(lines) == 1, (label, lines)
        assert lines[0]["reason"] == reason, label
        assert lines[0]["endpoint"] == "token"
        auth_log.clear()
    logged = auth_log.everything
    for secret in (cast.disabled_secret.secret, cast.expired_secret.secret, *sent):
        assert secret not in logged


async def test_the_log_names_the_claimed_client_only_when_well_formed(
    raw_http: httpx.AsyncClient, cast: Cast, auth_log: RefusalLog
) -> None:
    await raw_http.post("/oauth/token", data=FORM, headers=_basic(cast.secret.client_id, "no"))
    await raw_http.post("/oauth/token", data=FORM, headers=_basic("a\nforged line", "no"))
    assert [line["client_id"] for line in auth_log.refusals] == [cast.secret.client_id, None]


# -- F4: timing --------------------------------------------------------------------------


async def test_a_basic_credential_costs_one_argon2id_verification_whatever_the_client(
    raw_http: httpx.AsyncClient,
    cast: Cast,
    db: Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without the decoy, an unknown client or one registered for private_key_jwt would be
    refused without the Argon2id work a wrong secret costs: timing would tell them apart.
    Counted, not timed: the parameters in each hash verified fix the work done."""
    with db.sync_session() as session:
        stored = session.scalar(
            select(OAuthClient.secret_hash).where(OAuthClient.client_id == cast.secret.client_id)
        )
    assert stored is not None
    real = argon2.extract_parameters(stored)
    verified: list[argon2.Parameters | None] = []
    verify = verify_client_secret

    def counting(client: OAuthClient, presented: str) -> bool:
        verified.append(
            argon2.extract_parameters(client.secret_hash) if client.secret_hash else None
        )
        return verify(client, presented)

    monkeypatch.setattr(oauth_server, "verify_client_secret", counting)
    monkeypatch.setattr(partners_service, "verify_client_secret", counting)
    for label in (
        "unknown-client-basic",
        "jwt-client-with-basic",
        "wrong-secret",
        "disabled-wrong-secret",
        "expired-right-secret",
    ):
        credentials, _ = _CASES[label]
        _, headers = credentials(cast)
        verified.clear()
        response = await raw_http.post("/oauth/token", data=FORM, headers=headers)
        assert response.status_code == 401, label
        assert verified == [real], label


# -- F1: an assertion naming a client that does not use private_key_jwt -------------------


@pytest.mark.parametrize("path", PATHS)
async def test_an_assertion_naming_a_secret_client_is_invalid_client_never_a_500(
    raw_http: httpx.AsyncClient, cast: Cast, auth_log: RefusalLog, path: str
) -> None:
    """Its client_id is all an outsider needs, and it once raised TypeError (a 500) before
    the signature was even looked at."""
    form = _assertion_for(cast.secret.client_id, cast.jwt.key, cast.jwt.token_endpoint)
    response = await raw_http.post(path, data={**FORM, **form})
    assert _answer(response) == _UNIFORM, response.text[:200]
    assert auth_log.reasons() == ["auth_method_not_registered"]


def test_resolve_client_public_key_accepts_both_forms_authlib_calls(
    settings: Settings, db: Database
) -> None:
    """Authlib calls it with (client), then with (client, headers) if that raises TypeError."""
    resolver = PrivateKeyJwt(GatewayAuthorizationServer(settings, db))
    key = ECKey.generate_key("P-256", private=True)
    expires = utcnow()
    jwt_client = RegisteredClient(
        OAuthClient(
            client_id="gw-jwt",
            partner_id=1,
            auth_method="private_key_jwt",
            jwks={"keys": [key.as_dict(private=False)]},
            credential_expires_at=expires,
        )
    )
    secret_client = RegisteredClient(
        OAuthClient(
            client_id="gw-secret",
            partner_id=1,
            auth_method="client_secret_basic",
            secret_hash="$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA",
            credential_expires_at=expires,
        )
    )
    calls: list[Callable[[RegisteredClient], KeySet]] = [
        lambda client: resolver.resolve_client_public_key(client),
        lambda client: resolver.resolve_client_public_key(client, {"alg": "ES256"}),
    ]
    for call in calls:
        assert isinstance(call(jwt_client), KeySet)
        with pytest.raises(ClientRefusedError) as refused:
            call(secret_client)
        assert refused.value.reason == "auth_method_not_registered"


# -- F2: Basic credentials that are not base64 of UTF-8 "client_id:secret" ---------------

_MALFORMED_BASIC: dict[str, bytes] = {
    "not-utf8": b"Basic " + base64.b64encode(b"\xff\xfe:\xff"),
    "not-base64": b"Basic abc$def==",
    "bad-padding": b"Basic " + base64.b64encode(b"gw-x:secret").rstrip(b"="),
    "no-colon": b"Basic " + base64.b64encode(UNKNOWN_CLIENT_ID.encode()),
    "no-secret": b"Basic " + base64.b64encode(UNKNOWN_CLIENT_ID.encode() + b":"),
    "bad-percent-escape": b"Basic " + base64.b64encode(b"%ff:%fe"),
    "non-ascii-header": b"Basic \xe9\xe9\xe9\xe9",
    "scheme-only": b"Basic",
}


@pytest.mark.parametrize("case", _MALFORMED_BASIC)
@pytest.mark.parametrize("path", PATHS)
async def test_malformed_basic_credentials_are_invalid_client_never_a_500(
    raw_http: httpx.AsyncClient, auth_log: RefusalLog, path: str, case: str
) -> None:
    """Bytes that are not UTF-8 once made Authlib's decoder raise UnicodeDecodeError: a 500
    for anyone, with no credentials at all."""
    response = await raw_http.post(
        path, data=FORM, headers={b"Authorization": _MALFORMED_BASIC[case]}
    )
    assert _answer(response) == _UNIFORM, response.text[:200]
    assert auth_log.reasons() == ["basic_credentials_malformed"]


async def test_percent_encoded_basic_credentials_still_authenticate(
    raw_http: httpx.AsyncClient, cast: Cast
) -> None:
    """RFC 6749 section 2.3.1 form-encodes both parts; the strict parser must still decode
    them, as Authlib's did."""
    encoded = "".join(f"%{byte:02X}" for byte in cast.secret.client_id.encode())
    response = await raw_http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "status:read"},
        headers=_basic(encoded, cast.secret.secret),
    )
    assert response.status_code == 200, response.text
