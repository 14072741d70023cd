"""Staff input the console cannot use gets a field message or the first page, never a 500.

Invariant 5 for the console's own input: extreme search dates, a forged keyset cursor past
BIGINT, and control characters (NUL first) in free-text fields.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from zoneinfo import ZoneInfo

import httpx
import pytest
from console_support import AUDITOR, csrf_of, login
from fastapi import FastAPI, Request
from sqlalchemy import select

from gateway.audit.models import AuditRecord
from gateway.console.models import StaffAccount, StaffSearch
from gateway.console.schemas import (
    FIRST_SEARCH_DATE,
    LAST_SEARCH_DATE,
    AuditFilters,
    Cursor,
    has_control_characters,
)
from gateway.console.service import filters_from_form, record_staff_action
from gateway.database import Database, utcnow
from gateway.errors import UnprocessableError
from gateway.identifiers import siren_with_checksum
from gateway.settings import Settings

SIREN = siren_with_checksum("73282932")
PARIS = ZoneInfo("Europe/Paris")
# What a form can carry (UTF-8); a lone surrogate cannot be sent, but is refused all the same.
CONTROL_TEXTS = ["REQ-1\x00", "REQ\x1b[31m-1", "REQ-1\x7f", "REQ-\u202e1-QER"]


@pytest.fixture
async def web(app: FastAPI, settings: Settings, staff: None) -> AsyncIterator[httpx.AsyncClient]:
    """Like ``http``, but a crash is answered as the server would: a 500, not an exception."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=settings.issuer) as client:
        yield client


def staff_writes(db: Database) -> tuple[list[str], int]:
    """The operations of the staff actions in the trail, and the number of saved searches."""
    with db.sync_session() as session:
        operations = session.scalars(
            select(AuditRecord.operation).where(AuditRecord.connector == "console")
        ).all()
        searches = len(session.scalars(select(StaffSearch)).all())
    return list(operations), searches


# --- 4. search dates ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dates", "field"),
    [
        ({"date_to": "9999-12-31"}, "date_to"),
        ({"date_from": "0001-01-01"}, "date_from"),
        ({"date_from": "1999-12-31"}, "date_from"),
        ({"date_to": "2101-01-01"}, "date_to"),
    ],
    ids=["9999", "0001", "before-2000", "after-2100"],
)
async def test_extreme_search_dates_are_refused_with_a_field_message(
    web: httpx.AsyncClient, db: Database, dates: dict[str, str], field: str
) -> None:
    # They were saved, and the page of the search then failed with a 500 (OverflowError).
    csrf = await login(web, *AUDITOR)
    response = await web.post("/console/audit/search", data={"csrf_token": csrf, **dates})
    assert response.status_code == 422
    assert f'id="{field}-erreur"' in response.text
    assert "Date comprise entre le 01/01/2000 et le 31/12/2100." in response.text
    assert staff_writes(db)[1] == 0, "nothing is saved"


async def test_the_first_and_last_days_allowed_are_searchable(web: httpx.AsyncClient) -> None:
    csrf = await login(web, *AUDITOR)
    posted = await web.post(
        "/console/audit/search",
        data={
            "csrf_token": csrf,
            "date_from": FIRST_SEARCH_DATE.isoformat(),
            "date_to": LAST_SEARCH_DATE.isoformat(),
        },
    )
    assert posted.status_code == 303
    assert (await web.get(posted.headers["location"])).status_code == 200
    export = await web.get(posted.headers["location"].replace("/audit?", "/audit/export.csv?"))
    assert export.status_code == 200
    assert export.text.startswith("id,occurred_at")


async def test_a_search_saved_with_an_extreme_date_is_unknown_not_a_500(
    web: httpx.AsyncClient, db: Database
) -> None:
    # Saved before the dates were bounded: it must not crash its page for its 12 hours.
    await login(web, *AUDITOR)
    with db.sync_session.begin() as session:
        alice = session.scalars(select(StaffAccount).where(StaffAccount.name == "alice")).one()
        session.add(
            StaffSearch(
                id="savedBeforeTheBounds",
                staff_id=alice.id,
                kind="audit",
                criteria={"date_to": "9999-12-31"},
                created_at=utcnow(),
                expires_at=utcnow() + dt.timedelta(hours=1),
            )
        )
    for path in ("/console/audit", "/console/audit/export.csv"):
        response = await web.get(path, params={"q": "savedBeforeTheBounds"})
        assert response.status_code == 404, path
        assert "console.search_unknown" in response.text


@pytest.mark.parametrize(
    ("date_from", "date_to"),
    [(dt.date.min, dt.date.max), (dt.date(1, 1, 1), dt.date(1, 1, 1)), (None, dt.date.max)],
)
def test_the_bounds_of_a_search_cannot_overflow(
    date_from: dt.date | None, date_to: dt.date | None
) -> None:
    # model_construct skips the validators: bounds must hold on its own.
    filters = AuditFilters.model_construct(date_from=date_from, date_to=date_to)
    since, until = filters.bounds(PARIS)
    assert until is not None
    assert until <= dt.datetime(2101, 1, 1, tzinfo=dt.UTC)
    assert since is None or since >= dt.datetime(1999, 12, 31, tzinfo=dt.UTC)


def test_the_filters_refuse_a_date_out_of_range() -> None:
    with pytest.raises(ValueError, match="between"):
        AuditFilters(date_to=dt.date(9999, 12, 31))
    filters, errors = filters_from_form({"date_from": "0001-01-01"}, None)
    assert filters is None
    assert errors == {"date_from": "Date comprise entre le 01/01/2000 et le 31/12/2100."}


# --- 5. forged cursors ----------------------------------------------------------------------


async def test_a_forged_cursor_past_bigint_means_the_first_page(web: httpx.AsyncClient) -> None:
    # The id reached the driver, which cannot bind it: a 500 on demand.
    await login(web, *AUDITOR)
    for forged in ("0.9999999999999999999", "0.9223372036854775808", "-1.18446744073709551615"):
        response = await web.get("/console/audit", params={"after": forged})
        assert response.status_code == 200, forged


@pytest.mark.parametrize(
    ("value", "record_id"),
    [
        ("0.9999999999999999999", None),
        ("0.9223372036854775808", None),
        ("0.0", None),
        ("0.9223372036854775807", 2**63 - 1),
        ("0.1", 1),
    ],
)
def test_a_cursor_names_an_existing_kind_of_record_or_none(
    value: str, record_id: int | None
) -> None:
    cursor = Cursor.decode(value)
    assert (cursor.record_id if cursor else None) == record_id


# --- 6. control characters ------------------------------------------------------------------


@pytest.mark.parametrize("reason", CONTROL_TEXTS)
async def test_control_characters_in_a_subject_reason_are_refused_before_any_audit_write(
    web: httpx.AsyncClient, db: Database, reason: str
) -> None:
    # A NUL reached the audit entry, which raised: a 500 instead of a field message.
    csrf = await login(web, *AUDITOR)
    response = await web.post(
        "/console/subject", data={"csrf_token": csrf, "subject": SIREN, "reason": reason}
    )
    assert response.status_code == 422
    assert 'id="reason-erreur"' in response.text
    assert "Caractères de contrôle ou invisibles refusés" in response.text
    assert staff_writes(db) == (["staff.login"], 0)


@pytest.mark.parametrize("field", ["reason", "client_id", "purpose", "connector"])
async def test_control_characters_in_a_search_are_refused_before_any_audit_write(
    web: httpx.AsyncClient, db: Database, field: str
) -> None:
    csrf = await login(web, *AUDITOR)
    fields = {"subject": SIREN, "reason": "REQ-1", field: "REQ-1\x00"}
    response = await web.post("/console/audit/search", data={"csrf_token": csrf, **fields})
    assert response.status_code == 422
    assert f'id="{field}-erreur"' in response.text
    assert "\x00" not in response.text, "the refused value is not echoed back"
    assert staff_writes(db) == (["staff.login"], 0)


@pytest.mark.parametrize(
    "path",
    [
        "/console/audit?q=abc%00def",
        "/console/audit/export.csv?q=abc%00",
        "/console/subject/abc%00def",
        "/console/audit?q=%C3%A9t%C3%A9",
    ],
)
async def test_a_handle_that_cannot_be_one_is_unknown(web: httpx.AsyncClient, path: str) -> None:
    # PostgreSQL's driver refuses a NUL in a parameter: it must not reach the query.
    await login(web, *AUDITOR)
    response = await web.get(path)
    assert response.status_code == 404
    assert "console.search_unknown" in response.text


async def test_a_kept_subject_that_cannot_be_a_handle_is_unknown(web: httpx.AsyncClient) -> None:
    csrf = await login(web, *AUDITOR)
    response = await web.post(
        "/console/audit/search", data={"csrf_token": csrf, "keep_subject": "x\x00"}
    )
    assert response.status_code == 404


@pytest.mark.parametrize("text", [*CONTROL_TEXTS, "REQ-\ud800", "\x85", "a\tb"])
def test_control_characters_are_recognised(text: str) -> None:
    assert has_control_characters(text)


@pytest.mark.parametrize("text", ["REQ-1", "Dossier n° 12 \u2013 été", "ÉTÉ/2026 (réf. 7)", ""])
def test_ordinary_text_is_not_refused(text: str) -> None:
    assert not has_control_characters(text)


async def test_text_the_trail_refuses_ends_in_a_refusal_page_not_a_500(app: FastAPI) -> None:
    # The backstop behind the forms' checks: nothing is written, and the console's route class
    # turns the error into its 422 page.
    request = Request({"type": "http", "app": app, "headers": [], "state": {}})
    with pytest.raises(UnprocessableError) as refused:
        await record_staff_action(
            request, "staff:alice", "staff.subject_access", "granted", 303, case_reference="\x00"
        )
    assert refused.value.code == "console.request_invalid"


async def test_a_nul_in_the_login_name_is_a_refused_login(web: httpx.AsyncClient) -> None:
    # Such a name never reaches a query (PostgreSQL's driver would raise on the NUL).
    page = await web.get("/console/login")
    response = await web.post(
        "/console/login",
        data={"csrf_token": csrf_of(page.text), "name": "alice\x00", "password": AUDITOR[1]},
    )
    assert response.status_code == 401
    assert "Identifiant ou mot de passe incorrect." in response.text
