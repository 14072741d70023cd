"""Least-privilege grants for the application's PostgreSQL role.

The gateway's processes write records and seal them; they never change or delete evidence.
Their role therefore gets INSERT and SELECT on the trail, DELETE only on the sealing queue
(``audit_pending``, not evidence), nothing on purges but SELECT, and no UPDATE anywhere, so
even a compromised process cannot rewrite history: only the owner role, used for migrations,
retention purges and key rotation, can attempt that, and the triggers still stop it.
"""

from __future__ import annotations

import re

APP_ROLE_PRIVILEGES: dict[str, str] = {
    "audit_record": "SELECT, INSERT",
    "audit_subject": "SELECT, INSERT",
    "audit_pending": "SELECT, INSERT, DELETE",
    "audit_seal": "SELECT, INSERT",
    "audit_checkpoint": "SELECT, INSERT",
    "audit_purge": "SELECT",
    # INSERT: the first process to need a pseudonym creates the first key.
    "audit_pseudonym_key": "SELECT, INSERT",
}
# The sequences behind the BIGSERIAL ids the application draws.
APP_ROLE_SEQUENCES = ("audit_record_id_seq", "audit_subject_id_seq")

_ROLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


def app_role_grants(role: str) -> list[str]:
    """The SQL statements giving ``role`` exactly what a gateway process needs on the trail."""
    if not _ROLE_NAME.fullmatch(role):
        raise ValueError("a role name is a letter or underscore then letters, digits, underscores")
    quoted = f'"{role}"'
    statements = [f"REVOKE ALL ON {', '.join(APP_ROLE_PRIVILEGES)} FROM {quoted}"]
    statements += [
        f"GRANT {privileges} ON {table} TO {quoted}"
        for table, privileges in APP_ROLE_PRIVILEGES.items()
    ]
    statements.append(f"GRANT USAGE ON SEQUENCE {', '.join(APP_ROLE_SEQUENCES)} TO {quoted}")
    return statements
