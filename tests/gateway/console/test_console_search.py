"""The audit search: filters, keyset pagination, the subject behind a handle, CSV export."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import re
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from console_support import ADMIN, AUDITOR, login, subject, write_record
from fastapi import FastAPI
from sqlalchemy import select

from gateway.audit.models import AuditRecord, AuditSubjectEntry
from gateway.audit.schemas import AuditEntry
from gateway.console.models import StaffSearch
from gateway.database import Database
from gateway.identifiers import NIR_SHAPE, nir_with_key, siren_with_checksum
from tests.factories import create_account

NIR = nir_with_key("1850578006084")
SIREN = siren_with_checksum("73282932")
STRANGER_SIREN = siren_with_checksum("41816609")
PARIS = dt.timezone(dt.timedelta(hours=1))  # March 2026 before the switch to summer time


def handle_of(response: httpx.Response) -> str:
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    query = parse_qs(urlsplit(location).query)
    assert list(query) == ["q"], "a result URL carries the handle and nothing else"
    return query["q"][0]


def record_ids(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'aria-label="Enregistrement (\d+)"', html)]


async def search(http: httpx.AsyncClient, csrf: str, **fields: str) -> httpx.Response:
    return await http.post("/console/audit/search", data={"csrf_token": csrf, **fields})


@pytest.fixture
def person(db: Database) -> None:
    """The reference store links the NIR staff type to the SIREN partners ask about."""
    with db.sync_session.begin() as session:
        create_account(session, nir=NIR, siren=SIREN)


async def test_search_by_partner_and_month_shows_only_those_records(
    http: httpx.AsyncClient, app: FastAPI
) -> None:
    march = dt.datetime(2026, 3, 10, 12, tzinfo=dt.UTC)
    wanted = [
        await write_record(app, partner_id=1, occurred_at=march + dt.timedelta(days=i))
        for i in range(3)
    ]
    await write_record(app, partner_id=2, occurred_at=march)
    await write_record(app, partner_id=1, occurred_at=dt.datetime(2026, 4, 1, 9, tzinfo=dt.UTC))
    # 23:30 on 28 February in UTC is already 1 March in Paris: it belongs to March.
    first_of_march = await write_record(
        app, partner_id=1, occurred_at=dt.datetime(2026, 2, 28, 23, 30, tzinfo=dt.UTC)
    )
    await write_record(
        app, partner_id=1, occurred_at=dt.datetime(2026, 2, 28, 22, 30, tzinfo=dt.UTC)
    )
    csrf = await login(http, *AUDITOR)
    handle = handle_of(
        await search(http, csrf, partner_id="1", date_from="2026-03-01", date_to="2026-03-31")
    )
    page = await http.get("/console/audit", params={"q": handle})
    assert record_ids(page.text) == [*reversed(wanted), first_of_march]


async def test_filters_combine(http: httpx.AsyncClient, app: FastAPI) -> None:
    kept = await write_record(
        app,
        client_id="cnam-1",
        connector="status",
        connector_version=1,
        purpose="AFFILIATION",
        outcome="refused",
        http_status=403,
    )
    await write_record(
        app, client_id="cnam-1", connector="status", connector_version=1, purpose="AFFILIATION"
    )
    await write_record(
        app,
        client_id="cnam-1",
        connector="status",
        connector_version=2,
        purpose="AFFILIATION",
        outcome="refused",
        http_status=403,
    )
    await write_record(
        app,
        client_id="cnam-2",
        connector="status",
        connector_version=1,
        purpose="AFFILIATION",
        outcome="refused",
        http_status=403,
    )
    csrf = await login(http, *AUDITOR)
    handle = handle_of(
        await search(
            http,
            csrf,
            client_id="cnam-1",
            connector="status.v1",
            purpose="AFFILIATION",
            outcome="refused",
        )
    )
    page = await http.get("/console/audit", params={"q": handle})
    assert record_ids(page.text) == [kept]
    assert 'value="status.v1" selected' in page.text, "the form shows the filters applied"


async def test_keyset_pages_newest_first_without_gaps_or_repeats(
    http: httpx.AsyncClient, app: FastAPI
) -> None:
    moment = dt.datetime(2026, 3, 1, 10, tzinfo=dt.UTC)
    # Pairs of records with the same instant: the id breaks the tie.
    ids = [
        await write_record(app, partner_id=3, occurred_at=moment + dt.timedelta(minutes=i // 2))
        for i in range(120)
    ]
    csrf = await login(http, *AUDITOR)
    handle = handle_of(await search(http, csrf, partner_id="3"))
    seen: list[int] = []
    url: str | None = f"/console/audit?q={handle}"
    pages = 0
    while url:
        page = await http.get(url)
        assert page.status_code == 200
        seen += record_ids(page.text)
        pages += 1
        if pages == 1:
            # Written after the first page was shown: it must not shift the next pages.
            await write_record(app, partner_id=3, occurred_at=moment + dt.timedelta(days=1))
        marker = 'id="page-suivante" href="'
        url = (
            page.text.split(marker, 1)[1].split('"', 1)[0].replace("&amp;", "&")
            if marker in page.text
            else None
        )
    assert pages == 3
    assert seen == sorted(ids, reverse=True)


async def test_a_subject_search_keeps_the_identifier_out_of_urls_pages_and_logs(
    http: httpx.AsyncClient,
    app: FastAPI,
    db: Database,
    person: None,
    capfd: pytest.CaptureFixture[str],
) -> None:
    mine = await write_record(app, subjects=(await subject(app, "siren", SIREN),))
    await write_record(app, subjects=(await subject(app, "siren", STRANGER_SIREN),))
    by_nir = await write_record(app, connector="acre", subjects=(await subject(app, "nir", NIR),))
    csrf = await login(http, *AUDITOR)
    spaced = f"{NIR[0]} {NIR[1:3]} {NIR[3:5]} {NIR[5:7]} {NIR[7:10]} {NIR[10:13]} {NIR[13:]}"
    response = await search(http, csrf, subject=spaced, reason="Demande 2026-042")
    handle = handle_of(response)
    page = await http.get("/console/audit", params={"q": handle})
    staff_lookup = max(record_ids(page.text))
    assert record_ids(page.text) == [staff_lookup, by_nir, mine]
    assert "Filtre personne actif" in page.text
    assert not NIR_SHAPE.search(page.text)
    assert NIR not in response.headers["location"]
    # What the server kept: pseudonyms only.
    with db.sync_session() as session:
        [saved] = session.scalars(select(StaffSearch)).all()
        lookup = session.get(AuditRecord, staff_lookup)
        subjects = session.scalars(
            select(AuditSubjectEntry).where(AuditSubjectEntry.record_id == staff_lookup)
        ).all()
    assert NIR not in str(saved.criteria)
    assert SIREN not in str(saved.criteria)
    assert lookup is not None
    assert (lookup.operation, lookup.client_id, lookup.case_reference) == (
        "staff.search_subject",
        "staff:alice",
        "Demande 2026-042",
    )
    assert {s.subject_kind for s in subjects} == {"nir", "siren"}
    captured = capfd.readouterr()
    assert NIR not in captured.out + captured.err
    assert NIR[:13] not in captured.out + captured.err


async def test_refining_a_subject_search_keeps_the_subject(
    http: httpx.AsyncClient, app: FastAPI, person: None
) -> None:
    granted = await write_record(app, subjects=(await subject(app, "siren", SIREN),))
    await write_record(
        app, outcome="refused", http_status=403, subjects=(await subject(app, "siren", SIREN),)
    )
    await write_record(app, subjects=(await subject(app, "siren", STRANGER_SIREN),))
    csrf = await login(http, *AUDITOR)
    first = handle_of(await search(http, csrf, subject=NIR, reason="Enquête"))
    refined = handle_of(
        await search(
            http,
            csrf,
            keep_subject=first,
            connector="turnover",
            outcome="granted",
            reason="Enquête",
        )
    )
    page = await http.get("/console/audit", params={"q": refined})
    assert record_ids(page.text) == [granted]


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"subject": NIR[:-2] + "00", "reason": "x"}, "subject", "Identifiant invalide"),
        ({"subject": NIR}, "reason", "Indiquez le motif"),
        ({"purpose": NIR}, "purpose", "Un NIR ne se saisit que"),
        ({"date_from": "2026-03-10", "date_to": "2026-03-01"}, "date_to", "précède"),
        ({"date_from": "10/03/2026"}, "date_from", "AAAA-MM-JJ"),
        ({"outcome": "maybe"}, "outcome", "Issue inconnue"),
        ({"partner_id": "1 OR 1=1"}, "partner_id", "Partenaire inconnu"),
    ],
)
async def test_a_bad_search_is_explained_and_never_echoes_an_identifier(
    http: httpx.AsyncClient,
    db: Database,
    fields: dict[str, str],
    field: str,
    message: str,
) -> None:
    csrf = await login(http, *AUDITOR)
    response = await search(http, csrf, **fields)
    assert response.status_code == 422
    assert f'id="{field}-erreur"' in response.text
    assert message in response.text
    assert NIR[:13] not in response.text
    with db.sync_session() as session:
        assert session.scalars(select(StaffSearch)).all() == []
        assert (
            session.scalars(
                select(AuditRecord).where(AuditRecord.operation == "staff.search_subject")
            ).all()
            == []
        )


async def test_a_handle_is_bound_to_the_staff_member_who_made_it(
    http: httpx.AsyncClient,
) -> None:
    csrf = await login(http, *AUDITOR)
    handle = handle_of(await search(http, csrf, partner_id="1"))
    http.cookies.clear()
    await login(http, *ADMIN)
    for url in (
        f"/console/audit?q={handle}",
        f"/console/audit/export.csv?q={handle}",
        "/console/audit?q=made-up",
    ):
        response = await http.get(url)
        assert response.status_code == 404
        assert "console.search_unknown" in response.text


async def test_a_subject_search_that_cannot_be_audited_shows_nothing(
    http: httpx.AsyncClient, app: FastAPI, person: None
) -> None:
    await write_record(app, subjects=(await subject(app, "siren", SIREN),))
    csrf = await login(http, *AUDITOR)
    await app.state.audit.writer.stop()
    response = await search(http, csrf, subject=NIR, reason="Enquête")
    assert response.status_code == 503
    assert "audit.unavailable" in response.text
    assert "location" not in response.headers


async def test_the_export_streams_the_filtered_view_and_is_audited(
    http: httpx.AsyncClient, app: FastAPI, db: Database
) -> None:
    march = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    # 2,500 records: more than one export batch (1,000).
    writes = [
        app.state.audit.writer.write(
            AuditEntry(
                request_id=f"bulk-{i}",
                operation="get_turnover",
                outcome="granted",
                http_status=200,
                partner_id=5,
                connector="turnover",
                connector_version=1,
                case_reference=f"C-{i}",
                occurred_at=march + dt.timedelta(minutes=i),
            )
        )
        for i in range(2500)
    ]
    ids = list(await asyncio.gather(*writes))
    formula = await write_record(
        app,
        partner_id=5,
        occurred_at=march - dt.timedelta(days=1),
        case_reference='=HYPERLINK("http://evil")',
    )
    await write_record(app, partner_id=6, occurred_at=march)
    csrf = await login(http, *AUDITOR)
    handle = handle_of(await search(http, csrf, partner_id="5"))
    response = await http.get("/console/audit/export.csv", params={"q": handle})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"].startswith('attachment; filename="audit-')
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [int(row["id"]) for row in rows] == [*reversed(ids), formula]
    assert {row["partner_id"] for row in rows} == {"5"}
    assert rows[0]["case_reference"] == "C-2499"
    assert rows[-1]["case_reference"] == '\'=HYPERLINK("http://evil")'
    with db.sync_session() as session:
        export = session.scalars(
            select(AuditRecord).where(AuditRecord.operation == "staff.export")
        ).one()
    assert export.client_id == "staff:alice"
