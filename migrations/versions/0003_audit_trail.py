"""Audit trail: records, subjects, seal chain, checkpoints, purges and pseudonym keys

Revision ID: 0003
Revises: 0002

Triggers make the sealed tables append-only for every role, the owner included: UPDATE and
TRUNCATE are always refused; DELETE only passes for rows sealed at or before the anchor of a
recorded purge (``audit_purge``), which is how retention removes old segments while the rest of
the chain still verifies. PostgreSQL uses one plpgsql function; SQLite gets one trigger per
table and operation, aborting with RAISE(ABORT).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Kept in step with gateway/audit/models.py (migrations never import the application).
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
SEALED_TABLES = ("audit_record", "audit_subject", "audit_seal", "audit_checkpoint", "audit_purge")
REFUSED = "the audit trail is append-only"

# SQL fragment: the last position a recorded purge allows to delete (0: none).
_ANCHOR = "(SELECT coalesce(max(anchor_position), 0) FROM audit_purge)"
# When each table's rows may be deleted: only as part of a recorded purge.
_SQLITE_DELETE_ALLOWED = {
    "audit_record": (
        "EXISTS (SELECT 1 FROM audit_seal s WHERE s.record_id = OLD.id "  # noqa: S608
        f"AND s.position <= {_ANCHOR})"
    ),
    "audit_subject": (
        "EXISTS (SELECT 1 FROM audit_seal s WHERE s.record_id = OLD.record_id "  # noqa: S608
        f"AND s.position <= {_ANCHOR})"
    ),
    "audit_seal": f"OLD.position <= {_ANCHOR}",
    # The checkpoint at the anchor itself stays: it is where verification restarts.
    "audit_checkpoint": f"OLD.position < {_ANCHOR}",
    "audit_purge": "0",
}

_POSTGRESQL_FUNCTIONS = """
CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    anchor bigint;
BEGIN
    IF TG_OP = 'DELETE' THEN
        SELECT coalesce(max(anchor_position), 0) INTO anchor FROM audit_purge;
        -- Nested IFs: OLD only has the columns of the table the trigger fired on.
        IF TG_TABLE_NAME = 'audit_seal' THEN
            IF OLD.position <= anchor THEN RETURN OLD; END IF;
        ELSIF TG_TABLE_NAME = 'audit_checkpoint' THEN
            IF OLD.position < anchor THEN RETURN OLD; END IF;
        ELSIF TG_TABLE_NAME = 'audit_record' THEN
            IF EXISTS (SELECT 1 FROM audit_seal s
                       WHERE s.record_id = OLD.id AND s.position <= anchor) THEN
                RETURN OLD;
            END IF;
        ELSIF TG_TABLE_NAME = 'audit_subject' THEN
            IF EXISTS (SELECT 1 FROM audit_seal s
                       WHERE s.record_id = OLD.record_id AND s.position <= anchor) THEN
                RETURN OLD;
            END IF;
        END IF;
    END IF;
    RAISE EXCEPTION 'the audit trail is append-only: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE FUNCTION audit_pseudonym_key_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- A key may only be retired (active true -> false); deleting one would orphan the
    -- pseudonyms made with it and hide those records from a person's right of access.
    IF TG_OP = 'UPDATE'
       AND NEW.key_id = OLD.key_id
       AND NEW.secret_ciphertext = OLD.secret_ciphertext
       AND NEW.created_at = OLD.created_at
       AND NOT (NEW.active AND NOT OLD.active) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'pseudonym keys can only be retired: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;
"""


def _create_tables() -> None:
    op.create_table(
        "audit_record",
        sa.Column("id", ID, nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=False),
        sa.Column("client_id", sa.String(length=128), nullable=True),
        sa.Column("partner_id", sa.Integer(), nullable=True),
        sa.Column("connector", sa.String(length=64), nullable=True),
        sa.Column("connector_version", sa.Integer(), nullable=True),
        sa.Column("operation", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=64), nullable=True),
        sa.Column("recipient", sa.String(length=200), nullable=True),
        sa.Column("legal_basis", sa.String(length=255), nullable=True),
        sa.Column("consent_id", sa.String(length=64), nullable=True),
        sa.Column("case_reference", sa.String(length=100), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("reason_code", sa.String(length=64), nullable=True),
        sa.Column("http_status", sa.SmallInteger(), nullable=False),
        sa.Column("response_sha256", sa.String(length=64), nullable=True),
        sa.Column("latency_us", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "outcome IN ('error', 'granted', 'not_found', 'refused')",
            name=op.f("ck_audit_record_outcome"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_record")),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_audit_record_partner_id_occurred_at",
        "audit_record",
        ["partner_id", sa.text("occurred_at DESC")],
    )
    op.create_index("ix_audit_record_occurred_at", "audit_record", ["occurred_at"])

    op.create_table(
        "audit_subject",
        sa.Column("id", ID, nullable=False),
        sa.Column("record_id", ID, nullable=False),
        sa.Column("subject_kind", sa.String(length=8), nullable=False),
        sa.Column("pseudonym", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "subject_kind IN ('nir', 'siren')", name=op.f("ck_audit_subject_subject_kind")
        ),
        sa.ForeignKeyConstraint(
            ["record_id"],
            ["audit_record.id"],
            name=op.f("fk_audit_subject_record_id_audit_record"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_subject")),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_audit_subject_pseudonym_occurred_at", "audit_subject", ["pseudonym", "occurred_at"]
    )
    op.create_index("ix_audit_subject_record_id", "audit_subject", ["record_id"])

    op.create_table(
        "audit_pending",
        sa.Column("record_id", ID, autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint("record_id", name=op.f("pk_audit_pending")),
    )
    op.create_table(
        "audit_seal",
        sa.Column("position", ID, autoincrement=False, nullable=False),
        sa.Column("record_id", ID, nullable=False),
        sa.Column("chain_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("position", name=op.f("pk_audit_seal")),
        sa.UniqueConstraint("record_id", name=op.f("uq_audit_seal_record_id")),
    )
    op.create_table(
        "audit_checkpoint",
        sa.Column("position", ID, autoincrement=False, nullable=False),
        sa.Column("head_hash", sa.String(length=64), nullable=False),
        sa.Column("record_count", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key_id", sa.String(length=128), nullable=False),
        sa.Column("signature", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("position", name=op.f("pk_audit_checkpoint")),
    )
    op.create_table(
        "audit_purge",
        sa.Column("id", ID, nullable=False),
        sa.Column("purged_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cutoff_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("anchor_position", sa.BigInteger(), nullable=False),
        sa.Column("head_hash", sa.String(length=64), nullable=False),
        sa.Column("records_deleted", sa.BigInteger(), nullable=False),
        sa.Column("key_id", sa.String(length=128), nullable=False),
        sa.Column("signature", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_purge")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "audit_pseudonym_key",
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("secret_ciphertext", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_audit_pseudonym_key")),
    )
    op.create_index(
        "uq_audit_pseudonym_key_active",
        "audit_pseudonym_key",
        ["active"],
        unique=True,
        sqlite_where=sa.text("active"),
        postgresql_where=sa.text("active"),
    )


def _create_postgresql_triggers() -> None:
    op.execute(_POSTGRESQL_FUNCTIONS)
    for table in SEALED_TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION audit_append_only()"
        )
        # TRUNCATE fires no row trigger: it needs its own.
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()"
        )
    op.execute(
        "CREATE TRIGGER audit_pseudonym_key_guard BEFORE UPDATE OR DELETE ON audit_pseudonym_key "
        "FOR EACH ROW EXECUTE FUNCTION audit_pseudonym_key_guard()"
    )
    op.execute(
        "CREATE TRIGGER audit_pseudonym_key_no_truncate BEFORE TRUNCATE ON audit_pseudonym_key "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_pseudonym_key_guard()"
    )


def _create_sqlite_triggers() -> None:
    for table, allowed in _SQLITE_DELETE_ALLOWED.items():
        op.execute(
            f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{REFUSED}: UPDATE on {table} refused'); END"
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} WHEN NOT ({allowed}) "
            f"BEGIN SELECT RAISE(ABORT, '{REFUSED}: DELETE on {table} refused'); END"
        )
    op.execute(
        "CREATE TRIGGER audit_pseudonym_key_guard BEFORE UPDATE ON audit_pseudonym_key "
        "WHEN NEW.key_id IS NOT OLD.key_id OR NEW.secret_ciphertext IS NOT OLD.secret_ciphertext "
        "OR NEW.created_at IS NOT OLD.created_at OR (NEW.active AND NOT OLD.active) "
        "BEGIN SELECT RAISE(ABORT, 'pseudonym keys can only be retired'); END"
    )
    op.execute(
        "CREATE TRIGGER audit_pseudonym_key_no_delete BEFORE DELETE ON audit_pseudonym_key "
        "BEGIN SELECT RAISE(ABORT, 'pseudonym keys can only be retired'); END"
    )


def upgrade() -> None:
    _create_tables()
    if op.get_bind().dialect.name == "postgresql":
        _create_postgresql_triggers()
    else:
        _create_sqlite_triggers()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # Dropping the tables drops their triggers; the functions go last.
        tail = ["DROP FUNCTION audit_append_only()", "DROP FUNCTION audit_pseudonym_key_guard()"]
    else:
        tail = []
    for table in (
        "audit_pseudonym_key",
        "audit_purge",
        "audit_checkpoint",
        "audit_seal",
        "audit_pending",
        "audit_subject",
        "audit_record",
    ):
        op.drop_table(table)
    for statement in tail:
        op.execute(statement)
