"""Factories for the OAuth tests: partners, clients with their keys, assertions, forged tokens."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from authlib.oauth2.rfc7523 import PrivateKeyJWT, private_key_jwt_sign
from fastapi import APIRouter, Depends
from joserfc import jwt
from joserfc.jwk import ECKey
from sqlalchemy import update
from structlog.testing import CapturingLogger

from gateway.database import Database, utcnow
from gateway.identifiers import siren_with_checksum, siret_with_checksum
from gateway.keys.models import KeyUse
from gateway.keys.store import KeyStore
from gateway.oauth import server as oauth_server
from gateway.oauth.resource import require_scope
from gateway.oauth.tokens import TokenClaims, token_audience
from gateway.partners import service
from gateway.partners.models import OAuthClient
from gateway.settings import Settings

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

# The data connectors come later; these routes stand in for them, mounted in tests only.
protected_router = APIRouter(prefix="/api/test")


@protected_router.get("/turnover")
async def turnover(
    claims: TokenClaims = Depends(require_scope("turnover:read")),
) -> dict[str, object]:
    return {"client_id": claims.client_id, "scopes": sorted(claims.scopes)}


@protected_router.get("/status")
async def status(claims: TokenClaims = Depends(require_scope("status:read"))) -> dict[str, str]:
    return {"client_id": claims.client_id}


def siret_for(n: int) -> str:
    return siret_with_checksum(siren_with_checksum(f"{13000000 + n:08d}") + "0001")


@dataclass(frozen=True)
class JwtClient:
    client_id: str
    partner_id: int
    key: ECKey
    token_endpoint: str

    def assertion(
        self,
        *,
        aud: Any = None,
        lifetime: int = 60,
        jti: str | None = None,
        key: ECKey | None = None,
        claims: dict[str, Any] | None = None,
    ) -> str:
        now = int(time.time())
        payload: dict[str, Any] = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": self.token_endpoint if aud is None else aud,
            "iat": now,
            "exp": now + lifetime,
            "jti": jti or secrets.token_urlsafe(16),
            **(claims or {}),
        }
        return jwt.encode({"alg": "ES256"}, payload, key or self.key, algorithms=["ES256"])

    def form(self, **parameters: str) -> dict[str, str]:
        """Client-authentication parameters with a fresh assertion, plus ``parameters``."""
        return {
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": self.assertion(),
            **parameters,
        }


@dataclass(frozen=True)
class SecretClient:
    client_id: str
    partner_id: int
    secret: str

    @property
    def basic(self) -> httpx.BasicAuth:
        return httpx.BasicAuth(self.client_id, self.secret)


class ShortLivedPrivateKeyJWT(PrivateKeyJWT):  # type: ignore[misc]
    """Authlib's private_key_jwt with a one-minute assertion (its default is one hour)."""

    def sign(self, auth: Any, token_endpoint: str) -> str:
        return str(
            private_key_jwt_sign(
                auth.client_secret,
                client_id=auth.client_id,
                token_endpoint=token_endpoint,
                alg=self.alg,
                expires_in=60,
            )
        )


async def fetch_token(http: httpx.AsyncClient, client: JwtClient, scope: str) -> str:
    """A fresh access token for ``client`` from the token endpoint (asserts success)."""
    response = await http.post(
        "/oauth/token", data=client.form(grant_type="client_credentials", scope=scope)
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def compact(
    header: dict[str, Any], claims: dict[str, Any], *, hmac_secret: bytes | None = None
) -> str:
    """A JWS built by hand: unsigned, or HMAC-SHA256 signed with ``hmac_secret`` (the tricks
    of an attacker that a JOSE library would refuse to produce)."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    if hmac_secret is None:
        return signing_input + "."
    mac = hmac.new(hmac_secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(mac)}"


class Registry:
    """Sets up partners, clients and habilitations, each committed."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self._partners = 0

    def partner(self, name: str = "CAF", kind: str = "caf") -> int:
        self._partners += 1
        with self.db.sync_session() as session, session.begin():
            return service.add_partner(
                session, name=name, siret=siret_for(self._partners), kind=kind
            ).id

    def jwt_client(
        self, partner: str = "CAF", *, expires_at: dt.datetime | None = None
    ) -> JwtClient:
        key = ECKey.generate_key("P-256", private=True)
        with self.db.sync_session() as session, session.begin():
            created = service.create_client(
                session,
                self.settings,
                partner_name=partner,
                jwks={"keys": [key.as_dict(private=False)]},
                expires_at=expires_at,
            )
            return JwtClient(
                client_id=created.client.client_id,
                partner_id=created.client.partner_id,
                key=key,
                token_endpoint=self.settings.issuer + "/oauth/token",
            )

    def secret_client(
        self, partner: str = "CAF", *, expires_at: dt.datetime | None = None
    ) -> SecretClient:
        with self.db.sync_session() as session, session.begin():
            created = service.create_client(
                session, self.settings, partner_name=partner, secret=True, expires_at=expires_at
            )
            assert created.secret is not None
            return SecretClient(
                client_id=created.client.client_id,
                partner_id=created.client.partner_id,
                secret=created.secret,
            )

    def grant(
        self,
        scope: str,
        partner: str = "CAF",
        *,
        valid_from: dt.date | None = None,
        valid_until: dt.date | None = None,
        rate_limit: int | None = None,
    ) -> int:
        today = service.legal_today(self.settings)
        with self.db.sync_session() as session, session.begin():
            return service.grant_habilitation(
                session,
                partner_name=partner,
                scope=scope,
                purposes=["RSA_INSTRUCTION"],
                legal_basis="Code de la sécurité sociale, art. L. 114-8",
                valid_from=valid_from,
                valid_until=valid_until,
                rate_limit_per_minute=rate_limit,
                today=today,
            ).id

    def disable(self, client_id: str) -> None:
        with self.db.sync_session() as session, session.begin():
            service.disable_client(session, client_id)

    def expire(self, client_id: str) -> None:
        """End a client's credential a second ago (the registry refuses to create it so)."""
        with self.db.sync_session() as session, session.begin():
            session.execute(
                update(OAuthClient)
                .where(OAuthClient.client_id == client_id)
                .values(credential_expires_at=utcnow() - dt.timedelta(seconds=1))
            )

    def revoke_habilitation(self, habilitation_id: int) -> None:
        with self.db.sync_session() as session, session.begin():
            service.revoke_habilitation(session, habilitation_id)

    def rotate_token_key(self) -> str:
        with self.db.sync_session() as session, session.begin():
            return KeyStore(self.settings).rotate(session, KeyUse.TOKEN).kid


def forge_token(
    db: Database,
    settings: Settings,
    *,
    client: JwtClient | SecretClient,
    scope: str = "turnover:read",
    header: dict[str, Any] | None = None,
    claims: dict[str, Any] | None = None,
    drop: tuple[str, ...] = (),
    key: ECKey | None = None,
) -> str:
    """An access token signed by the gateway's real token key unless ``key`` is given; the
    header and claims start valid and ``header``, ``claims`` and ``drop`` spoil them."""
    with db.sync_session() as session, session.begin():
        signer = KeyStore(settings).current(session, KeyUse.TOKEN)
    now = int(time.time())
    payload: dict[str, Any] = {
        "iss": settings.issuer,
        "aud": token_audience(settings),
        "sub": client.client_id,
        "client_id": client.client_id,
        "partner_id": client.partner_id,
        "scope": scope,
        "jti": secrets.token_urlsafe(16),
        "iat": now,
        "exp": now + 600,
        **(claims or {}),
    }
    for name in drop:
        payload.pop(name, None)
    protected = {"alg": "ES256", "typ": "at+jwt", "kid": signer.kid, **(header or {})}
    protected = {name: value for name, value in protected.items() if value is not None}
    return jwt.encode(
        protected,
        payload,
        key or signer.private_key,
        algorithms=[protected.get("alg", "ES256")],
        default_type=None,
    )


class RefusalLog:
    """The lines the authorisation server logs, caught by replacing its logger.

    structlog caches a module's logger on first use, so ``capture_logs`` would miss them.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self._logger = CapturingLogger()
        monkeypatch.setattr(oauth_server, "log", self._logger)

    @property
    def refusals(self) -> list[dict[str, Any]]:
        """The keys of each ``client_authentication_failed`` line, oldest first."""
        return [
            dict(call.kwargs)
            for call in self._logger.calls
            if call.args == ("client_authentication_failed",)
        ]

    def reasons(self) -> list[str]:
        return [str(line["reason"]) for line in self.refusals]

    def clear(self) -> None:
        self._logger.calls.clear()

    @property
    def everything(self) -> str:
        """Everything logged, as one string to search for what must never be there."""
        return repr(self._logger.calls)
