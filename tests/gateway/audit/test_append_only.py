"""Invariant 2: audit records are append-only for every ordinary connection, the owner's too."""

from __future__ import annotations

import pytest
from audit_factories import insert_entry, make_entry, subject_of, write_sealed
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from gateway.audit import Es256CheckpointSigner, Pseudonymiser, run_sealer_once, verify_trail
from gateway.audit.models import AuditRecord
from gateway.audit.roles import app_role_grants
from gateway.database import Database, driver_urls

STATEMENTS = [
    "UPDATE audit_record SET purpose = 'other' WHERE id = {id}",
    "UPDATE audit_record SET outcome = 'refused'",
    "DELETE FROM audit_record WHERE id = {id}",
    "UPDATE audit_subject SET pseudonym = 'x' WHERE record_id = {id}",
    "DELETE FROM audit_subject WHERE record_id = {id}",
    "UPDATE audit_seal SET chain_hash = 'x'",
    "DELETE FROM audit_seal",
    "UPDATE audit_checkpoint SET head_hash = 'x'",
    "DELETE FROM audit_checkpoint",
]


@pytest.mark.parametrize("statement", STATEMENTS)
def test_invariant_2_triggers_refuse_updates_and_deletes(
    db: Database, signer: Es256CheckpointSigner, statement: str
) -> None:
    """Without the triggers, anyone holding the database role could rewrite history."""
    record_id = write_sealed(db, signer, 3)[1]
    with pytest.raises(DBAPIError, match="append-only"), db.sync_engine.begin() as conn:
        conn.execute(text(statement.format(id=record_id)))
    with db.sync_engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(AuditRecord)).scalar() == 3


def test_unsealed_records_cannot_be_deleted_either(db: Database) -> None:
    with db.sync_engine.begin() as conn:
        record_id = insert_entry(conn, make_entry(1, subjects=[subject_of(1)]))
    with pytest.raises(DBAPIError, match="append-only"), db.sync_engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_record WHERE id = :id"), {"id": record_id})


@pytest.mark.postgresql_only
@pytest.mark.parametrize(
    "table", ["audit_record", "audit_subject", "audit_seal", "audit_checkpoint", "audit_purge"]
)
def test_truncate_is_refused(db: Database, signer: Es256CheckpointSigner, table: str) -> None:
    """TRUNCATE fires no row trigger: it has its own."""
    write_sealed(db, signer, 2)
    with pytest.raises(DBAPIError, match="append-only"), db.sync_engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {table} CASCADE"))


def test_a_purge_row_cannot_be_changed_or_removed(db: Database) -> None:
    with db.sync_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO audit_purge (purged_at, cutoff_at, anchor_position, head_hash, "
                "records_deleted, key_id, signature) VALUES "
                "(:t, :t, 0, :h, 0, 'k', 's')"
            ),
            {"t": "2026-01-01 00:00:00", "h": "0" * 64},
        )
    for statement in ("UPDATE audit_purge SET anchor_position = 99", "DELETE FROM audit_purge"):
        with pytest.raises(DBAPIError, match="append-only"), db.sync_engine.begin() as conn:
            conn.execute(text(statement))


async def test_pseudonym_keys_can_be_retired_but_never_changed_or_deleted(
    db: Database, pseudonymiser: Pseudonymiser
) -> None:
    """A deleted or altered key would hide its records from a person's right of access."""
    first, _ = await pseudonymiser.pseudonym("siren", "732829320")
    pseudonymiser.rotate()  # retiring (active -> false) is allowed
    for statement in (
        "UPDATE audit_pseudonym_key SET secret_ciphertext = 'x' WHERE key_id = :k",
        "UPDATE audit_pseudonym_key SET active = true WHERE key_id = :k",
        "DELETE FROM audit_pseudonym_key WHERE key_id = :k",
    ):
        with pytest.raises(DBAPIError, match="retired"), db.sync_engine.begin() as conn:
            conn.execute(text(statement), {"k": first})


@pytest.mark.postgresql_only
def test_the_app_role_may_insert_and_read_but_never_update_or_delete(
    db: Database, signer: Es256CheckpointSigner, app_role: str
) -> None:
    """Least privilege: even with the triggers gone, the app's role cannot rewrite records."""
    write_sealed(db, signer, 2)
    with db.sync_engine.begin() as conn:
        for statement in app_role_grants(app_role):
            conn.execute(text(statement))
    with db.sync_engine.begin() as conn:
        conn.execute(text(f'SET LOCAL ROLE "{app_role}"'))
        insert_entry(conn, make_entry(9, subjects=[subject_of(9)]))
        assert conn.execute(select(func.count()).select_from(AuditRecord)).scalar() == 3
    with db.sync_engine.connect() as conn:
        for statement in (
            "UPDATE audit_record SET purpose = 'x'",
            "DELETE FROM audit_record",
            "DELETE FROM audit_seal",
            "INSERT INTO audit_purge (purged_at, cutoff_at, anchor_position, head_hash, "
            "records_deleted, key_id, signature) VALUES (now(), now(), 99, 'h', 0, 'k', 's')",
        ):
            # SET is undone with the failed transaction: set the role again for each one.
            conn.execute(text(f'SET LOCAL ROLE "{app_role}"'))
            with pytest.raises(DBAPIError, match="permission denied"):
                conn.execute(text(statement))
            conn.rollback()


@pytest.mark.postgresql_only
def test_the_app_role_can_seal(db: Database, signer: Es256CheckpointSigner, app_role: str) -> None:
    """The sealer runs inside the gateway's processes, so under the app's role."""
    with db.sync_engine.begin() as conn:
        for statement in app_role_grants(app_role):
            conn.execute(text(statement))
        conn.execute(text(f'GRANT "{app_role}" TO CURRENT_USER'))
    url = make_url(db.url).set(query={"options": f"-c role={app_role}"})
    engine = create_engine(driver_urls(url.render_as_string(hide_password=False))[0])
    try:
        with engine.begin() as conn:
            insert_entry(conn, make_entry(1, subjects=[subject_of(1)]))
        assert run_sealer_once(engine, signer).sealed == 1
        assert verify_trail(engine, signer).ok
    finally:
        engine.dispose()


def test_role_names_are_checked_before_reaching_sql() -> None:
    with pytest.raises(ValueError, match="role name"):
        app_role_grants('app"; DROP TABLE audit_record; --')
