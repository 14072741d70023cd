"""RFC 8414 metadata and the published JWK set."""

from __future__ import annotations

import httpx
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from oauth_support import JwtClient, fetch_token

from gateway.settings import Settings


async def test_metadata_describes_the_server(http: httpx.AsyncClient, settings: Settings) -> None:
    response = await http.get("/.well-known/oauth-authorization-server")
    assert response.status_code == 200
    metadata = response.json()
    assert metadata["issuer"] == settings.issuer
    assert metadata["token_endpoint"] == settings.issuer + "/oauth/token"
    assert metadata["jwks_uri"] == settings.issuer + "/.well-known/jwks.json"
    assert metadata["grant_types_supported"] == ["client_credentials"]
    assert metadata["token_endpoint_auth_methods_supported"] == [
        "private_key_jwt",
        "client_secret_basic",
    ]
    assert "none" not in metadata["token_endpoint_auth_signing_alg_values_supported"]
    assert not any(
        alg.startswith("HS") for alg in metadata["token_endpoint_auth_signing_alg_values_supported"]
    )
    assert set(metadata["scopes_supported"]) == {
        "turnover:read",
        "status:read",
        "status:feed",
        "cfp:read",
        "acre:read",
        "consent:write",
    }
    checked = AuthorizationServerMetadata(metadata)
    for field in (
        "issuer",
        "token_endpoint",
        "jwks_uri",
        "grant_types_supported",
        "token_endpoint_auth_signing_alg_values_supported",
        "revocation_endpoint",
        "introspection_endpoint",
    ):
        getattr(checked, f"validate_{field}")()


async def test_jwks_publishes_public_keys_only(http: httpx.AsyncClient, caf: JwtClient) -> None:
    await fetch_token(http, caf, "turnover:read")
    response = await http.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/jwk-set+json"
    keys = response.json()["keys"]
    assert keys
    for key in keys:
        assert key["kty"] == "EC"
        assert key["alg"] == "ES256"
        assert key["use"] == "sig"
        assert key["kid"]
        assert "d" not in key
