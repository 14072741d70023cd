"""The authorisation server, on Authlib: client credentials for machines, nothing else.

* Grant: ``client_credentials`` only (no refresh token, no user-facing flow). The scopes
  granted are exactly those requested, each of which must be covered today by a habilitation
  in force for the client's partner; otherwise ``invalid_scope``. A request without ``scope``
  is refused too: a partner states what it needs (least privilege).
* Client authentication: ``private_key_jwt`` (RFC 7523: signed by a key of the client's
  registered JWK set, single-valued ``aud`` naming the token endpoint or the issuer,
  ``exp`` at most ``client_assertion_max_lifetime_seconds`` ahead, ``jti`` recorded and never
  accepted twice) or ``client_secret_basic`` (Argon2id-hashed secret). A client may use only
  the method it was registered with; a disabled client or an expired credential is refused.
* Revocation (RFC 7009) and introspection (RFC 7662): a client may act on its own tokens only.

Authlib is synchronous: each call runs in a worker thread with its own sync session, set in a
context variable for the callbacks Authlib makes (``query_client`` and friends). Writes that
must hold whatever happens next (a used ``jti``, the signing key's expiry bound) commit on
their own; the rest commits when the response is a success.
"""

from __future__ import annotations

import datetime as dt
import re
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

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
    habilitations_in_force,
    legal_today,
    verify_client_secret,
)
from gateway.settings import Settings

GRANT_TYPE = "client_credentials"
AUTH_METHODS = [ClientAuthMethod.PRIVATE_KEY_JWT.value, ClientAuthMethod.CLIENT_SECRET_BASIC.value]
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

    def resolve_client_public_key(self, client: RegisteredClient) -> KeySet:
        return KeySet.import_key_set(client.jwks)  # type: ignore[arg-type]

    def process_assertion_claims(self, assertion: str, resolve_key: Any) -> dict[str, Any]:
        try:
            token = jwt.decode(assertion, resolve_key, algorithms=ASSERTION_ALGORITHMS)
        except (JoseError, ValueError) as exc:
            raise _invalid_client(
                "The client assertion does not verify with the client's registered keys."
            ) from exc
        self.verify_claims(token.claims)
        return token.claims

    def verify_claims(self, claims: dict[str, Any]) -> None:
        audience = claims.get("aud")
        if isinstance(audience, list) and len(audience) == 1:
            audience = audience[0]
        if audience not in self.get_audiences():
            raise _invalid_client(
                f"The assertion aud must be the token endpoint {self._server.token_endpoint}."
            )
        expires = claims.get("exp")
        horizon = _current().now.timestamp() + self._server.assertion_horizon_seconds
        if isinstance(expires, int | float) and expires > horizon:
            raise _invalid_client(
                "The assertion lives too long: exp must be at most "
                f"{self._server.settings.client_assertion_max_lifetime_seconds} seconds ahead."
            )
        jti = claims.get("jti")
        if not isinstance(jti, str) or not _PRINTABLE_JTI.fullmatch(jti):
            raise _invalid_client("The assertion needs a jti of 1 to 255 printable characters.")
        super().verify_claims(claims)

    def validate_jti(self, claims: dict[str, Any], jti: str) -> bool:
        expires = dt.datetime.fromtimestamp(float(claims["exp"]), dt.UTC)
        return self._server.record_assertion(str(claims["sub"]), jti, expires)


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
        self.register_client_auth_method(
            ClientAuthMethod.PRIVATE_KEY_JWT.value, PrivateKeyJwt(self)
        )
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
        if not isinstance(client_id, str) or not _PRINTABLE_ID.fullmatch(client_id):
            return None
        work = _current()
        row = ClientRepository(work.session).by_client_id(client_id)
        if row is None:
            return None
        if row.disabled_at is not None:
            raise _invalid_client("The client is disabled.")
        if row.credential_expires_at <= work.now:
            raise _invalid_client(
                "The client credential has expired: ask the gateway operators for a new one."
            )
        return RegisteredClient(row)

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


def _invalid_client(description: str) -> InvalidClientError:
    return InvalidClientError(status_code=401, description=description)


def _engine_of(session: Session) -> Engine:
    bind = session.get_bind()
    return bind if isinstance(bind, Engine) else bind.engine


def oauth_error(error: OAuth2Error) -> OAuthResult:
    status, body, headers = error()
    return OAuthResult(status=status, body=dict(body), headers=list(headers))
