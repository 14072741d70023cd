"""Staff accounts, logins and audit records for the console's tests (HTTP and browser)."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import re
from functools import lru_cache
from typing import Any

import httpx
from fastapi import FastAPI

from gateway.audit.schemas import AuditEntry, AuditSubject, SubjectKind
from gateway.console.auth import hash_password
from gateway.console.models import StaffAccount
from gateway.database import Database, utcnow

AUDITOR = ("alice", "correct horse battery staple")
ADMIN = ("root", "admin password for tests")
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_requests = itertools.count(1)


@lru_cache
def _hash(password: str) -> str:
    # argon2 is slow on purpose: hash each test password once per run.
    return hash_password(password)


def add_staff(db: Database, name: str, role: str, password: str) -> None:
    with db.sync_session.begin() as session:
        session.add(
            StaffAccount(
                name=name,
                role=role,
                password_hash=_hash(password),
                created_at=utcnow(),
                failed_logins=0,
            )
        )


def add_default_staff(db: Database) -> None:
    add_staff(db, AUDITOR[0], "auditor", AUDITOR[1])
    add_staff(db, ADMIN[0], "admin", ADMIN[1])


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match is not None, "the page has a form with a CSRF token"
    return match[1]


async def login(http: httpx.AsyncClient, name: str, password: str) -> str:
    """Sign in; returns the session's CSRF token (read from the page the login leads to)."""
    page = await http.get("/console/login")
    assert page.status_code == 200, page.text
    response = await http.post(
        "/console/login",
        data={"csrf_token": csrf_of(page.text), "name": name, "password": password},
    )
    assert response.status_code == 303, response.text
    landing = await http.get(response.headers["location"])
    assert landing.status_code == 200, landing.text
    return csrf_of(landing.text)


async def subject(app: FastAPI, kind: SubjectKind, identifier: str) -> AuditSubject:
    pseudonymiser = app.state.audit.pseudonymiser
    return await pseudonymiser.subject(kind, identifier)  # type: ignore[no-any-return]


async def write_record(
    app: FastAPI,
    *,
    occurred_at: dt.datetime | None = None,
    subjects: tuple[AuditSubject, ...] = (),
    **fields: Any,
) -> int:
    """An audit record as the pipeline writes one (a granted turnover read by default)."""
    number = next(_requests)
    values: dict[str, Any] = {
        "request_id": f"req-console-{number:06d}",
        "operation": "get_turnover",
        "outcome": "granted",
        "http_status": 200,
        "client_id": "caf-paris-instruction",
        "partner_id": 1,
        "connector": "turnover",
        "connector_version": 2,
        "purpose": "RSA_INSTRUCTION",
        "recipient": "21750001600019",
        "legal_basis": "Code de la sécurité sociale, art. L. 114-8",
        "case_reference": f"DOSSIER-{number}",
        "response_sha256": hashlib.sha256(str(number).encode()).hexdigest(),
        "latency_us": 1200,
    }
    values.update(fields)
    entry = AuditEntry(occurred_at=occurred_at or utcnow(), subjects=subjects, **values)
    return await app.state.audit.writer.write(entry)  # type: ignore[no-any-return]
