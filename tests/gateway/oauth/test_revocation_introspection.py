"""RFC 7009 revocation and RFC 7662 introspection, for a partner's own tokens only."""

from __future__ import annotations

import httpx
from oauth_support import JwtClient, Registry, bearer, fetch_token, forge_token

from gateway.database import Database
from gateway.settings import Settings


async def test_introspection_describes_an_active_token(
    http: httpx.AsyncClient, caf: JwtClient, settings: Settings
) -> None:
    token = await fetch_token(http, caf, "turnover:read")
    response = await http.post("/oauth/introspect", data=caf.form(token=token))
    assert response.status_code == 200
    body = response.json()
    assert body["active"] is True
    assert body["client_id"] == caf.client_id
    assert body["scope"] == "turnover:read"
    assert body["iss"] == settings.issuer
    assert body["exp"] - body["iat"] == 600


async def test_a_revoked_token_is_inactive_and_refused(
    http: httpx.AsyncClient, caf: JwtClient
) -> None:
    token = await fetch_token(http, caf, "turnover:read")
    revoked = await http.post(
        "/oauth/revoke", data=caf.form(token=token, token_type_hint="access_token")
    )
    assert revoked.status_code == 200
    introspected = await http.post("/oauth/introspect", data=caf.form(token=token))
    assert introspected.json() == {"active": False}
    response = await http.get("/api/test/turnover", headers=bearer(token))
    assert response.json()["code"] == "token.revoked"


async def test_revoking_twice_or_revoking_garbage_is_still_200(
    http: httpx.AsyncClient, caf: JwtClient
) -> None:
    token = await fetch_token(http, caf, "turnover:read")
    for value in (token, token, "not-a-token"):
        response = await http.post("/oauth/revoke", data=caf.form(token=value))
        assert response.status_code == 200


async def test_a_partner_can_neither_introspect_nor_revoke_another_partners_token(
    http: httpx.AsyncClient, caf: JwtClient, registry: Registry
) -> None:
    victim_token = await fetch_token(http, caf, "turnover:read")
    registry.partner("CNAM", "cnam")
    intruder = registry.jwt_client("CNAM")

    introspected = await http.post("/oauth/introspect", data=intruder.form(token=victim_token))
    revoked = await http.post("/oauth/revoke", data=intruder.form(token=victim_token))

    assert introspected.json() == {"active": False}
    assert revoked.status_code == 400
    assert revoked.json()["error"] == "invalid_grant"
    still = await http.get("/api/test/turnover", headers=bearer(victim_token))
    assert still.status_code == 200


async def test_an_expired_token_is_inactive(
    http: httpx.AsyncClient, caf: JwtClient, db: Database, settings: Settings
) -> None:
    expired = forge_token(db, settings, client=caf, claims={"exp": 1_000_000_000})
    response = await http.post("/oauth/introspect", data=caf.form(token=expired))
    assert response.json() == {"active": False}


async def test_revocation_and_introspection_need_client_authentication(
    http: httpx.AsyncClient, caf: JwtClient
) -> None:
    token = await fetch_token(http, caf, "turnover:read")
    for path in ("/oauth/revoke", "/oauth/introspect"):
        response = await http.post(path, data={"token": token})
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_client"


async def test_a_secret_client_introspects_with_basic_authentication(
    http: httpx.AsyncClient, registry: Registry
) -> None:
    registry.partner("CNAM", "cnam")
    client = registry.secret_client("CNAM")
    registry.grant("status:read", "CNAM")
    issued = await http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "status:read"},
        auth=client.basic,
    )
    token = issued.json()["access_token"]
    response = await http.post("/oauth/introspect", data={"token": token}, auth=client.basic)
    assert response.json()["active"] is True
