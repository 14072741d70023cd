"""The authorisation server, on Authlib: client credentials for machines, nothing else.

* Grant: ``client_credentials`` only (no refresh token, no user-facing flow). The scopes
  granted are exactly those requested, each of which must be covered today by a habilitation
  in force for the client's partner; otherwise ``invalid_scope``. A request without ``scope``
  is refused too: a partner states what it needs (least privilege).
* Client authentication: ``private_key_jwt`` (RFC 7523: signed by a key of the client's
  registered JWK set, single-valued ``aud`` naming the token endpoint or the issuer,
  ``exp`` at most ``client_assertion_max_lifetime_seconds`` ahead, ``jti`` recorded and never
  accepted twice) or ``client_secret_basic`` (Argon2id-hashed secret, strict RFC 7617 header).
  A client may use only the method it was registered with; a disabled client or an expired
  credential is refused, but only once its credential has verified.
* Every client-authentication failure gets the same ``invalid_client`` answer whatever the
  cause (unknown client, wrong method, bad secret or assertion, disabled, expired): an
  outsider must not learn which client_ids exist nor their state (RFC 6749 section 5.2 leaves
  the description to us). The precise reason goes to the log, in one line. A Basic credential
  that names no secret client still costs one Argon2id verification, against a decoy hash
  with the same parameters, so that timing does not tell the cases apart either.
* Revocation (RFC 7009) and introspection (RFC 7662): a client may act on its own tokens only.

Authlib is synchronous: each call runs in a worker thread with its own sync session, set in a
context variable for the callbacks Authlib makes (``query_client`` and friends). Writes that
must hold whatever happens next (a used ``jti``, the signing key's expiry bound) commit on
their own; the rest commits when the response is a success.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import re
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import structlog
from authlib.oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import (
    ClientMixin,
    InvalidClientError,
    InvalidScopeError,
    OAuth2Error,
    OAuth2Request,
    TokenMixin,
)
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import Engine, delete, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gateway.database import Database, utcnow
from gateway.keys.models import KeyUse
from gateway.keys.store import ActiveKey, KeyStore
from gateway.oauth.models import ClientAssertionJti, TokenRevocation
from gateway.oauth.status import note_token_status_changed
from gateway.oauth.tokens import (
    AccessTokenGenerator,
    AccessTokenVerifier,
    TokenClaims,
    TokenRejectedError,
    token_audience,
)
from gateway.partners.models import ClientAuthMethod, OAuthClient, Scope
from gateway.partners.repository import ClientRepository
from gateway.partners.service import (
    decoy_secret_check,
    habilitations_in_force,
    legal_today,
    verify_client_secret,
)
from gateway.settings import Settings

GRANT_TYPE = "client_credentials"
PRIVATE_KEY_JWT = ClientAuthMethod.PRIVATE_KEY_JWT.value
CLIENT_SECRET_BASIC = ClientAuthMethod.CLIENT_SECRET_BASIC.value
AUTH_METHODS = [PRIVATE_KEY_JWT, CLIENT_SECRET_BASIC]
# The one error_description of every client-authentication failure (see the module docstring).
CLIENT_AUTHENTICATION_FAILED = "Client authentication failed."
# What a partner may sign its client assertions with; never "none", never an HMAC.
ASSERTION_ALGORITHMS = ["ES256", "ES384", "PS256", "RS256", "EdDSA", "Ed25519"]
# Identifiers a partner sends are looked up or stored: printable ASCII only, bounded.
_PRINTABLE_ID = re.compile(r"[\x21-\x7e]{1,64}")
_PRINTABLE_JTI = re.compile(r"[\x20-\x7e]{1,255}")
_PURGE_INTERVAL = dt.timedelta(minutes=5)

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class _Work:
    session: Session
    now: dt.datetime


_work: ContextVar[_Work] = ContextVar("oauth_server_work")


def _current() -> _Work:
    return _work.get()


class ClientRefusedError(InvalidClientError):  # type: ignore[misc]
    """A client-authentication failure with its precise reason, for the log only.

    ``reason`` is a stable snake_case code, ``description`` a sentence; neither reaches the
    caller, who gets :data:`CLIENT_AUTHENTICATION_FAILED` whatever the cause.
    """

    def __init__(self, reason: str, description: str) -> None:
        super().__init__(status_code=401, description=description)
        self.reason = reason


@dataclass(slots=True)
class _Attempt:
    """What a client-authentication attempt claimed, for the log line of its failure."""

    method: str | None = None
    client_id: str | None = None

    def note_claimed(self, client_id: object) -> None:
        # Only a well-formed id is logged: anything else is the caller's arbitrary text.
        well_formed = isinstance(client_id, str) and _PRINTABLE_ID.fullmatch(client_id)
        self.client_id = client_id if isinstance(client_id, str) and well_formed else None


@dataclass(frozen=True, slots=True)
class OAuthResult:
    """What Authlib answered: status, JSON body, headers (errors still in RFC 6749 form)."""

    status: int
    body: dict[str, Any]
    headers: list[tuple[str, str]]


class FormRequest(OAuth2Request):  # type: ignore[misc]
    """An HTTP request already read by the async endpoint: method, public URL, headers, form."""

    def __init__(self, method: str, uri: str, headers: Any, form: dict[str, str]) -> None:
        super().__init__(method, uri, headers=headers)
        self._form = form
        self.payload = BasicOAuth2Payload(form)

    @property
    def form(self) -> dict[str, str]:
        return self._form

    @property
    def args(self) -> dict[str, str]:
        return {}


class RegisteredClient(ClientMixin):  # type: ignore[misc]
    """A registered client as Authlib sees it."""

    def __init__(self, row: OAuthClient) -> None:
        self.client_id = row.client_id
        self.partner_id = row.partner_id
        self.auth_method = row.auth_method
        self.jwks = row.jwks
        self.credential_expires_at = row.credential_expires_at
        self.disabled_at = row.disabled_at
        self._row = row

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> None:
        return None

    def get_allowed_scope(self, scope: str | None) -> str:
        # The grant has already refused anything not covered; this only normalises.
        return " ".join(sorted(set((scope or "").split())))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_client_secret(self, client_secret: str) -> bool:
        return verify_client_secret(self._row, client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return bool(method == self.auth_method)

    def check_response_type(self, response_type: str) -> bool:
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == GRANT_TYPE


class IssuedToken(TokenMixin):  # type: ignore[misc]
    """One of our access tokens, verified, for revocation and introspection."""

    def __init__(self, claims: TokenClaims, revoked: bool) -> None:
        self.claims = claims
        self.revoked = revoked

    def check_client(self, client: RegisteredClient) -> bool:
        return self.claims.client_id == client.get_client_id()

    def get_scope(self) -> str:
        return " ".join(sorted(self.claims.scopes))

    def get_expires_in(self) -> int:
        return self.claims.expires_at - self.claims.issued_at

    def is_expired(self) -> bool:
        return self.claims.expires < _current().now

    def is_revoked(self) -> bool:
        return self.revoked


class ClientCredentials(ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS

    def validate_requested_scope(self) -> None:
        requested = set((self.request.payload.scope or "").split())
        if not requested:
            raise InvalidScopeError("Ask for the scopes you need: scope is required.")
        known = [scope.value for scope in Scope]
        if not requested <= set(known):
            # Not echoed: it is the caller's text, and error descriptions are restricted ASCII.
            raise InvalidScopeError(f"Unknown scope; the scopes are: {' '.join(known)}.")
        work = _current()
        client: RegisteredClient = self.request.client
        today = legal_today(self.server.settings, work.now)
        covered = {
            habilitation.scope
            for habilitation in habilitations_in_force(work.session, client.partner_id, today)
        }
        if uncovered := sorted(requested - covered):
            raise InvalidScopeError(
                f"No habilitation in force today covers: {' '.join(uncovered)}."
            )


class PrivateKeyJwt(JWTBearerClientAssertion):  # type: ignore[misc]
    CLIENT_AUTH_METHOD = ClientAuthMethod.PRIVATE_KEY_JWT.value

    def __init__(self, server: GatewayAuthorizationServer) -> None:
        super().__init__(validate_jti=True, leeway=server.settings.token_leeway_seconds)
        self._server = server

    def get_audiences(self) -> list[str]:
        return [self._server.token_endpoint, self._server.settings.issuer]

    def resolve_client_public_key(
        self, client: RegisteredClient, headers: Mapping[str, Any] | None = None
    ) -> KeySet:
        # Authlib calls this with (client), and again with (client, headers) if that raises
        # TypeError: both forms are accepted, and a client registered for another method
        # (no jwks) is refused here, before any key or signature is looked at.
        if client.auth_method != self.CLIENT_AUTH_METHOD or client.jwks is None:
            raise ClientRefusedError(
                "auth_method_not_registered",
                f"The client is registered for {client.auth_method}, not private_key_jwt.",
            )
        try:
            return KeySet.import_key_set(client.jwks)  # type: ignore[arg-type]
        except (JoseError, ValueError, TypeError) as exc:
            raise ClientRefusedError(
                "registered_keys_unreadable", "The client's registered JWK set cannot be read."
            ) from exc

    def process_assertion_claims(self, assertion: str, resolve_key: Any) -> dict[str, Any]:
        try:
            token = jwt.decode(assertion, resolve_key, algorithms=ASSERTION_ALGORITHMS)
        except (JoseError, ValueError) as exc:
            raise ClientRefusedError(
                "assertion_signature_invalid",
                "The client assertion does not verify with the client's registered keys.",
            ) from exc
        self.verify_claims(token.claims)
        return token.claims

    def verify_claims(self, claims: dict[str, Any]) -> None:
        audience = claims.get("aud")
        if isinstance(audience, list) and len(audience) == 1:
            audience = audience[0]
        if audience not in self.get_audiences():
            raise ClientRefusedError(
                "assertion_audience_invalid",
                f"The assertion aud must be the token endpoint {self._server.token_endpoint}.",
            )
        expires = claims.get("exp")
        horizon = _current().now.timestamp() + self._server.assertion_horizon_seconds
        if isinstance(expires, int | float) and expires > horizon:
            raise ClientRefusedError(
                "assertion_lifetime_too_long",
                "The assertion lives too long: exp must be at most "
                f"{self._server.settings.client_assertion_max_lifetime_seconds} seconds ahead.",
            )
        jti = claims.get("jti")
        if not isinstance(jti, str) or not _PRINTABLE_JTI.fullmatch(jti):
            raise ClientRefusedError(
                "assertion_jti_invalid",
                "The assertion needs a jti of 1 to 255 printable characters.",
            )
        super().verify_claims(claims)

    def validate_jti(self, claims: dict[str, Any], jti: str) -> bool:
        expires = dt.datetime.fromtimestamp(float(claims["exp"]), dt.UTC)
        if not self._server.record_assertion(str(claims["sub"]), jti, expires):
            raise ClientRefusedError("assertion_replayed", "The assertion's jti was used before.")
        return True


class Revocation(RevocationEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = AUTH_METHODS

    def __init__(self, server: GatewayAuthorizationServer) -> None:
        super().__init__(server)
        self.gateway = server

    def query_token(self, token_string: str, token_type_hint: str | None) -> IssuedToken | None:
        return self.gateway.inspect_token(token_string)

    def revoke_token(self, token: IssuedToken, request: FormRequest) -> None:
        self.gateway.revoke(token)


class Introspection(IntrospectionEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = AUTH_METHODS

    def __init__(self, server: GatewayAuthorizationServer) -> None:
        super().__init__(server)
        self.gateway = server

    def query_token(self, token_string: str, token_type_hint: str | None) -> IssuedToken | None:
        return self.gateway.inspect_token(token_string)

    def check_permission(
        self, token: IssuedToken, client: RegisteredClient, request: FormRequest
    ) -> bool:
        # Partners introspect their own tokens only: another's token is simply "not active".
        return token.check_client(client)

    def introspect_token(self, token: IssuedToken) -> dict[str, Any]:
        return {
            "active": True,
            "token_type": "Bearer",
            "client_id": token.claims.client_id,
            "sub": token.claims.subject,
            "scope": token.get_scope(),
            "iss": self.gateway.settings.issuer,
            "aud": token_audience(self.gateway.settings),
            "exp": token.claims.expires_at,
            "iat": token.claims.issued_at,
            "jti": token.claims.jti,
        }


class GatewayAuthorizationServer(AuthorizationServer):  # type: ignore[misc]
    def __init__(self, settings: Settings, db: Database) -> None:
        super().__init__(scopes_supported=[scope.value for scope in Scope])
        self.settings = settings
        self.db = db
        self.keys = KeyStore(settings)
        base = settings.issuer.rstrip("/")
        self.token_endpoint = base + "/oauth/token"
        self.revocation_endpoint = base + "/oauth/revoke"
        self.introspection_endpoint = base + "/oauth/introspect"
        self.assertion_horizon_seconds = (
            settings.client_assertion_max_lifetime_seconds + settings.token_leeway_seconds
        )
        self.verifier = AccessTokenVerifier(
            issuer=settings.issuer,
            audience=token_audience(settings),
            leeway_seconds=settings.token_leeway_seconds,
        )
        self._last_purge = dt.datetime.min.replace(tzinfo=dt.UTC)
        self.register_token_generator(
            GRANT_TYPE,
            AccessTokenGenerator(
                issuer=settings.issuer,
                audience=token_audience(settings),
                lifetime_seconds=settings.access_token_lifetime_seconds,
                signing_key=self._signing_key,
            ),
        )
        # Not registered with Authlib's client authentication: authenticate_client below runs
        # it, so that every failure is answered alike (see the module docstring).
        self._private_key_jwt = PrivateKeyJwt(self)
        self.register_grant(ClientCredentials)
        self.register_endpoint(Revocation(self))
        self.register_endpoint(Introspection(self))

    # -- entry point, called in a worker thread ---------------------------------------------

    def respond(self, endpoint: str, request: FormRequest) -> OAuthResult:
        """Answer ``token``, ``revocation`` or ``introspection`` with a session of its own."""
        with self.db.sync_session() as session:
            reset = _work.set(_Work(session=session, now=utcnow()))
            try:
                if endpoint == "token":
                    result: OAuthResult = self.create_token_response(request)
                else:
                    result = self.create_endpoint_response(endpoint, request)
                if result.status < 400:
                    session.commit()
                    if endpoint == "revocation":
                        note_token_status_changed()
                else:
                    session.rollback()
                return result
            finally:
                _work.reset(reset)

    # -- Authlib callbacks -----------------------------------------------------------------

    def query_client(self, client_id: object) -> RegisteredClient | None:
        """The registered client, whatever its state: disabled or expired is for later."""
        if not isinstance(client_id, str) or not _PRINTABLE_ID.fullmatch(client_id):
            return None
        row = ClientRepository(_current().session).by_client_id(client_id)
        return None if row is None else RegisteredClient(row)

    def authenticate_client(
        self, request: FormRequest, methods: list[str], endpoint: str = "token"
    ) -> RegisteredClient:
        """The client whose credential verified and who is in force; else ``invalid_client``.

        Replaces Authlib's loop over registered methods, whose errors each say something
        different (and whose Basic decoding can raise UnicodeDecodeError): every failure here
        is logged with its reason and answered with the same description.
        """
        attempt = _Attempt()
        try:
            client = self._verified_client(request, methods, attempt)
            # Only now: telling "disabled" or "expired" before the credential verified would
            # answer an outsider's question about someone else's client.
            now = _current().now
            if client.disabled_at is not None:
                raise ClientRefusedError("client_disabled", "The client is disabled.")
            if client.credential_expires_at <= now:
                raise ClientRefusedError("credential_expired", "The client credential expired.")
        except InvalidClientError as exc:
            # Authlib's own refusals (assertion claims, iss/sub) carry no reason code.
            reason = exc.reason if isinstance(exc, ClientRefusedError) else "assertion_invalid"
            log.info(
                "client_authentication_failed",
                endpoint=endpoint,
                auth_method=attempt.method,
                client_id=attempt.client_id,
                reason=reason,
                detail=exc.description,
            )
            raise InvalidClientError(
                status_code=401, description=CLIENT_AUTHENTICATION_FAILED
            ) from None
        request.auth_method = attempt.method
        return client

    def _verified_client(
        self, request: FormRequest, methods: list[str], attempt: _Attempt
    ) -> RegisteredClient:
        # Authlib's order is kept: an assertion, if the form carries one, wins over a Basic
        # header (some HTTP libraries add one from a .netrc without being asked).
        if PRIVATE_KEY_JWT in methods:
            attempt.method = PRIVATE_KEY_JWT
            lookup = functools.partial(self._claimed_client, attempt)
            client: RegisteredClient | None = self._private_key_jwt(lookup, request)
            if client is not None:
                return client
        authorization = request.headers.get("Authorization") or ""
        if CLIENT_SECRET_BASIC in methods and _is_basic(authorization):
            attempt.method = CLIENT_SECRET_BASIC
            client_id, secret = _basic_credentials(authorization)
            return self._secret_verified_client(client_id, secret, attempt)
        attempt.method = None
        raise ClientRefusedError("no_credentials", "The request carries no client credentials.")

    def _claimed_client(self, attempt: _Attempt, client_id: object) -> RegisteredClient:
        attempt.note_claimed(client_id)
        client = self.query_client(client_id)
        if client is None:
            raise ClientRefusedError("client_unknown", "No client has this client_id.")
        return client

    def _secret_verified_client(
        self, client_id: str, secret: str, attempt: _Attempt
    ) -> RegisteredClient:
        attempt.note_claimed(client_id)
        client = self.query_client(client_id)
        if client is None or client.auth_method != CLIENT_SECRET_BASIC:
            # The Argon2id work a real check does, so that an unknown client or one registered
            # for private_key_jwt answers no sooner than a wrong secret.
            decoy_secret_check(secret)
            if client is None:
                raise ClientRefusedError("client_unknown", "No client has this client_id.")
            raise ClientRefusedError(
                "auth_method_not_registered",
                f"The client is registered for {client.auth_method}, not client_secret_basic.",
            )
        if not client.check_client_secret(secret):
            raise ClientRefusedError("secret_mismatch", "The client secret does not match.")
        return client

    def create_oauth2_request(self, request: FormRequest) -> FormRequest:
        return request

    def handle_response(
        self, status: int, body: Any, headers: list[tuple[str, str]]
    ) -> OAuthResult:
        return OAuthResult(status=status, body=dict(body or {}), headers=list(headers))

    def save_token(self, token: dict[str, Any], request: FormRequest) -> None:
        # Tokens are self-contained JWTs: nothing to store, only to record.
        log.info(
            "token_issued",
            client_id=request.client.get_client_id(),
            scope=token.get("scope"),
            expires_in=token.get("expires_in"),
        )

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None

    # -- our own work ----------------------------------------------------------------------

    def _signing_key(self, bound: dt.datetime) -> ActiveKey:
        session = _current().session
        key = self.keys.current(session, KeyUse.TOKEN)
        self.keys.note_signed(session, key, bound)
        return key

    def record_assertion(self, client_id: str, jti: str, expires_at: dt.datetime) -> bool:
        """Remember a client assertion's jti until it expires; False if already seen.

        Committed at once and on its own: a jti is spent even if the request fails later, and
        the unique key makes two processes racing with the same assertion accept it once.
        """
        work = _current()
        engine = _engine_of(work.session)
        leeway = dt.timedelta(seconds=self.settings.token_leeway_seconds)
        try:
            with engine.begin() as connection:
                if work.now - self._last_purge >= _PURGE_INTERVAL:
                    self._last_purge = work.now
                    connection.execute(
                        delete(ClientAssertionJti).where(
                            ClientAssertionJti.expires_at < work.now - leeway
                        )
                    )
                connection.execute(
                    insert(ClientAssertionJti).values(
                        client_id=client_id, jti=jti, expires_at=expires_at + leeway
                    )
                )
        except IntegrityError:
            log.warning("client_assertion_replayed", client_id=client_id)
            return False
        return True

    def inspect_token(self, token_string: object) -> IssuedToken | None:
        """One of our tokens, still within its lifetime, with its revocation state; else None."""
        if not isinstance(token_string, str):
            return None
        work = _current()
        keys = {
            key.kid: key.import_key()
            for key in self.keys.published(work.session, KeyUse.TOKEN, now=work.now)
        }
        try:
            claims = self.verifier.verify(token_string, keys.get, work.now.timestamp())
        except TokenRejectedError:
            return None
        revoked = work.session.get(TokenRevocation, claims.jti) is not None
        client = ClientRepository(work.session).by_client_id(claims.client_id)
        disabled = client is None or client.disabled_at is not None
        return IssuedToken(claims, revoked=revoked or disabled)

    def revoke(self, token: IssuedToken) -> None:
        session = _current().session
        dialect = session.get_bind().dialect.name
        upsert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        session.execute(
            upsert(TokenRevocation)
            .values(
                jti=token.claims.jti,
                client_id=token.claims.client_id,
                expires_at=token.claims.expires,
                revoked_at=_current().now,
            )
            .on_conflict_do_nothing(index_elements=["jti"])
        )
        log.info("token_revoked", client_id=token.claims.client_id)


def _is_basic(authorization: str) -> bool:
    # The scheme is case-insensitive (RFC 9110 section 11.1).
    parts = authorization.split(None, 1)
    return bool(parts) and parts[0].lower() == "basic"


def _basic_credentials(authorization: str) -> tuple[str, str]:
    """client_id and secret of a ``Basic`` Authorization header (RFC 7617), or a refusal.

    Strict where Authlib is lenient: its decoder skips characters outside base64 and lets
    bytes that are not UTF-8 raise UnicodeDecodeError, which was a 500.
    """
    parts = authorization.split(None, 1)
    encoded = parts[1].strip() if len(parts) == 2 else ""
    try:
        decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
        client_id, colon, secret = decoded.partition(":")
        # RFC 6749 section 2.3.1: both are form-urlencoded before being joined (Authlib's
        # decoding, kept for partners that rely on it, but refusing invalid UTF-8 here too).
        client_id = unquote(client_id, errors="strict")
        secret = unquote(secret, errors="strict")
    except ValueError as exc:  # binascii.Error and UnicodeDecodeError are ValueErrors
        raise ClientRefusedError(
            "basic_credentials_malformed", "The Basic credentials are not base64 of UTF-8 text."
        ) from exc
    if not colon or not client_id or not secret:
        raise ClientRefusedError(
            "basic_credentials_malformed", "The Basic credentials need client_id:secret."
        )
    return client_id, secret


def _engine_of(session: Session) -> Engine:
    bind = session.get_bind()
    return bind if isinstance(bind, Engine) else bind.engine


def oauth_error(error: OAuth2Error) -> OAuthResult:
    status, body, headers = error()
    return OAuthResult(status=status, body=dict(body), headers=list(headers))
