"""Client credentials with ``private_key_jwt``, as a partner's machine does it.

The partner holds a private key whose public half the gateway registered for its client. To
get an access token it signs a short-lived assertion (RFC 7523: ``iss`` = ``sub`` = client id,
``aud`` = the token endpoint, a fresh ``jti``) and posts it to the token endpoint with
``grant_type=client_credentials`` (RFC 6749 §4.4). The token is then sent as a Bearer header
until it expires, and fetched again once when the gateway answers 401 (a rotated key or a
revoked token).

:class:`PrivateKeyJwt` is an ``httpx.Auth``: any httpx client (or transport) can use it.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from joserfc import jwt
from joserfc.jwk import ECKey, OKPKey, RSAKey, import_key

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
METADATA_PATH = "/.well-known/oauth-authorization-server"
# The gateway refuses assertions valid for longer than a few minutes: one minute is plenty.
ASSERTION_LIFETIME_SECONDS = 60
# Fetch a new token this long before the current one expires, so none dies in flight.
EXPIRY_MARGIN_SECONDS = 30

PrivateKey = ECKey | OKPKey | RSAKey

_ALGORITHMS = {"P-256": "ES256", "P-384": "ES384", "Ed25519": "EdDSA"}


class TokenError(Exception):
    """The token endpoint refused to issue a token (or could not be read)."""

    def __init__(self, status: int, error: str, description: str | None) -> None:
        super().__init__(f"{error} ({status}): {description or 'no description'}")
        self.status = status
        self.error = error
        self.description = description


@dataclass(frozen=True, slots=True)
class ServerMetadata:
    """What a partner needs of the authorisation server's metadata (RFC 8414)."""

    issuer: str
    token_endpoint: str
    jwks_uri: str


def discover(http: httpx.Client, gateway_url: str) -> ServerMetadata:
    """Read the gateway's authorisation server metadata."""
    response = http.get(gateway_url.rstrip("/") + METADATA_PATH)
    response.raise_for_status()
    document = response.json()
    return ServerMetadata(
        issuer=str(document["issuer"]),
        token_endpoint=str(document["token_endpoint"]),
        jwks_uri=str(document["jwks_uri"]),
    )


def load_private_key(path: Path) -> PrivateKey:
    """A private JWK from a JSON file; refuses a public key (it could sign nothing)."""
    document = json.loads(path.read_text(encoding="utf-8"))
    key = import_key(document)
    if not isinstance(key, ECKey | OKPKey | RSAKey) or not key.is_private:
        raise ValueError(f"{path} does not hold a private EC, OKP or RSA key")
    return key


def signing_algorithm(key: PrivateKey) -> str:
    if isinstance(key, RSAKey):
        return "PS256"
    curve = str(key.as_dict(private=False).get("crv"))
    try:
        return _ALGORITHMS[curve]
    except KeyError:
        raise ValueError(f"no assertion algorithm for curve {curve}") from None


class PrivateKeyJwt(httpx.Auth):
    """Bearer tokens from the client credentials grant, authenticated with ``private_key_jwt``."""

    requires_response_body = True

    def __init__(
        self,
        *,
        client_id: str,
        key: PrivateKey,
        token_endpoint: str,
        scopes: Sequence[str],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client_id = client_id
        self.token_endpoint = token_endpoint
        self.scopes = tuple(scopes)
        self._key = key
        self._algorithm = signing_algorithm(key)
        self._clock = clock
        self._token: str | None = None
        self._expires_at = 0.0
        self.tokens_fetched = 0

    def assertion(self) -> str:
        now = int(self._clock())
        claims: dict[str, Any] = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": self.token_endpoint,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME_SECONDS,
            "jti": secrets.token_urlsafe(24),
        }
        header: dict[str, Any] = {"alg": self._algorithm, "typ": "JWT"}
        kid = self._key.kid
        if kid:
            header["kid"] = kid
        return jwt.encode(header, claims, self._key, algorithms=[self._algorithm])

    def token_request(self) -> httpx.Request:
        return httpx.Request(
            "POST",
            self.token_endpoint,
            data={
                "grant_type": "client_credentials",
                "scope": " ".join(self.scopes),
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": self.assertion(),
            },
            headers={"Accept": "application/json"},
        )

    def _store(self, response: httpx.Response) -> None:
        try:
            document = response.json()
        except ValueError:
            document = {}
        if response.status_code != 200 or "access_token" not in document:
            raise TokenError(
                response.status_code,
                str(document.get("error", "invalid_response")),
                document.get("error_description"),
            )
        self._token = str(document["access_token"])
        lifetime = float(document.get("expires_in", 60))
        self._expires_at = self._clock() + max(lifetime - EXPIRY_MARGIN_SECONDS, 1.0)
        self.tokens_fetched += 1

    def _usable(self) -> bool:
        return self._token is not None and self._clock() < self._expires_at

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        fresh = False
        if not self._usable():
            self._store((yield self.token_request()))
            fresh = True
        request.headers["Authorization"] = f"Bearer {self._token}"
        response = yield request
        if response.status_code == 401 and not fresh:
            # The gateway no longer accepts this token (revoked, signed by a retired key):
            # one new token, one retry, and whatever comes back is the answer.
            self._store((yield self.token_request()))
            request.headers["Authorization"] = f"Bearer {self._token}"
            yield request


class StaticBearer(httpx.Auth):
    """A fixed Bearer token: for tests against a mock server that issues no token."""

    def __init__(self, token: str) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request
