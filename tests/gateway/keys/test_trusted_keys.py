"""Which keys the deployment provably made: the master key vouches, not the key table.

Whoever can write ``signing_key`` can add rows or change them (no trigger guards it, the
gateway's role must write it). ``KeyStore.trusted`` keeps only keys whose private half opens
under the master key and matches the public half, with dates that Fernet authenticated.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from cryptography.fernet import Fernet
from joserfc.jwk import ECKey
from sqlalchemy import text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from gateway.cli import app
from gateway.database import Database, utcnow
from gateway.keys import KeyStore, KeyUse
from gateway.settings import Settings


def trusted_kids(db: Database, settings: Settings) -> set[str]:
    with Session(db.sync_engine) as session:
        return {key.kid for key in KeyStore(settings).trusted(session, KeyUse.AUDIT)}


def plant(db: Database, kid: str, jwk: dict[str, object], ciphertext: str) -> None:
    with db.sync_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO signing_key (kid, use, alg, public_jwk, private_key_encrypted, "
                "created_at, retired_at) VALUES (:kid, 'audit', 'ES256', :jwk, :c, :t, :t)"
            ),
            {"kid": kid, "jwk": json.dumps(jwk), "c": ciphertext, "t": utcnow()},
        )


def test_the_deployments_own_keys_are_trusted(
    session: Session, db: Database, settings: Settings
) -> None:
    store = KeyStore(settings)
    first = store.current(session, KeyUse.AUDIT)
    store.rotate(session, KeyUse.AUDIT)
    session.commit()
    second = store.current(session, KeyUse.AUDIT)
    assert trusted_kids(db, settings) == {first.kid, second.kid}


@pytest.mark.parametrize("ciphertext", ["none", "other master key", "own master key, other key"])
def test_a_key_row_made_without_the_master_key_is_not_trusted(
    session: Session, db: Database, settings: Settings, ciphertext: str
) -> None:
    """Only the master key makes a row the verifier will trust: a database thief has none."""
    real = KeyStore(settings).current(session, KeyUse.AUDIT)
    planted = ECKey.generate_key("P-256", private=True, auto_kid=False)
    pem = planted.as_pem(private=True)
    made = {
        "none": "none",
        "other master key": Fernet(Fernet.generate_key()).encrypt(pem).decode(),
        # A genuine ciphertext of the deployment (the real key's), under a planted public key.
        "own master key, other key": session.execute(
            text("SELECT private_key_encrypted FROM signing_key WHERE kid = :k"), {"k": real.kid}
        ).scalar_one(),
    }[ciphertext]
    plant(db, planted.thumbprint(), dict(planted.as_dict(private=False)), made)
    assert trusted_kids(db, settings) == {real.kid}


def test_a_real_key_whose_public_half_was_swapped_is_no_longer_trusted(
    session: Session, db: Database, settings: Settings
) -> None:
    real = KeyStore(settings).current(session, KeyUse.AUDIT)
    other = ECKey.generate_key("P-256", private=True, auto_kid=False)
    with db.sync_engine.begin() as conn:
        conn.execute(
            text("UPDATE signing_key SET public_jwk = :jwk WHERE kid = :k"),
            {"jwk": json.dumps(dict(other.as_dict(private=False))), "k": real.kid},
        )
    assert trusted_kids(db, settings) == set()


def test_a_key_counts_as_retired_once_its_successor_was_made_whatever_the_table_says(
    session: Session, db: Database, settings: Settings
) -> None:
    """Moving ``retired_at`` forward (or clearing it) must not let a leaked old key sign on."""
    store = KeyStore(settings)
    old = store.current(session, KeyUse.AUDIT)
    store.rotate(session, KeyUse.AUDIT)
    session.commit()
    with db.sync_engine.begin() as conn:
        conn.execute(
            text("UPDATE signing_key SET retired_at = :t WHERE kid = :k"),
            {"t": utcnow() + dt.timedelta(days=3650), "k": old.kid},
        )
    with Session(db.sync_engine) as fresh:
        keys = {key.kid: key for key in store.trusted(fresh, KeyUse.AUDIT)}
    retired_at = keys[old.kid].retired_at
    assert retired_at is not None
    # At the latest the end of the second in which the successor was made (Fernet's stamp).
    assert retired_at <= utcnow() + dt.timedelta(seconds=1)
    assert keys[old.kid].created_at <= retired_at


@pytest.fixture
def keys_cli(cli_environment: None) -> CliRunner:
    return CliRunner()


def test_export_prints_the_trusted_audit_keys_with_their_retirement(
    session: Session, db: Database, settings: Settings, keys_cli: CliRunner
) -> None:
    store = KeyStore(settings)
    old = store.current(session, KeyUse.AUDIT)
    store.rotate(session, KeyUse.AUDIT)
    session.commit()
    planted = ECKey.generate_key("P-256", private=True, auto_kid=False)
    plant(db, planted.thumbprint(), dict(planted.as_dict(private=False)), "none")
    result = keys_cli.invoke(app, ["keys", "export", "--use", "audit"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    keys = {key["kid"]: key for key in json.loads(result.stdout)["keys"]}
    assert set(keys) == trusted_kids(db, settings)
    assert planted.thumbprint() not in keys
    assert "retired_at" in keys[old.kid]
    assert all("d" not in key for key in keys.values()), "a private half was exported"
