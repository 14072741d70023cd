"""Operations on the partner registry, shared by the CLI and the operators' console.

Services validate and change rows; they never commit (the caller owns the transaction) and
raise :class:`~gateway.errors.GatewayError` subclasses with stable codes.

Client credentials: a client holds either a public JWK set (``private_key_jwt``, preferred:
the gateway never holds anything that could impersonate the partner) or a random secret
(``client_secret_basic``) of which only an Argon2id hash is stored; the secret is shown once.
Both expire (``credential_expires_at``); the token endpoint warns a partner in advance.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
import secrets
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from joserfc.errors import JoseError, SecurityWarning
from joserfc.jwk import ECKey, OKPKey, RSAKey
from sqlalchemy.orm import Session

from connectors.registry import VERSIONS
from gateway.audit.schemas import LEGAL_BASIS_LENGTH as LEGAL_BASIS_MAX_LENGTH
from gateway.database import utcnow
from gateway.errors import ConflictError, NotFoundError, UnprocessableError
from gateway.identifiers import InvalidIdentifierError, parse_siret, token_not_nir_shaped
from gateway.partners.models import (
    ClientAuthMethod,
    Habilitation,
    OAuthClient,
    Partner,
    PartnerKind,
    Scope,
)
from gateway.partners.repository import (
    ClientRepository,
    HabilitationRepository,
    PartnerRepository,
)
from gateway.settings import Settings

# OWASP's Argon2id baseline (19 MiB, 2 passes): the secrets are random, so the hash guards a
# database dump rather than weak passwords, and it must stay cheap enough for a token request.
_hasher = PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)

_NAME = re.compile(r"^[^\x00-\x1f\x7f]{1,100}$")
_PURPOSE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
_CLIENT_KEY_CURVES = {"EC": {"P-256", "P-384", "P-521"}, "OKP": {"Ed25519"}}
_MIN_RSA_BITS = 2048
_MAX_CLIENT_KEYS = 10


@dataclass(frozen=True, slots=True)
class CreatedClient:
    client: OAuthClient
    secret: str | None


# -- partners ------------------------------------------------------------------------------


def add_partner(session: Session, *, name: str, siret: str, kind: str) -> Partner:
    name = name.strip()
    if not _NAME.match(name):
        raise UnprocessableError("partner.name_invalid", "A partner name has 1 to 100 characters.")
    try:
        canonical_siret = parse_siret(siret)
    except InvalidIdentifierError as exc:
        raise UnprocessableError("partner.siret_invalid", exc.reason) from exc
    try:
        partner_kind = PartnerKind(kind)
    except ValueError as exc:
        allowed = ", ".join(member.value for member in PartnerKind)
        raise UnprocessableError(
            "partner.kind_invalid", f"Kind must be one of: {allowed}."
        ) from exc
    partners = PartnerRepository(session)
    if partners.by_name(name) is not None:
        raise ConflictError("partner.name_taken", "A partner with this name already exists.")
    if partners.by_siret(canonical_siret) is not None:
        raise ConflictError("partner.siret_taken", "A partner with this SIRET already exists.")
    return partners.add(Partner(name=name, siret=canonical_siret, kind=partner_kind.value))


def list_partners(session: Session) -> Sequence[Partner]:
    return PartnerRepository(session).all()


def get_partner(session: Session, name: str) -> Partner:
    partner = PartnerRepository(session).by_name(name.strip())
    if partner is None:
        raise NotFoundError("partner.not_found", "No partner has this name.")
    return partner


# -- clients -------------------------------------------------------------------------------


def create_client(
    session: Session,
    settings: Settings,
    *,
    partner_name: str,
    jwks: Mapping[str, Any] | str | bytes | None = None,
    secret: bool = False,
    expires_at: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> CreatedClient:
    """Register a client for a partner with exactly one credential: ``jwks`` or ``secret``."""
    if (jwks is None) == (not secret):
        raise UnprocessableError(
            "client.credential_invalid", "Give either a public JWK set or ask for a secret."
        )
    now = now or utcnow()
    if expires_at is None:
        expires_at = now + dt.timedelta(days=settings.client_credential_lifetime_days)
    if expires_at <= now:
        raise UnprocessableError("client.expiry_invalid", "A credential must expire later.")
    partner = get_partner(session, partner_name)
    client = OAuthClient(
        client_id=token_not_nir_shaped(lambda: "gw-" + secrets.token_hex(12)),
        partner=partner,
        credential_expires_at=expires_at,
    )
    issued_secret: str | None = None
    if jwks is not None:
        client.auth_method = ClientAuthMethod.PRIVATE_KEY_JWT.value
        client.jwks = parse_public_jwks(jwks)
    else:
        issued_secret = secrets.token_urlsafe(32)
        client.auth_method = ClientAuthMethod.CLIENT_SECRET_BASIC.value
        client.secret_hash = _hasher.hash(issued_secret)
    ClientRepository(session).add(client)
    return CreatedClient(client=client, secret=issued_secret)


def disable_client(session: Session, client_id: str, now: dt.datetime | None = None) -> OAuthClient:
    """Stop a client: no new token, and its tokens stop working. Idempotent."""
    client = get_client(session, client_id)
    if client.disabled_at is None:
        client.disabled_at = now or utcnow()
        session.flush()
    return client


def get_client(session: Session, client_id: str) -> OAuthClient:
    client = ClientRepository(session).by_client_id(client_id.strip())
    if client is None:
        raise NotFoundError("client.not_found", "No client has this client_id.")
    return client


def list_clients(session: Session, partner_name: str | None = None) -> Sequence[OAuthClient]:
    partner_id = get_partner(session, partner_name).id if partner_name else None
    return ClientRepository(session).all(partner_id)


def credential_expires_soon(expires_at: dt.datetime, settings: Settings, now: dt.datetime) -> bool:
    """Whether a credential ends within the warning window (and has not ended yet)."""
    window = dt.timedelta(days=settings.credential_expiry_warning_days)
    return now < expires_at <= now + window


def verify_client_secret(client: OAuthClient, presented: str) -> bool:
    if client.secret_hash is None:
        return False
    try:
        return _hasher.verify(client.secret_hash, presented)
    except (VerificationError, InvalidHashError):
        return False


@functools.cache
def _decoy_client() -> OAuthClient:
    # Never added to a session: only its hash is read, by the check a real client's goes
    # through, so the decoy carries the same Argon2id parameters.
    return OAuthClient(secret_hash=_hasher.hash(secrets.token_urlsafe(32)))


def decoy_secret_check(presented: str) -> None:
    """Spend one Argon2id verification, as checking a real client's secret does: refusing an
    unknown client at once would tell an outsider which client_ids exist."""
    verify_client_secret(_decoy_client(), presented)


def parse_public_jwks(raw: Mapping[str, Any] | str | bytes) -> dict[str, Any]:
    """Check a partner's JWK set: public, asymmetric, signature keys only; return it as stored.

    Private or symmetric material is refused outright: the gateway must never hold anything
    that could sign as the partner.
    """
    try:
        document = json.loads(raw) if isinstance(raw, str | bytes) else dict(raw)
    except ValueError as exc:
        raise _jwks_error("The JWK set is not valid JSON.") from exc
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list) or not keys:
        raise _jwks_error('A JWK set is an object with a non-empty "keys" array.')
    if len(keys) > _MAX_CLIENT_KEYS:
        raise _jwks_error(f"A client registers at most {_MAX_CLIENT_KEYS} keys.")
    checked = [_public_signing_key(key) for key in keys]
    kids = [key.get("kid") for key in checked]
    if len(checked) > 1 and (None in kids or len(set(kids)) != len(kids)):
        raise _jwks_error('With several keys, each needs its own "kid".')
    return {"keys": checked}


def _public_signing_key(jwk: object) -> dict[str, Any]:
    if not isinstance(jwk, dict):
        raise _jwks_error("Each key of the set must be a JSON object.")
    kty = jwk.get("kty")
    if kty == "oct":
        raise _jwks_error("Symmetric keys are refused: register a public key.")
    if "d" in jwk or any(member in jwk for member in ("p", "q", "dp", "dq", "qi", "oth")):
        raise _jwks_error("The set holds private key material: register the public half only.")
    if jwk.get("use", "sig") != "sig":
        raise _jwks_error('A client key must be for signatures ("use": "sig").')
    supported = (kty == "RSA") or jwk.get("crv") in _CLIENT_KEY_CURVES.get(str(kty), set())
    if not supported:
        raise _jwks_error("Supported keys: EC P-256/384/521, Ed25519, RSA >= 2048 bits.")
    try:
        key: RSAKey | ECKey | OKPKey
        if kty == "RSA":
            with warnings.catch_warnings():
                # Its size is checked below, with an error the operator sees.
                warnings.simplefilter("ignore", SecurityWarning)
                key = RSAKey.import_key(jwk)
        elif kty == "EC":
            key = ECKey.import_key(jwk)
        else:
            key = OKPKey.import_key(jwk)
    except (JoseError, ValueError, TypeError) as exc:
        raise _jwks_error("A key of the set cannot be read.") from exc
    if isinstance(key, RSAKey) and key.raw_value.key_size < _MIN_RSA_BITS:
        raise _jwks_error(f"RSA keys need at least {_MIN_RSA_BITS} bits.")
    return {name: value for name, value in jwk.items() if name != "key_ops"}


def _jwks_error(detail: str) -> UnprocessableError:
    return UnprocessableError("client.jwks_invalid", detail)


# -- habilitations -------------------------------------------------------------------------


def grant_habilitation(
    session: Session,
    *,
    partner_name: str,
    scope: str,
    purposes: Sequence[str],
    legal_basis: str,
    consent_required: bool = False,
    valid_from: dt.date | None = None,
    valid_until: dt.date | None = None,
    rate_limit_per_minute: int | None = None,
    released_fields: Sequence[str] | None = None,
    today: dt.date,
) -> Habilitation:
    try:
        checked_scope = Scope(scope)
    except ValueError as exc:
        allowed = ", ".join(member.value for member in Scope)
        raise UnprocessableError(
            "habilitation.scope_unknown", f"Scope must be one of: {allowed}."
        ) from exc
    codes = list(dict.fromkeys(code.strip() for code in purposes))
    if not codes:
        raise UnprocessableError(
            "habilitation.purposes_missing", "A habilitation lists at least one purpose code."
        )
    if not all(_PURPOSE.match(code) for code in codes):
        raise UnprocessableError(
            "habilitation.purpose_invalid",
            "A purpose code has 1 to 64 letters, digits or _ . : - characters.",
        )
    basis = legal_basis.strip()
    if not basis or "\x00" in basis:
        raise UnprocessableError(
            "habilitation.legal_basis_missing", "A habilitation cites its legal basis."
        )
    if len(basis) > LEGAL_BASIS_MAX_LENGTH:
        raise UnprocessableError(
            "habilitation.legal_basis_too_long",
            f"Cite the legal basis in at most {LEGAL_BASIS_MAX_LENGTH} characters.",
        )
    start = valid_from or today
    if valid_until is not None and valid_until < start:
        raise UnprocessableError(
            "habilitation.dates_invalid", "The end date comes before the start date."
        )
    if rate_limit_per_minute is not None and rate_limit_per_minute < 1:
        raise UnprocessableError(
            "habilitation.rate_limit_invalid", "A rate limit is a positive number per minute."
        )
    fields = _released_fields(checked_scope.value, released_fields)
    partner = get_partner(session, partner_name)
    return HabilitationRepository(session).add(
        Habilitation(
            partner=partner,
            scope=checked_scope.value,
            purposes=codes,
            legal_basis=basis,
            consent_required=consent_required,
            valid_from_date=start,
            valid_until_date=valid_until,
            rate_limit_per_minute=rate_limit_per_minute,
            released_fields=fields,
        )
    )


def _released_fields(scope: str, fields: Sequence[str] | None) -> list[str] | None:
    """The fields a habilitation covers, each one a connector of this scope may withhold."""
    if not fields:
        return None
    releasable = {
        field for version in VERSIONS if version.scope == scope for field in version.releasable
    }
    unknown = sorted(set(fields) - releasable)
    if unknown:
        raise UnprocessableError(
            "habilitation.field_unknown",
            f"Not a releasable field of {scope}: {', '.join(unknown)}; "
            f"releasable: {', '.join(sorted(releasable)) or 'none'}.",
        )
    return sorted(set(fields))


def revoke_habilitation(
    session: Session, habilitation_id: int, now: dt.datetime | None = None
) -> Habilitation:
    """End a habilitation now, whatever its dates. Idempotent."""
    habilitation = HabilitationRepository(session).by_id(habilitation_id)
    if habilitation is None:
        raise NotFoundError("habilitation.not_found", "No habilitation has this id.")
    if habilitation.revoked_at is None:
        habilitation.revoked_at = now or utcnow()
        session.flush()
    return habilitation


def revoke_habilitations_of(
    session: Session, *, partner_name: str, scope: str, now: dt.datetime | None = None
) -> Sequence[Habilitation]:
    """End every unrevoked habilitation of a partner for a scope."""
    partner = get_partner(session, partner_name)
    found = HabilitationRepository(session).unrevoked(partner.id, scope)
    if not found:
        raise NotFoundError(
            "habilitation.not_found", "This partner holds no unrevoked habilitation for this scope."
        )
    moment = now or utcnow()
    for habilitation in found:
        habilitation.revoked_at = moment
    session.flush()
    return found


def list_habilitations(session: Session, partner_name: str | None = None) -> Sequence[Habilitation]:
    partner_id = get_partner(session, partner_name).id if partner_name else None
    return HabilitationRepository(session).all(partner_id)


def habilitations_in_force(
    session: Session, partner_id: int, today: dt.date
) -> Sequence[Habilitation]:
    return HabilitationRepository(session).in_force(today, partner_id)


def legal_today(settings: Settings, now: dt.datetime | None = None) -> dt.date:
    """Today's date where habilitations are decided: a right granted until 31 December ends
    at midnight in France, not in UTC."""
    return (now or utcnow()).astimezone(ZoneInfo(settings.legal_timezone)).date()
