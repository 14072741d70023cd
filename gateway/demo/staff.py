"""The demo's staff login for the ops console."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from gateway.console.accounts import add_staff_account
from gateway.console.models import StaffRole
from gateway.console.repository import StaffRepository
from gateway.database import Database

DEMO_STAFF = "demo"


@dataclass(frozen=True, slots=True)
class DemoLogin:
    name: str
    password: str


def ensure_demo_staff(db: Database, demo_dir: Path) -> DemoLogin | None:
    """An admin account to browse the console with, its password kept beside the demo's keys.

    None when the account exists but its password file is gone: the demo cannot show it.
    """
    password_file = demo_dir / "staff-password"
    with db.sync_session.begin() as session:
        if StaffRepository(session).by_name(DEMO_STAFF) is not None:
            if not password_file.exists():
                return None
            return DemoLogin(DEMO_STAFF, password_file.read_text().strip())
        password = secrets.token_urlsafe(12)
        add_staff_account(session, DEMO_STAFF, StaffRole.ADMIN, password)
    demo_dir.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(password + "\n")
    return DemoLogin(DEMO_STAFF, password)
