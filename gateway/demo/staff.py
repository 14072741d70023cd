"""The demo's staff login for the ops console."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.database import Database


@dataclass(frozen=True, slots=True)
class DemoLogin:
    name: str
    password: str


def ensure_demo_staff(db: Database) -> DemoLogin | None:
    """A staff account to browse the console with; None while the console offers no way to
    create one from code."""
    return None
