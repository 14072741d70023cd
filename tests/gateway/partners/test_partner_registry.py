"""The partner registry's rules: identifiers, credentials, habilitation dates and scopes."""

from __future__ import annotations

import datetime as dt
import json
import warnings

import pytest
from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey
from sqlalchemy.orm import Session

from gateway.database import utcnow
from gateway.errors import ConflictError, GatewayError, NotFoundError, UnprocessableError
from gateway.identifiers import siren_with_checksum, siret_with_checksum
from gateway.partners import service
from gateway.partners.models import Habilitation
from gateway.settings import Settings

TODAY = dt.date(2026, 6, 15)


def _siret(n: int = 1) -> str:
    return siret_with_checksum(siren_with_checksum(f"{21000000 + n:08d}") + "0001")


def _public_jwks(*keys: object) -> dict[str, object]:
    return {"keys": [key.as_dict(private=False) for key in keys]}  # type: ignore[attr-defined]


def _small_rsa_key() -> RSAKey:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SecurityWarning)
        return RSAKey.generate_key(1024, private=True)


@pytest.fixture
def caf(session: Session) -> None:
    service.add_partner(session, name="CAF", siret=_siret(), kind="caf")
    session.commit()


def test_a_partner_is_added_with_a_normalised_siret(session: Session) -> None:
    siret = _siret()
    spaced = f"{siret[:3]} {siret[3:6]} {siret[6:9]} {siret[9:]}"
    partner = service.add_partner(session, name=" CAF ", siret=spaced, kind="caf")
    assert (partner.name, partner.siret, partner.kind) == ("CAF", siret, "caf")


def test_bad_partner_input_is_refused_with_a_stable_code(session: Session) -> None:
    for name, siret, kind, code in (
        ("CAF", "12345678901234", "caf", "partner.siret_invalid"),
        ("CAF", "123", "caf", "partner.siret_invalid"),
        ("CAF", _siret(), "bank", "partner.kind_invalid"),
        ("", _siret(), "caf", "partner.name_invalid"),
        ("x" * 101, _siret(), "caf", "partner.name_invalid"),
        ("CA\x00F", _siret(), "caf", "partner.name_invalid"),
    ):
        with pytest.raises(UnprocessableError) as caught:
            service.add_partner(session, name=name, siret=siret, kind=kind)
        assert caught.value.code == code, (name, siret, kind)
        assert siret not in caught.value.detail


def test_names_and_sirets_are_unique(session: Session, caf: None) -> None:
    with pytest.raises(ConflictError, match="name"):
        service.add_partner(session, name="CAF", siret=_siret(2), kind="caf")
    with pytest.raises(ConflictError, match="SIRET"):
        service.add_partner(session, name="CAF 2", siret=_siret(), kind="caf")


@pytest.mark.parametrize(
    "key",
    [
        ECKey.generate_key("P-256", private=True),
        ECKey.generate_key("P-384", private=True),
        OKPKey.generate_key("Ed25519", private=True),
        RSAKey.generate_key(2048, private=True),
    ],
    ids=["p256", "p384", "ed25519", "rsa2048"],
)
def test_public_signing_keys_are_accepted(key: object) -> None:
    stored = service.parse_public_jwks(json.dumps(_public_jwks(key)))
    assert "d" not in stored["keys"][0]


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        ({"keys": [ECKey.generate_key("P-256", private=True).as_dict(private=True)]}, "private"),
        ({"keys": [OctKey.generate_key(256).as_dict(private=True)]}, "Symmetric"),
        ({"keys": [_small_rsa_key().as_dict(private=False)]}, "2048"),
        ({"keys": [{**ECKey.generate_key("P-256").as_dict(private=False), "use": "enc"}]}, "sig"),
        ({"keys": []}, "non-empty"),
        ({"kty": "EC"}, "non-empty"),
        ({"keys": [{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}]}, "cannot be read"),
        (
            _public_jwks(ECKey.generate_key("P-256"), ECKey.generate_key("P-256")),
            "kid",
        ),
    ],
    ids=["private", "oct", "rsa1024", "enc", "empty", "not-a-set", "bad-point", "no-kids"],
)
def test_unsafe_or_unusable_jwks_are_refused(document: dict[str, object], fragment: str) -> None:
    if fragment == "kid":
        for key in document["keys"]:  # type: ignore[attr-defined]
            key.pop("kid", None)
    with pytest.raises(UnprocessableError) as caught:
        service.parse_public_jwks(document)
    assert caught.value.code == "client.jwks_invalid"
    assert fragment in caught.value.detail


def test_a_jwks_client_is_registered_for_private_key_jwt(
    session: Session, settings: Settings, caf: None
) -> None:
    jwks = _public_jwks(ECKey.generate_key("P-256", private=True))
    created = service.create_client(session, settings, partner_name="CAF", jwks=json.dumps(jwks))
    assert created.secret is None
    assert created.client.auth_method == "private_key_jwt"
    assert created.client.secret_hash is None


def test_a_client_gets_exactly_one_credential(
    session: Session, settings: Settings, caf: None
) -> None:
    jwks = _public_jwks(ECKey.generate_key("P-256", private=True))
    for kwargs in ({}, {"jwks": jwks, "secret": True}):
        with pytest.raises(UnprocessableError) as caught:
            service.create_client(session, settings, partner_name="CAF", **kwargs)  # type: ignore[arg-type]
        assert caught.value.code == "client.credential_invalid"


def test_a_secret_is_returned_once_and_only_its_hash_is_kept(
    session: Session, settings: Settings, caf: None
) -> None:
    created = service.create_client(session, settings, partner_name="CAF", secret=True)
    assert created.secret is not None
    assert len(created.secret) >= 40
    stored = created.client.secret_hash or ""
    assert stored.startswith("$argon2id$")
    assert created.secret not in stored
    assert service.verify_client_secret(created.client, created.secret)
    assert not service.verify_client_secret(created.client, created.secret[:-1] + "x")


def test_credentials_expire_after_the_configured_lifetime_by_default(
    session: Session, settings: Settings, caf: None
) -> None:
    now = utcnow()
    created = service.create_client(session, settings, partner_name="CAF", secret=True, now=now)
    lifetime = created.client.credential_expires_at - now
    assert lifetime == dt.timedelta(days=settings.client_credential_lifetime_days)
    with pytest.raises(UnprocessableError, match="later"):
        service.create_client(
            session, settings, partner_name="CAF", secret=True, expires_at=now, now=now
        )


def test_the_expiry_warning_window_is_thirty_days(settings: Settings) -> None:
    now = utcnow()
    assert service.credential_expires_soon(now + dt.timedelta(days=29), settings, now)
    assert not service.credential_expires_soon(now + dt.timedelta(days=31), settings, now)
    assert not service.credential_expires_soon(now - dt.timedelta(days=1), settings, now)


def test_disabling_is_idempotent_and_unknown_clients_are_not_found(
    session: Session, settings: Settings, caf: None
) -> None:
    client = service.create_client(session, settings, partner_name="CAF", secret=True).client
    first = service.disable_client(session, client.client_id).disabled_at
    again = service.disable_client(session, client.client_id).disabled_at
    assert first is not None
    assert first == again
    with pytest.raises(NotFoundError):
        service.disable_client(session, "gw-nobody")


def _grant(session: Session, **overrides: object) -> Habilitation:
    arguments: dict[str, object] = {
        "partner_name": "CAF",
        "scope": "turnover:read",
        "purposes": ["RSA_INSTRUCTION", "PRIME_ACTIVITE"],
        "legal_basis": "CSS art. L. 114-8",
        "today": TODAY,
        **overrides,
    }
    return service.grant_habilitation(session, **arguments)  # type: ignore[arg-type]


def test_a_habilitation_starts_today_by_default_and_is_in_force_through_its_last_day(
    session: Session, caf: None
) -> None:
    habilitation = _grant(session, valid_until=dt.date(2026, 12, 31), consent_required=True)
    assert habilitation.valid_from_date == TODAY
    assert habilitation.consent_required
    assert habilitation.purposes == ["RSA_INSTRUCTION", "PRIME_ACTIVITE"]
    assert habilitation.in_force_on(dt.date(2026, 12, 31))
    assert not habilitation.in_force_on(dt.date(2027, 1, 1))
    assert not habilitation.in_force_on(dt.date(2026, 6, 14))


def test_bad_habilitations_are_refused(session: Session, caf: None) -> None:
    for overrides, code in (
        ({"scope": "admin:all"}, "habilitation.scope_unknown"),
        ({"purposes": []}, "habilitation.purposes_missing"),
        ({"purposes": ["has space"]}, "habilitation.purpose_invalid"),
        ({"legal_basis": "  "}, "habilitation.legal_basis_missing"),
        ({"valid_until": dt.date(2026, 1, 1)}, "habilitation.dates_invalid"),
        ({"rate_limit_per_minute": 0}, "habilitation.rate_limit_invalid"),
        ({"partner_name": "Nobody"}, "partner.not_found"),
    ):
        with pytest.raises(GatewayError) as caught:
            _grant(session, **overrides)
        assert caught.value.code == code, overrides


def test_in_force_means_unrevoked_and_within_dates(session: Session, caf: None) -> None:
    current = _grant(session)
    _grant(session, scope="status:read", valid_from=dt.date(2027, 1, 1))
    _grant(session, scope="cfp:read", valid_from=dt.date(2025, 1, 1), valid_until=TODAY)
    revoked = _grant(session, scope="acre:read")
    service.revoke_habilitation(session, revoked.id)
    partner = service.get_partner(session, "CAF")
    in_force = service.habilitations_in_force(session, partner.id, TODAY)
    assert {h.scope for h in in_force} == {"turnover:read", "cfp:read"}
    assert current in in_force


def test_revoking_by_partner_and_scope_ends_every_one_of_them(session: Session, caf: None) -> None:
    _grant(session)
    _grant(session, purposes=["OTHER"])
    revoked = service.revoke_habilitations_of(session, partner_name="CAF", scope="turnover:read")
    assert len(revoked) == 2
    assert all(h.revoked_at is not None for h in revoked)
    with pytest.raises(NotFoundError):
        service.revoke_habilitations_of(session, partner_name="CAF", scope="turnover:read")


def test_legal_today_is_the_date_in_france(settings: Settings) -> None:
    late_evening_utc = dt.datetime(2026, 12, 31, 23, 30, tzinfo=dt.UTC)
    assert service.legal_today(settings, late_evening_utc) == dt.date(2027, 1, 1)
