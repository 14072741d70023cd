"""POST /oauth/token: client credentials, private_key_jwt and client_secret_basic, scopes."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
import time
from typing import Any

import httpx
import jwt as pyjwt
import pytest
from authlib.integrations.httpx_client import AsyncOAuth2Client
from fastapi import FastAPI
from joserfc.jwk import ECKey
from jwcrypto import jwk as jwcrypto_jwk
from jwcrypto import jwt as jwcrypto_jwt
from oauth_support import (
    ASSERTION_TYPE,
    JwtClient,
    RefusalLog,
    Registry,
    ShortLivedPrivateKeyJWT,
    bearer,
    compact,
    fetch_token,
)
from sqlalchemy import select

from gateway.app import create_app
from gateway.database import Database, utcnow
from gateway.oauth.endpoints import CREDENTIAL_EXPIRES_HEADER
from gateway.oauth.server import CLIENT_AUTHENTICATION_FAILED, GatewayAuthorizationServer
from gateway.partners.models import OAuthClient
from gateway.settings import Settings


def _unverified(token: str) -> dict[str, object]:
    return dict(pyjwt.decode(token, options={"verify_signature": False}))


TODAY = dt.datetime.now(dt.UTC).date()


async def _token_request(
    http: httpx.AsyncClient, form: dict[str, str], **kwargs: object
) -> httpx.Response:
    return await http.post("/oauth/token", data=form, **kwargs)  # type: ignore[arg-type]


async def test_authlib_httpx_client_gets_a_token_with_private_key_jwt_and_calls_a_route(
    app: FastAPI, settings: Settings, caf: JwtClient
) -> None:
    token_endpoint = settings.issuer + "/oauth/token"
    async with AsyncOAuth2Client(
        client_id=caf.client_id,
        client_secret=caf.key,
        token_endpoint_auth_method="private_key_jwt",
        scope="turnover:read",
        transport=httpx.ASGITransport(app=app),
        base_url=settings.issuer,
    ) as partner:
        partner.register_client_auth_method(ShortLivedPrivateKeyJWT(token_endpoint, alg="ES256"))
        token = await partner.fetch_token(token_endpoint, grant_type="client_credentials")
        response = await partner.get("/api/test/turnover")

    assert token["token_type"] == "Bearer"
    assert token["scope"] == "turnover:read"
    assert response.status_code == 200
    assert response.json() == {"client_id": caf.client_id, "scopes": ["turnover:read"]}


async def test_access_token_verifies_with_pyjwt_and_jwcrypto_against_published_jwks(
    http: httpx.AsyncClient, settings: Settings, caf: JwtClient
) -> None:
    token = await fetch_token(http, caf, "turnover:read")
    jwks = (await http.get("/.well-known/jwks.json")).json()
    audience = settings.issuer + "/api"

    kid = pyjwt.get_unverified_header(token)["kid"]
    key = pyjwt.PyJWKSet.from_dict(jwks)[kid]
    claims = pyjwt.decode(
        token, key.key, algorithms=["ES256"], audience=audience, issuer=settings.issuer
    )
    assert claims["client_id"] == caf.client_id

    keyset = jwcrypto_jwk.JWKSet.from_json(json.dumps(jwks))
    checked = jwcrypto_jwt.JWT(
        jwt=token,
        key=keyset,
        algs=["ES256"],
        expected_type="JWS",
        check_claims={"iss": settings.issuer, "aud": audience, "exp": None},
    )
    assert json.loads(checked.claims)["sub"] == caf.client_id


async def test_access_token_is_an_rfc9068_jwt_living_ten_minutes_by_default(
    http: httpx.AsyncClient, settings: Settings, caf: JwtClient
) -> None:
    response = await _token_request(
        http, caf.form(grant_type="client_credentials", scope="turnover:read")
    )
    body = response.json()
    token = body["access_token"]
    header = pyjwt.get_unverified_header(token)
    claims = _unverified(token)

    assert response.headers["cache-control"] == "no-store"
    assert header["typ"] == "at+jwt"
    assert header["alg"] == "ES256"
    assert header["kid"]
    assert {"iss", "aud", "sub", "client_id", "scope", "jti", "iat", "exp"} <= claims.keys()
    assert claims["iss"] == settings.issuer
    assert claims["aud"] == settings.issuer + "/api"
    assert claims["sub"] == claims["client_id"] == caf.client_id
    # Authlib alone would make this ten days (864000 s) for client credentials.
    assert claims["exp"] - claims["iat"] == 600  # type: ignore[operator]
    assert body["expires_in"] == 600
    assert "refresh_token" not in body


async def test_token_lifetime_follows_the_setting(settings: Settings, registry: Registry) -> None:
    registry.partner("CAF", "caf")
    client = registry.jwt_client("CAF")
    registry.grant("turnover:read", "CAF")
    short = create_app(settings.model_copy(update={"access_token_lifetime_seconds": 120}))
    async with (
        short.router.lifespan_context(short),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=short), base_url=settings.issuer
        ) as http,
    ):
        token = await fetch_token(http, client, "turnover:read")
    claims = _unverified(token)
    assert claims["exp"] - claims["iat"] == 120  # type: ignore[operator]


async def test_client_secret_basic_gets_a_token_and_the_secret_is_stored_hashed(
    http: httpx.AsyncClient, registry: Registry, db: Database
) -> None:
    registry.partner("Pole emploi", "pole-emploi")
    client = registry.secret_client("Pole emploi")
    registry.grant("turnover:read", "Pole emploi")

    response = await _token_request(
        http, {"grant_type": "client_credentials", "scope": "turnover:read"}, auth=client.basic
    )

    assert response.status_code == 200, response.text
    with db.sync_session() as session:
        stored = session.scalar(
            select(OAuthClient.secret_hash).where(OAuthClient.client_id == client.client_id)
        )
    assert stored is not None
    assert stored.startswith("$argon2id$")
    assert client.secret not in stored


async def test_wrong_secret_is_invalid_client_401(
    http: httpx.AsyncClient, registry: Registry
) -> None:
    registry.partner("CNAM", "cnam")
    client = registry.secret_client("CNAM")
    registry.grant("status:read", "CNAM")
    response = await _token_request(
        http,
        {"grant_type": "client_credentials", "scope": "status:read"},
        auth=httpx.BasicAuth(client.client_id, client.secret + "x"),
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic")


async def test_a_client_cannot_switch_to_another_authentication_method(
    http: httpx.AsyncClient, caf: JwtClient
) -> None:
    response = await _token_request(
        http,
        {"grant_type": "client_credentials", "scope": "turnover:read"},
        auth=httpx.BasicAuth(caf.client_id, "guessed"),
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


async def test_oauth_errors_carry_rfc6749_and_problem_fields_as_json(
    http: httpx.AsyncClient, caf: JwtClient
) -> None:
    response = await _token_request(
        http, caf.form(grant_type="client_credentials", scope="cfp:read")
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["error"] == "invalid_scope"
    assert body["error_description"] == body["detail"]
    assert body["code"] == "oauth.invalid_scope"
    assert body["type"] == "urn:dlnuf:problem:oauth.invalid_scope"
    assert body["status"] == 400
    assert body["request_id"] == response.headers["x-request-id"]


@pytest.mark.parametrize(
    "scope",
    [
        "turnover:read status:read",  # one covered, one not: all refused
        "status:read",
        "admin",  # unknown
        'turnover:read "\\é',  # characters an OAuth error description may not carry
        "",  # missing: a partner says what it needs
    ],
)
async def test_scope_escalation_at_the_token_endpoint_is_invalid_scope(
    http: httpx.AsyncClient, caf: JwtClient, scope: str
) -> None:
    response = await _token_request(http, caf.form(grant_type="client_credentials", scope=scope))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"


async def test_several_covered_scopes_are_granted_together(
    http: httpx.AsyncClient, caf: JwtClient, registry: Registry
) -> None:
    registry.grant("status:read", "CAF")
    token = await fetch_token(http, caf, "status:read turnover:read")
    assert _unverified(token)["scope"] == "status:read turnover:read"


@pytest.mark.parametrize(
    ("valid_from", "valid_until"),
    [
        (dt.date(2020, 1, 1), TODAY - dt.timedelta(days=2)),  # expired
        (TODAY + dt.timedelta(days=2), None),  # not yet in force
    ],
)
async def test_a_habilitation_out_of_its_dates_grants_nothing(
    http: httpx.AsyncClient,
    registry: Registry,
    valid_from: dt.date,
    valid_until: dt.date | None,
) -> None:
    registry.partner("AGEFICE", "training-fund")
    client = registry.jwt_client("AGEFICE")
    registry.grant("cfp:read", "AGEFICE", valid_from=valid_from, valid_until=valid_until)
    response = await _token_request(
        http, client.form(grant_type="client_credentials", scope="cfp:read")
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"


async def test_a_revoked_habilitation_grants_nothing(
    http: httpx.AsyncClient, registry: Registry
) -> None:
    registry.partner("CAF", "caf")
    client = registry.jwt_client("CAF")
    habilitation = registry.grant("turnover:read", "CAF")
    registry.revoke_habilitation(habilitation)
    response = await _token_request(
        http, client.form(grant_type="client_credentials", scope="turnover:read")
    )
    assert response.json()["error"] == "invalid_scope"


async def test_a_replayed_client_assertion_is_refused(
    http: httpx.AsyncClient, caf: JwtClient, auth_log: RefusalLog
) -> None:
    form = caf.form(grant_type="client_credentials", scope="turnover:read")
    first = await _token_request(http, form)
    replay = await _token_request(http, form)
    assert first.status_code == 200
    assert replay.status_code == 401
    assert replay.json()["error"] == "invalid_client"
    # The caller gets the one answer of every authentication failure; the log says why.
    assert replay.json()["error_description"] == CLIENT_AUTHENTICATION_FAILED
    assert auth_log.reasons() == ["assertion_replayed"]


async def test_a_jti_is_spent_even_when_the_request_fails(
    http: httpx.AsyncClient, caf: JwtClient
) -> None:
    form = caf.form(grant_type="client_credentials", scope="cfp:read")
    assert (await _token_request(http, form)).json()["error"] == "invalid_scope"
    form["scope"] = "turnover:read"
    assert (await _token_request(http, form)).json()["error"] == "invalid_client"


def _assertion_form(assertion: str) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "scope": "turnover:read",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
    }


@pytest.mark.parametrize(
    ("spoil", "reason", "detail"),
    [
        pytest.param(
            {"aud": "https://elsewhere.example/oauth/token"},
            "assertion_audience_invalid",
            "aud",
            id="wrong-aud",
        ),
        pytest.param(
            {"aud": ["http://127.0.0.1:8000/oauth/token", "x"]},
            "assertion_audience_invalid",
            "aud",
            id="aud-list",
        ),
        pytest.param({"lifetime": 3600}, "assertion_lifetime_too_long", "too long", id="long-exp"),
        pytest.param({"lifetime": -120}, "assertion_invalid", "expired", id="expired"),
        pytest.param(
            {"key": "other"}, "assertion_signature_invalid", "does not verify", id="other-key"
        ),
        pytest.param(
            {"claims": {"iss": "someone-else"}},
            "assertion_invalid",
            "Issuer and Subject",
            id="iss-not-sub",
        ),
    ],
)
async def test_a_bad_client_assertion_is_invalid_client(
    http: httpx.AsyncClient,
    caf: JwtClient,
    auth_log: RefusalLog,
    spoil: dict[str, object],
    reason: str,
    detail: str,
) -> None:
    if spoil.get("key") == "other":
        spoil = {"key": ECKey.generate_key("P-256", private=True)}
    assertion = caf.assertion(**spoil)  # type: ignore[arg-type]
    response = await _token_request(http, _assertion_form(assertion))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    # The precise reason is for the operators' log, not for whoever sent the assertion.
    assert response.json()["error_description"] == CLIENT_AUTHENTICATION_FAILED
    [line] = auth_log.refusals
    assert line["reason"] == reason
    assert detail in line["detail"]


async def test_an_unsigned_or_hmac_client_assertion_is_refused(
    http: httpx.AsyncClient, caf: JwtClient
) -> None:
    claims = _unverified(caf.assertion())
    public_jwk = json.dumps(caf.key.as_dict(private=False)).encode()
    unsigned = compact({"alg": "none"}, claims)
    hmac = compact({"alg": "HS256"}, claims, hmac_secret=public_jwk)
    for assertion in (unsigned, hmac):
        response = await _token_request(http, _assertion_form(assertion))
        assert response.status_code == 401, assertion
        assert response.json()["error"] == "invalid_client"


async def test_a_disabled_client_gets_no_token(
    http: httpx.AsyncClient, caf: JwtClient, registry: Registry, auth_log: RefusalLog
) -> None:
    registry.disable(caf.client_id)
    response = await _token_request(
        http, caf.form(grant_type="client_credentials", scope="turnover:read")
    )
    assert response.status_code == 401
    assert response.json()["error_description"] == CLIENT_AUTHENTICATION_FAILED
    assert auth_log.reasons() == ["client_disabled"]


async def test_an_expired_credential_gets_no_token(
    http: httpx.AsyncClient, registry: Registry, auth_log: RefusalLog
) -> None:
    registry.partner("CAF", "caf")
    client = registry.jwt_client("CAF")
    registry.grant("turnover:read", "CAF")
    registry.expire(client.client_id)
    response = await _token_request(
        http, client.form(grant_type="client_credentials", scope="turnover:read")
    )
    assert response.status_code == 401
    assert response.json()["error_description"] == CLIENT_AUTHENTICATION_FAILED
    assert auth_log.reasons() == ["credential_expired"]


async def test_a_credential_expiring_within_30_days_is_announced_in_a_header(
    http: httpx.AsyncClient, registry: Registry
) -> None:
    registry.partner("CAF", "caf")
    expires_at = utcnow().replace(microsecond=0) + dt.timedelta(days=20)
    soon = registry.jwt_client("CAF", expires_at=expires_at)
    later = registry.jwt_client("CAF", expires_at=utcnow() + dt.timedelta(days=60))
    registry.grant("turnover:read", "CAF")

    warned = await _token_request(
        http, soon.form(grant_type="client_credentials", scope="turnover:read")
    )
    quiet = await _token_request(
        http, later.form(grant_type="client_credentials", scope="turnover:read")
    )

    assert warned.status_code == quiet.status_code == 200
    announced = dt.datetime.fromisoformat(warned.headers[CREDENTIAL_EXPIRES_HEADER])
    assert announced == expires_at
    assert CREDENTIAL_EXPIRES_HEADER.lower() not in quiet.headers


async def test_malformed_token_requests_are_invalid_request(http: httpx.AsyncClient) -> None:
    form = {"content-type": "application/x-www-form-urlencoded"}
    for content, headers in (
        ("grant_type=client_credentials&scope=turnover:read&scope=cfp:read", form),
        ('{"grant_type": "client_credentials"}', {"content-type": "application/json"}),
        ("grant_type=client_credentials&pad=" + "x" * 20_000, form),
        ("grant_type=client_credentials&" + "&".join(f"p{i}=1" for i in range(40)), form),
    ):
        response = await http.post("/oauth/token", content=content, headers=headers)
        assert response.status_code == 400, content[:60]
        assert response.json()["error"] == "invalid_request"


async def test_only_client_credentials_is_supported(
    http: httpx.AsyncClient, caf: JwtClient
) -> None:
    response = await _token_request(
        http, caf.form(grant_type="password", username="a", password="b")
    )
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


async def test_a_token_is_used_with_the_bearer_scheme_only(
    http: httpx.AsyncClient, caf: JwtClient
) -> None:
    token = await fetch_token(http, caf, "turnover:read")
    assert (await http.get("/api/test/turnover", headers=bearer(token))).status_code == 200
    in_query = await http.get("/api/test/turnover", params={"access_token": token})
    assert in_query.status_code == 401


async def test_hostile_token_requests_get_oauth_errors_never_a_500(
    http: httpx.AsyncClient, caf: JwtClient
) -> None:
    nasty = ['"', "\\", "é", "\x00", "a" * 5000, "{}", "[]", "null", "..", "%ff"]
    for value in nasty:
        for form in (
            {"grant_type": value},
            {"grant_type": "client_credentials", "client_id": value, "client_secret": value},
            {"grant_type": "client_credentials", "scope": value, **caf.form()},
            {
                "grant_type": "client_credentials",
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": value,
            },
            {"grant_type": "client_credentials", "client_assertion_type": value},
        ):
            response = await _token_request(http, form)
            assert response.status_code in {400, 401}, (value, form, response.text)
            assert response.json()["error"]
        basic = await _token_request(
            http,
            {"grant_type": "client_credentials"},
            auth=httpx.BasicAuth(value, value),
        )
        assert basic.status_code in {400, 401}, value


async def test_hostile_assertion_claims_get_invalid_client_never_a_500(
    http: httpx.AsyncClient, caf: JwtClient
) -> None:
    for claims in ({"jti": "\x00"}, {"jti": "é" * 3}, {"sub": "\x00", "iss": "\x00"}):
        response = await _token_request(http, _assertion_form(caf.assertion(claims=claims)))
        assert response.status_code == 401, (claims, response.text)
        assert response.json()["error"] == "invalid_client"


def _capped_app(settings: Settings, **caps: float) -> FastAPI:
    return create_app(settings.model_copy(update=caps))


async def test_token_requests_are_worked_on_a_few_at_a_time(
    settings: Settings, caf: JwtClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client secret's check is an Argon2id hash: a flood of token requests must not get
    every core, nor every thread the data routes share."""
    inside = 0
    most = 0
    lock = threading.Lock()
    respond = GatewayAuthorizationServer.respond

    def counting(server: GatewayAuthorizationServer, endpoint: str, request: Any) -> Any:
        nonlocal inside, most
        with lock:
            inside += 1
            most = max(most, inside)
        try:
            time.sleep(0.02)
            return respond(server, endpoint, request)
        finally:
            with lock:
                inside -= 1

    monkeypatch.setattr(GatewayAuthorizationServer, "respond", counting)
    capped = _capped_app(settings, oauth_max_concurrent_requests=2)
    async with (
        capped.router.lifespan_context(capped),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=capped), base_url=settings.issuer
        ) as http,
    ):
        tokens = await asyncio.gather(*(fetch_token(http, caf, "turnover:read") for _ in range(6)))
    assert len(set(tokens)) == 6
    assert most == 2


async def test_a_token_request_that_waits_too_long_for_its_turn_gets_503(
    settings: Settings, caf: JwtClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    respond = GatewayAuthorizationServer.respond

    def held(server: GatewayAuthorizationServer, endpoint: str, request: Any) -> Any:
        release.wait(5)
        return respond(server, endpoint, request)

    monkeypatch.setattr(GatewayAuthorizationServer, "respond", held)
    capped = _capped_app(settings, oauth_max_concurrent_requests=1, oauth_queue_seconds=0.05)
    async with (
        capped.router.lifespan_context(capped),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=capped), base_url=settings.issuer
        ) as http,
    ):
        first = asyncio.create_task(fetch_token(http, caf, "turnover:read"))
        await asyncio.sleep(0.2)  # the first request holds the only turn
        try:
            refused = await _token_request(
                http, caf.form(grant_type="client_credentials", scope="turnover:read")
            )
        finally:
            release.set()
        assert await first
    assert refused.status_code == 503
    assert refused.headers["retry-after"] == "1"
    body = refused.json()
    assert body["error"] == "temporarily_unavailable"
    assert body["code"] == "oauth.temporarily_unavailable"
    assert body["status"] == 503
