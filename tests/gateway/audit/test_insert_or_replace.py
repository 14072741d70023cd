"""Invariant 2 on SQLite: ``INSERT OR REPLACE`` is refused like the UPDATE and DELETE it hides.

SQLite's REPLACE deletes the row in the way without firing its DELETE trigger, so without a
BEFORE INSERT guard one statement could swap a sealed record's contents, or delete the active
pseudonym key through its one-active-key index (every pseudonym made with it then lost for a
person's right of access). PostgreSQL has no such statement (``ON CONFLICT DO UPDATE`` is an
UPDATE, refused by the triggers).
"""

from __future__ import annotations

import pytest
from audit_factories import NIR, write_sealed
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from gateway.audit import Es256CheckpointSigner, Pseudonymiser, verify_trail
from gateway.database import Database

REPLACING = {
    "audit_record": (
        "INSERT OR REPLACE INTO audit_record (id, occurred_at, request_id, operation, outcome, "
        "http_status) VALUES (:id, '2024-01-01 00:00:00.000000', 'r', 'data.disclosed', "
        "'refused', 403)"
    ),
    "audit_subject": (
        "INSERT OR REPLACE INTO audit_subject (id, record_id, subject_kind, pseudonym, key_id, "
        "occurred_at) SELECT id, record_id, 'siren', :other, key_id, occurred_at "
        "FROM audit_subject WHERE record_id = :id"
    ),
    "audit_seal (position)": (
        "INSERT OR REPLACE INTO audit_seal (position, record_id, chain_hash) "
        "VALUES (2, 999, :other)"
    ),
    "audit_seal (record_id)": (
        "INSERT OR REPLACE INTO audit_seal (position, record_id, chain_hash) "
        "VALUES (99, :id, :other)"
    ),
    "audit_checkpoint": (
        "INSERT OR REPLACE INTO audit_checkpoint (position, head_hash, record_count, created_at, "
        "key_id, signature) VALUES (3, :other, 3, '2024-01-01 00:00:00.000000', 'k', 's')"
    ),
    "audit_purge": (
        "INSERT OR REPLACE INTO audit_purge (id, purged_at, cutoff_at, anchor_position, "
        "head_hash, records_deleted, key_id, signature) SELECT id, purged_at, cutoff_at, 0, "
        ":other, 0, 'k', 's' FROM audit_purge"
    ),
}


@pytest.fixture
def sqlite_only(db: Database) -> None:
    if db.sync_engine.dialect.name != "sqlite":
        pytest.skip("SQLite's REPLACE conflict resolution")


@pytest.mark.usefixtures("sqlite_only")
@pytest.mark.parametrize("statement", list(REPLACING.values()), ids=list(REPLACING))
def test_invariant_2_insert_or_replace_cannot_overwrite_a_sealed_row(
    db: Database, signer: Es256CheckpointSigner, statement: str
) -> None:
    ids = write_sealed(db, signer, 3)
    with db.sync_engine.begin() as conn:
        # A purge row for the purge case; an anchor of 0 allows no deletion.
        conn.execute(
            text(
                "INSERT INTO audit_purge (purged_at, cutoff_at, anchor_position, head_hash, "
                "records_deleted, key_id, signature) VALUES (:t, :t, 0, :h, 0, 'k', 's')"
            ),
            {"t": "2026-01-01 00:00:00.000000", "h": "0" * 64},
        )
        before = {
            table: conn.execute(text(f"SELECT * FROM {table} ORDER BY 1")).all()  # noqa: S608
            for table in ("audit_record", "audit_subject", "audit_seal", "audit_checkpoint")
        }
    with pytest.raises(DBAPIError, match="append-only"), db.sync_engine.begin() as conn:
        conn.execute(text(statement), {"id": ids[1], "other": "b" * 64})
    with db.sync_engine.connect() as conn:
        after = {
            table: conn.execute(text(f"SELECT * FROM {table} ORDER BY 1")).all()  # noqa: S608
            for table in before
        }
    assert after == before


@pytest.mark.usefixtures("sqlite_only")
async def test_insert_or_replace_cannot_push_out_the_active_pseudonym_key(
    db: Database, pseudonymiser: Pseudonymiser
) -> None:
    key_id, pseudonym = await pseudonymiser.pseudonym("nir", NIR)
    for statement in (
        # The new active key would delete the current one through the one-active-key index.
        "INSERT OR REPLACE INTO audit_pseudonym_key (key_id, secret_ciphertext, created_at, "
        "active) VALUES ('pk-evil', 'x', '2024-01-01 00:00:00.000000', 1)",
        # The same key id, another secret: every pseudonym made with it lost.
        "INSERT OR REPLACE INTO audit_pseudonym_key (key_id, secret_ciphertext, created_at, "
        "active) VALUES (:k, 'x', '2024-01-01 00:00:00.000000', 0)",
    ):
        with pytest.raises(DBAPIError, match="pseudonym keys"), db.sync_engine.begin() as conn:
            conn.execute(text(statement), {"k": key_id})
    with db.sync_engine.connect() as conn:
        keys = conn.execute(text("SELECT key_id, active FROM audit_pseudonym_key")).all()
    assert [tuple(key) for key in keys] == [(key_id, 1)]
    assert await pseudonymiser.pseudonym("nir", NIR) == (key_id, pseudonym)


def test_ordinary_writes_still_pass_the_insert_guards(
    db: Database, signer: Es256CheckpointSigner
) -> None:
    """The writer, the sealer and the purge insert new rows only: none of them is refused."""
    write_sealed(db, signer, 4, batches=2)
    assert verify_trail(db.sync_engine, signer).ok
