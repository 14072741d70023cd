"""Staff sign-in: argon2 passwords, strict session cookies, CSRF tokens, timeout, roles."""

from __future__ import annotations

import datetime as dt
import re

import httpx
import pytest
from console_support import ADMIN, AUDITOR, csrf_of, login
from fastapi import FastAPI
from sqlalchemy import select, update

from gateway.app import create_app
from gateway.audit.models import AuditRecord
from gateway.console.auth import (
    cookie_policy,
    hash_password,
    needs_rehash,
    verify_password,
)
from gateway.console.models import StaffAccount, StaffSession
from gateway.database import Database, utcnow
from gateway.settings import Settings

CONSOLE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; frame-ancestors 'none'; "
    "form-action 'self'; base-uri 'none'"
)


def staff_records(db: Database) -> list[AuditRecord]:
    with db.sync_session() as session:
        return list(
            session.scalars(
                select(AuditRecord)
                .where(AuditRecord.connector == "console")
                .order_by(AuditRecord.id)
            )
        )


def test_passwords_are_argon2id_hashes_never_the_password() -> None:
    hashed = hash_password("a long enough password")
    assert hashed.startswith("$argon2id$")
    assert "a long enough password" not in hashed
    assert verify_password(hashed, "a long enough password")
    assert not verify_password(hashed, "a long enough passworD")
    assert not verify_password("not a hash", "a long enough password")
    assert not needs_rehash(hashed)
    with pytest.raises(ValueError, match="at least 12"):
        hash_password("too short")


async def test_login_opens_a_strict_httponly_session_and_is_audited(
    http: httpx.AsyncClient, db: Database
) -> None:
    page = await http.get("/console/login")
    login_cookie = page.headers["set-cookie"]
    assert "HttpOnly" in login_cookie
    assert "SameSite=strict" in login_cookie
    response = await http.post(
        "/console/login",
        data={"csrf_token": csrf_of(page.text), "name": AUDITOR[0], "password": AUDITOR[1]},
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/console/audit"
    session_cookie = next(
        value
        for value in response.headers.get_list("set-cookie")
        if value.startswith("gateway_console=")
    )
    assert "HttpOnly" in session_cookie
    assert "SameSite=strict" in session_cookie
    assert "Path=/" in session_cookie
    assert "Secure" not in session_cookie  # plain http: a Secure cookie would never come back
    assert "Max-Age" not in session_cookie  # ends with the browser session
    token = session_cookie.split(";")[0].split("=", 1)[1]
    with db.sync_session() as session:
        stored = session.scalars(select(StaffSession.id)).all()
    assert token not in stored, "only a hash of the token is stored"
    [record] = staff_records(db)
    assert (record.operation, record.outcome, record.client_id) == (
        "staff.login",
        "granted",
        "staff:alice",
    )


async def test_behind_https_the_cookies_are_secure_and_host_only(
    settings: Settings, staff: None
) -> None:
    secure_settings = settings.model_copy(update={"issuer": "https://gateway.example"})
    assert cookie_policy(secure_settings).session_cookie == "__Host-gateway_console"
    app = create_app(secure_settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="https://gateway.example"
        ) as http,
    ):
        await login(http, *AUDITOR)
        page = await http.get("/console/audit")
        assert page.status_code == 200
        assert "max-age=31536000" in page.headers["strict-transport-security"]
        assert any(
            cookie.name == "__Host-gateway_console" and cookie.secure for cookie in http.cookies.jar
        )


async def test_a_wrong_password_is_refused_and_audited_without_saying_why(
    http: httpx.AsyncClient, db: Database
) -> None:
    page = await http.get("/console/login")
    unknown = await http.post(
        "/console/login",
        data={"csrf_token": csrf_of(page.text), "name": "mallory", "password": "x" * 20},
    )
    page = await http.get("/console/login")
    wrong = await http.post(
        "/console/login",
        data={"csrf_token": csrf_of(page.text), "name": AUDITOR[0], "password": "x" * 20},
    )
    for response in (unknown, wrong):
        assert response.status_code == 401
        assert "Identifiant ou mot de passe incorrect." in response.text
        assert "gateway_console=" not in response.headers.get("set-cookie", "")
    records = staff_records(db)
    assert [(r.client_id, r.outcome, r.reason_code) for r in records] == [
        ("staff:mallory", "refused", "login.unknown"),
        ("staff:alice", "refused", "login.bad_password"),
    ]


async def test_the_login_form_needs_its_token(http: httpx.AsyncClient) -> None:
    await http.get("/console/login")
    response = await http.post("/console/login", data={"name": AUDITOR[0], "password": AUDITOR[1]})
    assert response.status_code == 403
    assert "console.csrf_invalid" in response.text


async def test_every_form_that_changes_state_needs_the_session_token(
    http: httpx.AsyncClient,
) -> None:
    csrf = await login(http, *ADMIN)
    forms = {
        "/console/audit/search": {"partner_id": "1"},
        "/console/subject": {"subject": "732829320", "reason": "test"},
        "/console/integrity/verify": {},
        "/console/logout": {},
    }
    for path, data in forms.items():
        missing = await http.post(path, data=data)
        wrong = await http.post(path, data={**data, "csrf_token": csrf[:-2] + "xx"})
        as_json = await http.post(path, json={**data, "csrf_token": csrf})
        for response in (missing, wrong, as_json):
            assert response.status_code == 403, path
            assert "console.csrf_invalid" in response.text
            assert response.headers["content-type"].startswith("text/html")
    # Still signed in: none of the refused forms logged us out.
    assert (await http.get("/console/audit")).status_code == 200


async def test_pages_redirect_to_login_without_a_session(http: httpx.AsyncClient) -> None:
    response = await http.get("/console/integrity")
    assert response.status_code == 303
    assert response.headers["location"] == "/console/login?next=%2Fconsole%2Fintegrity"
    http.cookies.set("gateway_console", "forged-token")
    assert (await http.get("/console/audit")).status_code == 303


async def test_after_login_only_console_paths_are_followed(http: httpx.AsyncClient) -> None:
    for wanted, expected in [
        ("/console/integrity", "/console/integrity"),
        ("https://evil.example/", "/console/audit"),
        ("//evil.example/console/", "/console/audit"),
        ("/console/\\evil", "/console/audit"),
    ]:
        page = await http.get("/console/login", params={"next": wanted})
        response = await http.post(
            "/console/login",
            data={
                "csrf_token": csrf_of(page.text),
                "name": AUDITOR[0],
                "password": AUDITOR[1],
                "next": wanted,
            },
        )
        assert response.headers["location"] == expected
        http.cookies.clear()


async def test_a_session_times_out_after_the_idle_delay(
    http: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    await login(http, *AUDITOR)
    assert (await http.get("/console/audit")).status_code == 200
    idle = dt.timedelta(minutes=settings.console_session_timeout_minutes, seconds=1)
    with db.sync_session.begin() as session:
        session.execute(update(StaffSession).values(last_seen_at=utcnow() - idle))
    assert (await http.get("/console/audit")).status_code == 303


async def test_logout_ends_the_session_even_for_a_copied_cookie(
    http: httpx.AsyncClient, db: Database
) -> None:
    csrf = await login(http, *AUDITOR)
    copied = http.cookies["gateway_console"]
    response = await http.post("/console/logout", data={"csrf_token": csrf})
    assert response.status_code == 303
    assert response.headers["location"] == "/console/login?out=1"
    http.cookies.set("gateway_console", copied)
    assert (await http.get("/console/audit")).status_code == 303
    assert staff_records(db)[-1].operation == "staff.logout"


async def test_disabling_an_account_ends_its_sessions(
    http: httpx.AsyncClient, db: Database
) -> None:
    await login(http, *AUDITOR)
    with db.sync_session.begin() as session:
        session.execute(update(StaffAccount).values(disabled_at=utcnow()))
    assert (await http.get("/console/audit")).status_code == 303


async def test_an_auditor_cannot_reach_admin_pages(http: httpx.AsyncClient) -> None:
    csrf = await login(http, *AUDITOR)
    for path in ("/console/partners", "/console/clients", "/console/habilitations"):
        response = await http.get(path)
        assert response.status_code == 403
        assert "console.admin_only" in response.text
    verify = await http.post("/console/integrity/verify", data={"csrf_token": csrf})
    assert verify.status_code == 403
    assert "Partenaires" not in (await http.get("/console/audit")).text


async def test_an_admin_reaches_them(http: httpx.AsyncClient) -> None:
    await login(http, *ADMIN)
    for path in ("/console/partners", "/console/clients", "/console/habilitations"):
        assert (await http.get(path)).status_code == 200


async def test_every_page_carries_the_strict_policy_and_no_inline_script(
    http: httpx.AsyncClient, app: FastAPI
) -> None:
    pages = ["/console/login"]
    await login(http, *ADMIN)
    pages += [
        "/console/audit",
        "/console/subject",
        "/console/integrity",
        "/console/partners",
        "/console/clients",
        "/console/habilitations",
        "/console/audit/records/999999",
    ]
    for path in pages:
        response = await http.get(path)
        assert response.headers["content-security-policy"] == CONSOLE_CSP, path
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["cache-control"] == "no-store"
        html = response.text
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), f"inline script in {path}"
        assert not re.search(r"\son[a-z]+\s*=", html), f"inline handler in {path}"
        assert not re.search(r"\sstyle\s*=", html), f"inline style in {path}"
        assert "<style" not in html


async def test_a_login_the_trail_cannot_record_opens_no_session(
    http: httpx.AsyncClient, app: FastAPI, db: Database
) -> None:
    page = await http.get("/console/login")
    await app.state.audit.writer.stop()
    response = await http.post(
        "/console/login",
        data={"csrf_token": csrf_of(page.text), "name": AUDITOR[0], "password": AUDITOR[1]},
    )
    assert response.status_code == 503
    assert "gateway_console=" not in response.headers.get("set-cookie", "")
    with db.sync_session() as session:
        assert session.scalars(select(StaffSession)).all() == []
