"""Audit trail: seals only after the last checkpoint, and no INSERT OR REPLACE on SQLite

Revision ID: 0008
Revises: 0007

Two guards the append-only triggers of 0003 left out:

- A seal is accepted only at a position after the last checkpoint (and, as a CHECK, from 1):
  the gateway's role may INSERT seals, and a seal planted at or below the purge anchor would
  never be walked by ``verify``, yet let the next purge delete its record. The sealer always
  inserts its seals before the checkpoint that covers them, so it never meets this refusal.
  PostgreSQL checks it once per statement (a transition table), not once per row.
- On SQLite, ``INSERT OR REPLACE`` deletes the row in the way without firing its DELETE
  trigger (``recursive_triggers`` is off), so it could replace a sealed record, or drop the
  active pseudonym key through its one-active-key index. A BEFORE INSERT trigger per table
  refuses a row whose key or unique value is already taken. PostgreSQL has no such statement:
  ``ON CONFLICT DO UPDATE`` is an UPDATE, which the 0003 triggers already refuse.

Adding a CHECK on SQLite rebuilds the table, which drops its triggers, and SQLite refuses to
rename the rebuilt table while other triggers name the old one: every trigger that mentions
``audit_seal`` is set aside and created again, exactly as it was.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REFUSED = "the audit trail is append-only"
SEAL_AFTER_HEAD = f"{REFUSED}: a seal at or below the last checkpoint refused"
_LAST_CHECKPOINT = "(SELECT coalesce(max(position), 0) FROM audit_checkpoint)"

# table -> the condition, on NEW, under which a BEFORE INSERT would replace an existing row.
_SQLITE_TAKEN = {
    "audit_record": "EXISTS (SELECT 1 FROM audit_record WHERE id = NEW.id)",
    "audit_subject": "EXISTS (SELECT 1 FROM audit_subject WHERE id = NEW.id)",
    "audit_seal": (
        "EXISTS (SELECT 1 FROM audit_seal WHERE position = NEW.position "
        "OR record_id = NEW.record_id)"
    ),
    "audit_checkpoint": "EXISTS (SELECT 1 FROM audit_checkpoint WHERE position = NEW.position)",
    "audit_purge": "EXISTS (SELECT 1 FROM audit_purge WHERE id = NEW.id)",
}
_SQLITE_KEY_TAKEN = (
    "EXISTS (SELECT 1 FROM audit_pseudonym_key WHERE key_id = NEW.key_id) "
    "OR (NEW.active AND EXISTS (SELECT 1 FROM audit_pseudonym_key WHERE active))"
)

# Written out rather than formatted: the same refusal as the SQLite trigger below.
_POSTGRESQL_FUNCTION = """
CREATE FUNCTION audit_seal_after_head() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM new_seals
               WHERE new_seals.position <=
                     (SELECT coalesce(max(position), 0) FROM audit_checkpoint)) THEN
        RAISE EXCEPTION 'the audit trail is append-only: %',
            'a seal at or below the last checkpoint refused'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NULL;
END
$$;
"""


def _sqlite_new_triggers() -> list[str]:
    statements = [
        f"CREATE TRIGGER {table}_no_replace BEFORE INSERT ON {table} WHEN {taken} "
        f"BEGIN SELECT RAISE(ABORT, '{REFUSED}: INSERT over a row of {table} refused'); END"
        for table, taken in _SQLITE_TAKEN.items()
    ]
    statements.append(
        "CREATE TRIGGER audit_pseudonym_key_no_replace BEFORE INSERT ON audit_pseudonym_key "
        f"WHEN {_SQLITE_KEY_TAKEN} "
        "BEGIN SELECT RAISE(ABORT, 'pseudonym keys can only be retired: INSERT over a key "
        "refused'); END"
    )
    statements.append(
        "CREATE TRIGGER audit_seal_after_head BEFORE INSERT ON audit_seal "
        f"WHEN NEW.position <= {_LAST_CHECKPOINT} "
        f"BEGIN SELECT RAISE(ABORT, '{SEAL_AFTER_HEAD}'); END"
    )
    return statements


def _sqlite_new_trigger_names() -> list[str]:
    return [f"{table}_no_replace" for table in (*_SQLITE_TAKEN, "audit_pseudonym_key")] + [
        "audit_seal_after_head"
    ]


def _rebuild_audit_seal(*, with_check: bool) -> None:
    """Add or drop the CHECK on SQLite (a table rebuild), keeping every trigger as it was."""
    bind = op.get_bind()
    saved = bind.execute(
        sa.text(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
            "AND (tbl_name = 'audit_seal' OR sql LIKE '%audit_seal%') ORDER BY name"
        )
    ).all()
    for name, _ in saved:
        op.execute(f'DROP TRIGGER "{name}"')
    with op.batch_alter_table("audit_seal", recreate="always") as batch:
        if with_check:
            batch.create_check_constraint(op.f("ck_audit_seal_position"), "position > 0")
        else:
            batch.drop_constraint(op.f("ck_audit_seal_position"), type_="check")
    for _, sql in saved:
        op.execute(sql)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.create_check_constraint(op.f("ck_audit_seal_position"), "audit_seal", "position > 0")
        op.execute(_POSTGRESQL_FUNCTION)
        op.execute(
            "CREATE TRIGGER audit_seal_after_head AFTER INSERT ON audit_seal "
            "REFERENCING NEW TABLE AS new_seals "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_seal_after_head()"
        )
        return
    _rebuild_audit_seal(with_check=True)
    for statement in _sqlite_new_triggers():
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_seal_after_head ON audit_seal")
        op.execute("DROP FUNCTION audit_seal_after_head()")
        op.drop_constraint(op.f("ck_audit_seal_position"), "audit_seal", type_="check")
        return
    for name in _sqlite_new_trigger_names():
        op.execute(f'DROP TRIGGER "{name}"')
    _rebuild_audit_seal(with_check=False)
