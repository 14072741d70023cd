"""Creating staff accounts: one place for the CLI and the demo."""

from __future__ import annotations

from sqlalchemy.orm import Session

from gateway.console.auth import check_name, hash_password
from gateway.console.models import StaffAccount, StaffRole
from gateway.console.repository import StaffRepository
from gateway.database import utcnow


class StaffExistsError(ValueError):
    """A staff account of that name already exists."""


def add_staff_account(session: Session, name: str, role: StaffRole, password: str) -> StaffAccount:
    """Create an account; raises ``ValueError`` for a bad name or password."""
    check_name(name)
    password_hash = hash_password(password)
    staff = StaffRepository(session)
    if staff.by_name(name) is not None:
        raise StaffExistsError(f"a staff account named {name!r} already exists")
    return staff.add(
        StaffAccount(
            name=name,
            role=role.value,
            password_hash=password_hash,
            created_at=utcnow(),
            failed_logins=0,
        )
    )
