"""require_scope: every check on an access token, each proved by a token failing only it."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import time
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from joserfc.jwk import ECKey
from oauth_support import (
    JwtClient,
    Registry,
    bearer,
    compact,
    fetch_token,
    forge_token,
    protected_router,
)
from sqlalchemy import text, update

from gateway.app import create_app
from gateway.database import Database, utcnow
from gateway.keys.models import KeyUse
from gateway.keys.store import KeyStore
from gateway.oauth.resource import guard_of
from gateway.partners.models import OAuthClient
from gateway.settings import Settings


async def _call(
    http: httpx.AsyncClient, token: str, path: str = "/api/test/turnover"
) -> httpx.Response:
    return await http.get(path, headers=bearer(token))


def _assert_invalid_token(response: httpx.Response, code: str) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == code
    assert body["error"] == "invalid_token"
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="dlnuf-gateway"')
    assert 'error="invalid_token"' in challenge


async def test_a_valid_token_reaches_the_route(
    http: httpx.AsyncClient, db: Database, settings: Settings, caf: JwtClient
) -> None:
    response = await _call(http, forge_token(db, settings, client=caf))
    assert response.status_code == 200
    assert response.json()["client_id"] == caf.client_id


async def test_no_bearer_token_is_401_without_an_error_code(http: httpx.AsyncClient) -> None:
    for authorization in (None, "", "Bearer", "Bearer   ", "Basic dXNlcjpwYXNz", "Token abc"):
        headers = {} if authorization is None else {"Authorization": authorization}
        response = await http.get("/api/test/turnover", headers=headers)
        assert response.status_code == 401, authorization
        assert response.json()["code"] == "token.missing"
        assert response.headers["www-authenticate"] == 'Bearer realm="dlnuf-gateway"'


def _spoilers(now: int) -> dict[str, tuple[dict[str, Any], str]]:
    """Ways to spoil one thing of an otherwise valid token, with the code that must say so."""
    return {
        "expired": ({"claims": {"exp": now - 120}}, "token.expired"),
        "wrong-aud": ({"claims": {"aud": "https://other.example/api"}}, "token.audience_mismatch"),
        "wrong-iss": ({"claims": {"iss": "https://evil.example"}}, "token.issuer_mismatch"),
        "no-typ": ({"header": {"typ": None}}, "token.type_not_allowed"),
        "unknown-kid": ({"header": {"kid": "unknown-kid"}}, "token.unknown_key"),
        "no-aud": ({"drop": ("aud",)}, "token.audience_mismatch"),
        "aud-list-without-us": ({"claims": {"aud": ["a", "b"]}}, "token.audience_mismatch"),
        "typ-jwt": ({"header": {"typ": "JWT"}}, "token.type_not_allowed"),
        "no-kid": ({"header": {"kid": None}}, "token.unknown_key"),
        "nbf-future": ({"claims": {"nbf": now + 600}}, "token.not_yet_valid"),
        "iat-future": ({"claims": {"iat": now + 600}}, "token.claims_invalid"),
        "no-exp": ({"drop": ("exp",)}, "token.claims_invalid"),
        "exp-string": ({"claims": {"exp": "tomorrow"}}, "token.claims_invalid"),
        "exp-bool": ({"claims": {"exp": True}}, "token.claims_invalid"),
        "no-client-id": ({"drop": ("client_id",)}, "token.claims_invalid"),
        "no-jti": ({"drop": ("jti",)}, "token.claims_invalid"),
        "partner-as-text": ({"claims": {"partner_id": "1"}}, "token.claims_invalid"),
    }


@pytest.mark.parametrize("case", ["expired", "wrong-aud", "wrong-iss", "no-typ", "unknown-kid"])
async def test_a_token_failing_one_check_is_invalid_token(
    http: httpx.AsyncClient, db: Database, settings: Settings, caf: JwtClient, case: str
) -> None:
    spoil, code = _spoilers(int(time.time()))[case]
    _assert_invalid_token(await _call(http, forge_token(db, settings, client=caf, **spoil)), code)


async def test_every_other_spoiled_claim_or_header_is_invalid_token(
    http: httpx.AsyncClient, db: Database, settings: Settings, caf: JwtClient
) -> None:
    headline = {"expired", "wrong-aud", "wrong-iss", "no-typ", "unknown-kid"}
    for case, (spoil, code) in _spoilers(int(time.time())).items():
        if case in headline:
            continue
        response = await _call(http, forge_token(db, settings, client=caf, **spoil))
        assert response.json().get("code") == code, case
        _assert_invalid_token(response, code)


async def test_exp_and_nbf_tolerate_a_small_clock_skew(
    http: httpx.AsyncClient, db: Database, settings: Settings, caf: JwtClient
) -> None:
    now = int(time.time())
    skewed = forge_token(db, settings, client=caf, claims={"exp": now - 5, "nbf": now + 5})
    assert (await _call(http, skewed)).status_code == 200


async def test_a_token_signed_by_an_unknown_key_with_a_known_kid_is_refused(
    http: httpx.AsyncClient, db: Database, settings: Settings, caf: JwtClient
) -> None:
    stranger = ECKey.generate_key("P-256", private=True)
    token = forge_token(db, settings, client=caf, key=stranger)
    _assert_invalid_token(await _call(http, token), "token.signature_invalid")


async def test_alg_none_is_refused(
    http: httpx.AsyncClient, db: Database, settings: Settings, caf: JwtClient
) -> None:
    valid = forge_token(db, settings, client=caf)
    header = {**_segment(valid, 0), "alg": "none"}
    token = compact(header, _segment(valid, 1))
    _assert_invalid_token(await _call(http, token), "token.algorithm_not_allowed")


async def test_hs256_signed_with_the_public_key_is_refused(
    http: httpx.AsyncClient, db: Database, settings: Settings, caf: JwtClient
) -> None:
    valid = forge_token(db, settings, client=caf)
    jwks = (await http.get("/.well-known/jwks.json")).json()
    header = {**_segment(valid, 0), "alg": "HS256"}
    public = next(key for key in jwks["keys"] if key["kid"] == header["kid"])
    for secret in (json.dumps(public).encode(), ECKey.import_key(public).as_pem()):
        token = compact(header, _segment(valid, 1), hmac_secret=secret)
        _assert_invalid_token(await _call(http, token), "token.algorithm_not_allowed")


@pytest.mark.parametrize(
    ("name", "value", "code"),
    [
        # Any refused alg gets the same code, whatever its JSON type.
        pytest.param("alg", ["ES256"], "token.algorithm_not_allowed", id="alg-list"),
        pytest.param("alg", {"ES256": 1}, "token.algorithm_not_allowed", id="alg-object"),
        pytest.param("alg", 256, "token.algorithm_not_allowed", id="alg-number"),
        pytest.param("alg", None, "token.algorithm_not_allowed", id="alg-null"),
        pytest.param("typ", ["at+jwt"], "token.type_not_allowed", id="typ-list"),
        pytest.param("typ", {"at+jwt": 1}, "token.type_not_allowed", id="typ-object"),
        pytest.param("kid", ["k"], "token.unknown_key", id="kid-list"),
        pytest.param("kid", {"k": 1}, "token.unknown_key", id="kid-object"),
        # With the real kid, joserfc reaches "crit" and iterates it unchecked.
        pytest.param("crit", 1, "token.signature_invalid", id="crit-number"),
        pytest.param("crit", [1], "token.signature_invalid", id="crit-list-of-number"),
        pytest.param("crit", [["alg"]], "token.signature_invalid", id="crit-list-of-list"),
    ],
)
async def test_a_header_value_of_the_wrong_json_type_is_invalid_token_never_a_500(
    raw_http: httpx.AsyncClient,
    db: Database,
    settings: Settings,
    caf: JwtClient,
    name: str,
    value: object,
    code: str,
) -> None:
    """An unhashable alg once raised TypeError out of the verifier: a 500 for anyone, with
    no credentials, on every protected route."""
    valid = forge_token(db, settings, client=caf)
    header = {**_segment(valid, 0), name: value}
    token = compact(header, _segment(valid, 1), hmac_secret=b"not-the-key")
    _assert_invalid_token(await _call(raw_http, token), code)


async def test_garbage_is_a_malformed_token(http: httpx.AsyncClient) -> None:
    for garbage in ("abc", "a.b.c", "x" * 5000, "é.é.é", "...", "a.b"):
        header = f"Bearer {garbage}".encode("latin-1")
        response = await http.get("/api/test/turnover", headers={"Authorization": header})
        assert response.status_code == 401, garbage
        assert response.json()["code"] == "token.malformed", garbage


async def test_scope_escalation_at_a_route_is_403_insufficient_scope(
    http: httpx.AsyncClient, caf: JwtClient
) -> None:
    token = await fetch_token(http, caf, "turnover:read")
    response = await _call(http, token, "/api/test/status")
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "token.insufficient_scope"
    challenge = response.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge
    assert 'scope="status:read"' in challenge


async def test_a_scope_without_a_habilitation_in_force_is_refused_at_the_route(
    http: httpx.AsyncClient, db: Database, settings: Settings, caf: JwtClient
) -> None:
    # Only the gateway can sign such a token; what matters is that the route looks again.
    token = forge_token(db, settings, client=caf, scope="turnover:read status:read")
    response = await _call(http, token, "/api/test/status")
    assert response.status_code == 403
    assert response.json()["code"] == "habilitation.not_in_force"


async def test_a_habilitation_revoked_after_issuance_stops_the_token_at_once(
    http: httpx.AsyncClient, registry: Registry
) -> None:
    registry.partner("CNAM", "cnam")
    client = registry.jwt_client("CNAM")
    habilitation = registry.grant("turnover:read", "CNAM")
    token = await fetch_token(http, client, "turnover:read")
    assert (await _call(http, token)).status_code == 200
    registry.revoke_habilitation(habilitation)
    assert (await _call(http, token)).json()["code"] == "habilitation.not_in_force"


async def test_a_revoked_token_stops_working_at_once(
    http: httpx.AsyncClient, caf: JwtClient
) -> None:
    token = await fetch_token(http, caf, "turnover:read")
    assert (await _call(http, token)).status_code == 200  # its claims are now cached
    revoked = await http.post("/oauth/revoke", data=caf.form(token=token))
    assert revoked.status_code == 200
    _assert_invalid_token(await _call(http, token), "token.revoked")


async def test_a_disabled_client_stops_working_at_once(
    http: httpx.AsyncClient, caf: JwtClient, registry: Registry
) -> None:
    token = await fetch_token(http, caf, "turnover:read")
    assert (await _call(http, token)).status_code == 200
    registry.disable(caf.client_id)
    _assert_invalid_token(await _call(http, token), "client.disabled")


async def test_a_change_from_another_process_applies_within_the_refresh_interval(
    http: httpx.AsyncClient, db: Database, caf: JwtClient, app: FastAPI
) -> None:
    token = await fetch_token(http, caf, "turnover:read")
    assert (await _call(http, token)).status_code == 200
    # A plain SQL update, as the CLI in another process would make: no in-process signal.
    with db.sync_engine.begin() as connection:
        connection.execute(
            update(OAuthClient)
            .where(OAuthClient.client_id == caf.client_id)
            .values(disabled_at=utcnow())
        )
    interval = guard_of(app).settings.token_status_refresh_seconds
    await asyncio.sleep(interval + 0.05)
    _assert_invalid_token(await _call(http, token), "client.disabled")


async def test_with_a_zero_refresh_interval_other_processes_changes_apply_immediately(
    settings: Settings, db: Database, registry: Registry
) -> None:
    registry.partner("CAF", "caf")
    client = registry.jwt_client("CAF")
    registry.grant("turnover:read", "CAF")
    strict = create_app(settings.model_copy(update={"token_status_refresh_seconds": 0}))
    strict.include_router(protected_router)
    async with (
        strict.router.lifespan_context(strict),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=strict), base_url=settings.issuer
        ) as http,
    ):
        token = await fetch_token(http, client, "turnover:read")
        assert (await _call(http, token)).status_code == 200
        with db.sync_engine.begin() as connection:
            connection.execute(
                update(OAuthClient)
                .where(OAuthClient.client_id == client.client_id)
                .values(disabled_at=utcnow())
            )
        _assert_invalid_token(await _call(http, token), "client.disabled")


async def test_a_token_signature_is_checked_once_then_its_claims_are_cached(
    http: httpx.AsyncClient, caf: JwtClient, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = await fetch_token(http, caf, "turnover:read")
    guard = guard_of(app)
    calls = 0
    verify = guard.verifier.verify

    def counting(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        return verify(*args, **kwargs)

    monkeypatch.setattr(guard.verifier, "verify", counting)
    for _ in range(5):
        assert (await _call(http, token)).status_code == 200
    assert calls == 1


async def test_a_cached_token_still_expires(
    http: httpx.AsyncClient,
    db: Database,
    settings: Settings,
    caf: JwtClient,
    app: FastAPI,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token = forge_token(db, settings, client=caf)
    assert (await _call(http, token)).status_code == 200
    guard = guard_of(app)
    later = time.time() + 600 + settings.token_leeway_seconds + 1
    monkeypatch.setattr(guard, "clock", lambda: later)
    _assert_invalid_token(await _call(http, token), "token.expired")


async def test_a_key_created_by_another_process_is_found(
    http: httpx.AsyncClient, db: Database, settings: Settings, caf: JwtClient, app: FastAPI
) -> None:
    assert (await _call(http, forge_token(db, settings, client=caf))).status_code == 200
    with db.sync_session() as session, session.begin():
        KeyStore(settings).rotate(session, KeyUse.TOKEN)
    guard_of(app)._keys_loaded_at -= 2  # the last look is older than the reload guard
    response = await _call(http, forge_token(db, settings, client=caf))
    assert response.status_code == 200


def _segment(token: str, index: int) -> dict[str, Any]:
    part = token.split(".")[index]
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


async def test_a_token_key_planted_in_the_table_mints_no_token_and_is_not_published(
    http: httpx.AsyncClient, db: Database, settings: Settings, caf: JwtClient, app: FastAPI
) -> None:
    """Write access to the database must not become access to the API: a key row the master
    key did not make is neither trusted for tokens nor offered to partners."""
    assert (await _call(http, forge_token(db, settings, client=caf))).status_code == 200
    planted = ECKey.generate_key("P-256", private=True, auto_kid=False)
    kid = planted.thumbprint()
    now = utcnow()
    with db.sync_engine.begin() as conn:
        # Retired, as if rotated out while tokens it signed still live: the one current key
        # per use is guarded by a unique index, a retired one is still published.
        conn.execute(
            text(
                "INSERT INTO signing_key (kid, use, alg, public_jwk, private_key_encrypted, "
                "created_at, retired_at, last_signed_expiry_at) "
                "VALUES (:kid, 'token', 'ES256', :jwk, 'not-a-fernet-token', :t, :t, :later)"
            ),
            {
                "kid": kid,
                "jwk": json.dumps(dict(planted.as_dict(private=False))),
                "t": now,
                "later": now + dt.timedelta(hours=1),
            },
        )
    guard_of(app)._keys_loaded_at = float("-inf")  # as if the reload interval had passed
    token = forge_token(db, settings, client=caf, key=planted, header={"kid": kid})
    _assert_invalid_token(await _call(http, token), "token.unknown_key")
    jwks = (await http.get("/.well-known/jwks.json")).json()
    assert kid not in {key["kid"] for key in jwks["keys"]}
    # The deployment's own key still signs and verifies.
    assert (await _call(http, forge_token(db, settings, client=caf))).status_code == 200
