"""Invariant 2 against whoever holds the database: checkpoints verify only with trusted keys.

The attacker holds the database but not the master key. Trusting any "audit" key found in
``signing_key`` let them add (or swap in) a public key of their own, rewrite a record, relink
the chain and re-sign every later checkpoint: ``verify`` said intact.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from audit_factories import Cli, as_attacker, rewrite_and_resign, write_sealed
from joserfc import jws
from joserfc.jwk import ECKey
from sqlalchemy import text
from sqlalchemy.orm import Session

from gateway.audit import PinnedKeysVerifier, verify_trail
from gateway.audit.signing import gateway_checkpoint_signer
from gateway.database import Database, utcnow
from gateway.keys import KeyStore, KeyUse
from gateway.keys.store import pinned_jwks
from gateway.settings import Settings

SEALED = ("audit_record", "audit_subject", "audit_seal", "audit_checkpoint")


def attacker_key() -> tuple[ECKey, str]:
    key = ECKey.generate_key("P-256", private=True, auto_kid=False)
    return key, key.thumbprint()


def signed_by(key: ECKey, kid: str):  # type: ignore[no-untyped-def]
    def sign(payload: bytes) -> tuple[str, str]:
        header = {"alg": "ES256", "kid": kid}
        return kid, jws.serialize_compact(header, payload, key, algorithms=["ES256"])

    return sign


@pytest.fixture
def sealed(db: Database, settings: Settings) -> list[int]:
    """Ten records under the gateway's own audit key, checkpoints at 5 and 10."""
    return write_sealed(db, gateway_checkpoint_signer(settings, db.sync_engine), 10, batches=2)


def test_invariant_2_a_chain_resigned_with_a_key_planted_in_the_database_is_caught(
    db: Database, settings: Settings, sealed: list[int]
) -> None:
    key, kid = attacker_key()
    with db.sync_engine.begin() as conn:  # no trigger, and the gateway's role may insert keys
        conn.execute(
            text(
                "INSERT INTO signing_key (kid, use, alg, public_jwk, private_key_encrypted, "
                "created_at, retired_at) VALUES (:kid, 'audit', 'ES256', :jwk, 'none', :t, :t)"
            ),
            {"kid": kid, "jwk": json.dumps(dict(key.as_dict(private=False))), "t": utcnow()},
        )
    with as_attacker(db, *SEALED) as conn:
        rewrite_and_resign(conn, 3, 10, signed_by(key, kid))
    report = verify_trail(db.sync_engine, gateway_checkpoint_signer(settings, db.sync_engine))
    assert report.problem is not None, "a chain re-signed with a planted key verifies"
    assert (report.problem.code, report.problem.position) == ("checkpoint.bad_signature", 5)


def test_a_chain_resigned_after_swapping_the_public_half_of_the_real_key_is_caught(
    db: Database, settings: Settings, sealed: list[int]
) -> None:
    key, _ = attacker_key()
    real = gateway_checkpoint_signer(settings, db.sync_engine).key_id
    with db.sync_engine.begin() as conn:
        conn.execute(
            text("UPDATE signing_key SET public_jwk = :jwk WHERE kid = :kid"),
            {"jwk": json.dumps(dict(key.as_dict(private=False))), "kid": real},
        )
    with as_attacker(db, *SEALED) as conn:
        rewrite_and_resign(conn, 3, 10, signed_by(key, real))
    report = verify_trail(db.sync_engine, gateway_checkpoint_signer(settings, db.sync_engine))
    assert report.problem is not None
    assert report.problem.code == "checkpoint.bad_signature"


def export(db: Database, settings: Settings, path: Path) -> Path:
    with Session(db.sync_engine) as session:
        keys = KeyStore(settings).trusted(session, KeyUse.AUDIT)
    path.write_text(json.dumps(pinned_jwks(keys)), encoding="utf-8")
    return path


def test_pinned_keys_verify_without_the_master_key(
    db: Database, settings: Settings, sealed: list[int], tmp_path: Path
) -> None:
    pinned = PinnedKeysVerifier.from_file(export(db, settings, tmp_path / "audit.jwks"))
    assert verify_trail(db.sync_engine, pinned).ok
    key, kid = attacker_key()
    with as_attacker(db, *SEALED) as conn:
        rewrite_and_resign(conn, 3, 10, signed_by(key, kid))
    report = verify_trail(db.sync_engine, pinned)
    assert report.problem is not None
    assert report.problem.code == "checkpoint.bad_signature"


def test_verify_takes_pinned_keys_on_the_command_line(
    db: Database, settings: Settings, sealed: list[int], tmp_path: Path, cli: Cli
) -> None:
    pinned = export(db, settings, tmp_path / "audit.jwks")
    result = cli("verify", "--trusted-keys", str(pinned), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["ok"] is True
    stranger = tmp_path / "stranger.jwks"
    key, kid = attacker_key()
    stranger.write_text(json.dumps({"keys": [{**key.as_dict(private=False), "kid": kid}]}))
    result = cli("verify", "--trusted-keys", str(stranger), "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["problem"]["code"] == "checkpoint.bad_signature"


@pytest.mark.parametrize(
    "content",
    ["not json", '{"keys": "none"}', '{"keys": [{"kty": "EC"}]}', '{"keys": []}', None],
)
def test_an_unusable_pinned_key_file_is_refused_without_a_traceback(
    tmp_path: Path, cli: Cli, content: str | None
) -> None:
    path = tmp_path / "keys.jwks"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    result = cli("verify", "--trusted-keys", str(path))
    assert result.exit_code == 2
    assert "Refused" in result.output
    assert "Traceback" not in result.output
