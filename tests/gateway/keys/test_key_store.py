"""Signing keys: one current key per use, private halves encrypted, publication windows."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gateway.database import Database, utcnow
from gateway.keys.models import KeyUse, SigningKey
from gateway.keys.store import KeyNotFoundError, KeyStore
from gateway.secrets import SecretUnreadableError
from gateway.settings import Settings


def test_the_first_key_of_a_use_is_made_on_demand_and_then_reused(
    session: Session, settings: Settings
) -> None:
    store = KeyStore(settings)
    first = store.current(session, KeyUse.TOKEN)
    again = KeyStore(settings).current(session, KeyUse.TOKEN)
    audit = store.current(session, KeyUse.AUDIT)
    assert first.kid == again.kid
    assert audit.kid != first.kid
    assert first.alg == "ES256"


def test_two_processes_creating_the_first_key_at_once_end_up_with_one(
    db: Database, settings: Settings
) -> None:
    one, other = KeyStore(settings), KeyStore(settings)
    made = one._create_first(db.sync_engine, KeyUse.CONSENT)
    # The other process read "no key" before the first committed; its insert loses the race.
    raced = other._create_first(db.sync_engine, KeyUse.CONSENT)
    assert raced.kid == made.kid


def test_the_database_refuses_two_current_keys_of_one_use(
    session: Session, settings: Settings
) -> None:
    store = KeyStore(settings)
    store.current(session, KeyUse.TOKEN)
    session.add(store._new_row(KeyUse.TOKEN))
    with pytest.raises(IntegrityError):
        session.flush()


def test_private_keys_are_encrypted_at_rest_with_the_master_key(
    session: Session, settings: Settings
) -> None:
    store = KeyStore(settings)
    key = store.current(session, KeyUse.ATTESTATION)
    row = session.scalar(select(SigningKey).where(SigningKey.kid == key.kid))
    assert row is not None
    assert "PRIVATE KEY" not in row.private_key_encrypted
    assert "d" not in row.public_jwk

    other_master = settings.model_copy(
        update={"master_key": SecretStr(Fernet.generate_key().decode())}
    )
    with pytest.raises(SecretUnreadableError):
        KeyStore(other_master).current(session, KeyUse.ATTESTATION)


def test_a_signature_of_one_use_never_verifies_as_another(
    session: Session, settings: Settings
) -> None:
    store = KeyStore(settings)
    audit_key = store.current(session, KeyUse.AUDIT)
    signed = audit_key.sign_compact(b'{"checkpoint": 1}', {"typ": "checkpoint+jws"})
    header, payload = store.verify_compact(session, signed, KeyUse.AUDIT)
    assert payload == b'{"checkpoint": 1}'
    assert header["kid"] == audit_key.kid
    with pytest.raises(KeyNotFoundError):
        store.verify_compact(session, signed, KeyUse.TOKEN)


def test_permanent_uses_stay_published_after_rotation(session: Session, settings: Settings) -> None:
    store = KeyStore(settings)
    old = store.current(session, KeyUse.CONSENT)
    new = store.rotate(session, KeyUse.CONSENT)
    far_future = utcnow() + dt.timedelta(days=3650)
    published = {key.kid for key in store.published(session, KeyUse.CONSENT, now=far_future)}
    assert published == {old.kid, new.kid}


def test_a_token_key_is_published_until_the_bound_noted_before_signing(
    db: Database, settings: Settings
) -> None:
    store = KeyStore(settings)
    now = utcnow()
    with db.sync_session() as session, session.begin():
        key = store.current(session, KeyUse.TOKEN)
        store.note_signed(session, key, now + dt.timedelta(minutes=10))
        store.rotate(session, KeyUse.TOKEN)
    leeway = dt.timedelta(seconds=settings.token_leeway_seconds)
    with db.sync_session() as session:
        during = store.published(session, KeyUse.TOKEN, now=now + dt.timedelta(minutes=10))
        after = store.published(session, KeyUse.TOKEN, now=now + dt.timedelta(minutes=12) + leeway)
    assert key.kid in {k.kid for k in during}
    assert key.kid not in {k.kid for k in after}


def test_noting_the_same_bound_twice_writes_once(
    db: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = KeyStore(settings)
    bound = utcnow() + dt.timedelta(minutes=10)
    with db.sync_session() as session:
        key = store.current(session, KeyUse.TOKEN)
        store.note_signed(session, key, bound)
        monkeypatch.setattr(
            "gateway.keys.store._engine_of",
            lambda _session: (_ for _ in ()).throw(AssertionError("no second write")),
        )
        store.note_signed(session, key, bound - dt.timedelta(seconds=5))


def test_the_jwks_document_holds_public_members_only(session: Session, settings: Settings) -> None:
    store = KeyStore(settings)
    for use in KeyUse:
        store.current(session, use)
    document = KeyStore.jwks(store.published(session))
    assert len(document["keys"]) == len(KeyUse)
    for jwk in document["keys"]:
        assert set(jwk) == {"kty", "crv", "x", "y", "kid", "alg", "use"}
