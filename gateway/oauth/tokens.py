"""Access tokens: JWTs per RFC 9068, issued by the authorisation server, checked on every route.

Issued (:class:`AccessTokenGenerator`, on Authlib's RFC 9068 generator): header
``{"typ": "at+jwt", "alg": "ES256", "kid": ...}``; claims ``iss``, ``aud`` (the data API),
``sub`` and ``client_id`` (the client), ``scope``, ``jti``, ``iat``, ``exp`` and ``partner_id``.
The lifetime is ours to set (Authlib's default for client credentials is ten days).

Verified (:class:`AccessTokenVerifier`), each check naming its own error code, in this order:
the header's ``alg`` is on the allow-list (``ES256`` only: never ``none``, never an HMAC that
a public key could be abused as the secret of), its ``typ`` is ``at+jwt`` (required: Authlib's
validator lets a token without ``typ`` through, and a typed token cannot be confused with
another JWT signed by the same issuer), its ``kid`` names a published token key, the signature
verifies with that key, then ``iss``, ``aud``, ``exp``, ``nbf`` and ``iat`` with a small leeway,
and the claims the gateway relies on are present and well typed.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeGuard

from authlib.oauth2.rfc9068 import JWTBearerTokenGenerator
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet

from gateway.database import utcnow
from gateway.keys.store import ActiveKey
from gateway.settings import Settings

ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105  (a media type)
# RFC 9068 section 4: "at+jwt", or its full media type, compared case-insensitively.
_ACCEPTED_TYPES = frozenset({"at+jwt", "application/at+jwt"})
SIGNING_ALGORITHMS = frozenset({"ES256"})
# Far above any token we issue; refusing longer input bounds the work an attacker can cause.
_MAX_TOKEN_LENGTH = 4096


def token_audience(settings: Settings) -> str:
    """The ``aud`` of every access token: the data API, not the authorisation server."""
    return settings.token_audience or settings.issuer.rstrip("/") + "/api"


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """What a verified access token says; the same object for every request with that token."""

    client_id: str
    partner_id: int
    subject: str
    scopes: frozenset[str]
    jti: str
    issued_at: int
    expires_at: int
    key_id: str

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

    @property
    def expires(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.expires_at, dt.UTC)

    @property
    def issued(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.issued_at, dt.UTC)


class TokenRejectedError(Exception):
    """The token fails a check; ``code`` is stable, ``detail`` never repeats the token."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


class AccessTokenGenerator(JWTBearerTokenGenerator):  # type: ignore[misc]
    """Authlib's RFC 9068 generator with our key, audience, lifetime and partner claim.

    ``signing_key(bound)`` returns the current token key after recording that it is about to
    sign a token valid until at most ``bound`` (see :meth:`gateway.keys.KeyStore.note_signed`).
    """

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        lifetime_seconds: int,
        signing_key: Callable[[dt.datetime], ActiveKey],
    ) -> None:
        # An int expires_generator replaces Authlib's per-grant defaults (ten days here).
        super().__init__(issuer=issuer, alg="ES256", expires_generator=lifetime_seconds)
        self.audience = audience
        self.lifetime_seconds = lifetime_seconds
        self._signing_key = signing_key

    def get_jwks(self) -> KeySet:
        # Called once per token, after Authlib has read the clock for iat; one second more
        # covers the clock moving between the two reads.
        bound = utcnow() + dt.timedelta(seconds=self.lifetime_seconds + 1)
        return KeySet([self._signing_key(bound).private_key])

    def get_audiences(self, client: Any, user: Any, scope: Any) -> str:
        return self.audience

    def get_jti(self, client: Any, grant_type: Any, user: Any, scope: Any) -> str:
        return secrets.token_urlsafe(18)

    def get_extra_claims(
        self, client: Any, grant_type: Any, user: Any, scope: Any
    ) -> dict[str, Any]:
        return {"partner_id": client.partner_id}


class AccessTokenVerifier:
    """Checks an access token against the published token keys (see the module docstring)."""

    def __init__(self, *, issuer: str, audience: str, leeway_seconds: int) -> None:
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway_seconds

    def verify(self, token: str, key_for: Callable[[str], ECKey | None], now: float) -> TokenClaims:
        payload, kid = self._checked_signature(token, key_for)
        claims = _json_object(payload)
        self._check_registered_claims(claims, now)
        return _token_claims(claims, kid)

    def _checked_signature(
        self, token: str, key_for: Callable[[str], ECKey | None]
    ) -> tuple[bytes, str]:
        if len(token) > _MAX_TOKEN_LENGTH or token.count(".") != 2:
            raise TokenRejectedError("token.malformed", "The access token is not a compact JWS.")
        try:
            signed = jws.extract_compact(token.encode("ascii"))
            header = signed.headers()
        except (JoseError, ValueError, UnicodeError, TypeError) as exc:
            raise TokenRejectedError(
                "token.malformed", "The access token is not a compact JWS."
            ) from exc
        alg = header.get("alg")
        # Header values are the sender's JSON: a list or object is unhashable, and testing it
        # for membership would raise TypeError (a 500) instead of refusing the token.
        if not isinstance(alg, str) or alg not in SIGNING_ALGORITHMS:
            raise TokenRejectedError(
                "token.algorithm_not_allowed",
                f"The access token must be signed with {', '.join(sorted(SIGNING_ALGORITHMS))}.",
            )
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.lower() not in _ACCEPTED_TYPES:
            raise TokenRejectedError(
                "token.type_not_allowed", 'The access token header must say "typ": "at+jwt".'
            )
        kid = header.get("kid")
        key = key_for(kid) if isinstance(kid, str) and kid else None
        if key is None or not isinstance(kid, str):
            raise TokenRejectedError(
                "token.unknown_key", "The access token is not signed by a key of this gateway."
            )
        try:
            valid = jws.validate_compact(signed, key, algorithms=[alg])
        except (JoseError, ValueError, TypeError) as exc:
            # TypeError: joserfc iterates a "crit" header it has not type-checked (crit: 1).
            raise TokenRejectedError(
                "token.signature_invalid", "The access token signature does not verify."
            ) from exc
        if not valid:
            raise TokenRejectedError(
                "token.signature_invalid", "The access token signature does not verify."
            )
        assert signed.payload is not None  # noqa: S101  (a compact JWS always has one)
        return signed.payload, kid

    def _check_registered_claims(self, claims: dict[str, Any], now: float) -> None:
        if claims.get("iss") != self.issuer:
            raise TokenRejectedError(
                "token.issuer_mismatch", "The access token was not issued by this gateway."
            )
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if self.audience not in audiences:
            raise TokenRejectedError(
                "token.audience_mismatch", "The access token is not meant for this API."
            )
        exp = claims.get("exp")
        if not _numeric_date(exp):
            raise TokenRejectedError("token.claims_invalid", "The access token has no valid exp.")
        if now >= exp + self.leeway:
            raise TokenRejectedError("token.expired", "The access token has expired.")
        nbf = claims.get("nbf")
        if nbf is not None and (not _numeric_date(nbf) or nbf > now + self.leeway):
            raise TokenRejectedError("token.not_yet_valid", "The access token is not valid yet.")
        iat = claims.get("iat")
        if not _numeric_date(iat) or iat > now + self.leeway:
            raise TokenRejectedError(
                "token.claims_invalid", "The access token has no valid iat, or one in the future."
            )


def _json_object(payload: bytes) -> dict[str, Any]:
    try:
        claims = json.loads(payload)
    except ValueError as exc:
        raise TokenRejectedError(
            "token.malformed", "The access token payload is not JSON."
        ) from exc
    if not isinstance(claims, dict):
        raise TokenRejectedError("token.malformed", "The access token payload is not an object.")
    return claims


def _token_claims(claims: dict[str, Any], kid: str) -> TokenClaims:
    client_id, subject, jti = claims.get("client_id"), claims.get("sub"), claims.get("jti")
    scope, partner_id = claims.get("scope"), claims.get("partner_id")
    if not (
        isinstance(client_id, str)
        and client_id
        and isinstance(subject, str)
        and isinstance(jti, str)
        and jti
        and isinstance(scope, str)
        and isinstance(partner_id, int)
        and not isinstance(partner_id, bool)
    ):
        raise TokenRejectedError(
            "token.claims_invalid", "The access token lacks a claim the gateway needs."
        )
    return TokenClaims(
        client_id=client_id,
        partner_id=partner_id,
        subject=subject,
        scopes=frozenset(scope.split()),
        jti=jti,
        issued_at=int(claims["iat"]),
        expires_at=int(claims["exp"]),
        key_id=kid,
    )


def _numeric_date(value: object) -> TypeGuard[int | float]:
    # bool is an int in Python, and NaN compares false with everything: both would slip through.
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
