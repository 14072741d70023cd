"""What the console's pages show: a record, a person's right of access, integrity, registry."""

from __future__ import annotations

import datetime as dt
import re
import uuid

import httpx
from console_support import ADMIN, AUDITOR, csrf_of, login, subject, write_record
from fastapi import FastAPI
from sqlalchemy import select, text

from gateway.app import create_app
from gateway.audit import run_sealer_once
from gateway.consent.models import Consent, ConsentEvent, ConsentSubject
from gateway.console.models import ConsoleVerification
from gateway.database import Database, utcnow
from gateway.identifiers import NIR_SHAPE, nir_with_key, siren_with_checksum
from gateway.settings import Settings
from tests.factories import create_account
from tests.gateway.audit.audit_factories import as_attacker
from tests.gateway.pipeline.pipeline_support import make_partner

NIR = nir_with_key("2920375120045")
SIREN = siren_with_checksum("55203253")
SCRIPT = '<script>alert("x")</script>'


async def open_subject_page(http: httpx.AsyncClient, csrf: str, typed: str) -> httpx.Response:
    response = await http.post(
        "/console/subject",
        data={"csrf_token": csrf, "subject": typed, "reason": "Demande d'accès 2026-9"},
    )
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert re.fullmatch(r"/console/subject/[A-Za-z0-9_-]{24}", location)
    return await http.get(location)


async def test_a_record_page_shows_everything_escaped_and_its_seal(
    http: httpx.AsyncClient, app: FastAPI, db: Database
) -> None:
    record_id = await write_record(
        app,
        case_reference=SCRIPT,
        recipient="<b>bold</b>",
        subjects=(await subject(app, "siren", SIREN),),
    )
    await login(http, *AUDITOR)
    pending = await http.get(f"/console/audit/records/{record_id}")
    assert pending.status_code == 200
    assert "En attente de scellement" in pending.text
    assert SCRIPT not in pending.text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in pending.text
    assert "&lt;b&gt;bold&lt;/b&gt;" in pending.text
    assert SIREN not in pending.text, "subjects are shown as pseudonyms"
    run_sealer_once(db.sync_engine, app.state.audit.signer)
    sealed = await http.get(f"/console/audit/records/{record_id}")
    assert "Scellé à la position" in sealed.text
    for missing in ("/console/audit/records/424242", "/console/audit/records/0"):
        response = await http.get(missing)
        assert response.status_code == 404
        assert "console.record_unknown" in response.text
    malformed = await http.get("/console/audit/records/abc")
    assert malformed.status_code == 422
    assert malformed.headers["content-type"].startswith("text/html")


async def test_the_subject_page_lists_disclosures_consents_and_lookups(
    http: httpx.AsyncClient, app: FastAPI, db: Database, settings: Settings
) -> None:
    caf = make_partner(db, settings, "CAF du Nord", "caf")
    with db.sync_session.begin() as session:
        create_account(session, nir=NIR, siren=SIREN)
        caf_id = session.scalar(text("SELECT id FROM partner WHERE name = 'CAF du Nord'"))
    by_siren = await subject(app, "siren", SIREN)
    disclosed = await write_record(
        app, partner_id=caf_id, case_reference=SCRIPT, subjects=(by_siren,)
    )
    await write_record(
        app,
        partner_id=caf_id,
        outcome="refused",
        reason_code="consent.missing",
        http_status=403,
        subjects=(by_siren,),
    )
    await write_record(
        app,
        partner_id=caf_id,
        subjects=(await subject(app, "siren", siren_with_checksum("41816609")),),
    )
    consent_id = str(uuid.uuid4())
    granted_at = utcnow() - dt.timedelta(days=3)
    with db.sync_session.begin() as session:
        session.add(
            Consent(
                id=consent_id,
                partner_id=caf_id,
                client_id=caf.client_id,
                scopes="turnover:read",
                purpose="RSA_INSTRUCTION",
                evidence="formulaire",
                legal_basis="consentement",
                granted_at=granted_at,
                expires_at=granted_at + dt.timedelta(days=30),
                receipt_jws="x.y.z",
            )
        )
        session.flush()
        session.add(
            ConsentSubject(
                consent_id=consent_id,
                kind=by_siren.kind,
                pseudonym=by_siren.pseudonym,
                key_id=by_siren.key_id,
            )
        )
        session.add_all(
            [
                ConsentEvent(
                    consent_id=consent_id,
                    event="granted",
                    occurred_at=granted_at,
                    client_id=caf.client_id,
                ),
                ConsentEvent(
                    consent_id=consent_id,
                    event="revoked",
                    occurred_at=utcnow(),
                    client_id=caf.client_id,
                ),
            ]
        )
    csrf = await login(http, *AUDITOR)
    page = await open_subject_page(http, csrf, NIR)
    assert page.status_code == 200
    html = page.text
    disclosures = html.split('id="table-communications"')[1].split("</table>")[0]
    assert f'href="/console/audit/records/{disclosed}"' in disclosures
    assert disclosures.count("<tr>") == 2, "one header row and one disclosure"
    assert "&lt;script&gt;" in disclosures
    consents = html.split('id="table-consentements"')[1].split("</table>")[0]
    assert "Retiré" in consents
    assert "donné le" in consents
    assert "retiré le" in consents
    refusals = html.split('id="table-refus"')[1].split("</table>")[0]
    assert "consent.missing" in refusals
    lookups = html.split('id="table-consultations"')[1].split("</table>")[0]
    assert "staff.subject_access" in lookups
    assert "Demande d&#39;accès 2026-9" in lookups
    assert not NIR_SHAPE.search(html)
    assert SIREN not in html
    assert "data-console-print" in html


async def test_the_subject_page_is_for_its_author_only(http: httpx.AsyncClient) -> None:
    csrf = await login(http, *AUDITOR)
    response = await http.post(
        "/console/subject",
        data={"csrf_token": csrf, "subject": SIREN, "reason": "Demande"},
    )
    location = response.headers["location"]
    assert (await http.get(location)).status_code == 200
    http.cookies.clear()
    await login(http, *ADMIN)
    assert (await http.get(location)).status_code == 404


async def test_a_subject_form_error_does_not_echo_the_identifier(http: httpx.AsyncClient) -> None:
    csrf = await login(http, *AUDITOR)
    bad = NIR[:-2] + ("00" if NIR[-2:] != "00" else "01")
    response = await http.post(
        "/console/subject", data={"csrf_token": csrf, "subject": bad, "reason": ""}
    )
    assert response.status_code == 422
    assert bad not in response.text
    assert bad[:13] not in response.text
    assert "Identifiant invalide" in response.text
    assert "Indiquez le motif" in response.text


async def test_integrity_panel_and_a_verification_that_finds_tampering(
    http: httpx.AsyncClient, app: FastAPI, db: Database
) -> None:
    first = await write_record(app)
    await write_record(app)
    run_sealer_once(db.sync_engine, app.state.audit.signer)
    await write_record(app, occurred_at=utcnow() - dt.timedelta(seconds=90))
    csrf = await login(http, *ADMIN)
    panel = await http.get("/console/integrity")
    assert "Position 2" in panel.text
    assert "Jamais" in panel.text
    # The record written 90 s ago, and the login's own record, wait for their seal.
    assert "2 enregistrement(s) en attente de scellement" in panel.text
    assert re.search(r'id="tuile-retard".*?>1 min \d\d s<', panel.text, re.DOTALL)
    verified = await http.post("/console/integrity/verify", data={"csrf_token": csrf})
    assert verified.status_code == 303
    panel = await http.get("/console/integrity")
    assert "Chaîne intacte" in panel.text
    assert "par root" in panel.text

    with as_attacker(db, "audit_record") as conn:
        conn.execute(
            text("UPDATE audit_record SET purpose = 'JOB_SEEKING' WHERE id = :id"), {"id": first}
        )
    await http.post("/console/integrity/verify", data={"csrf_token": csrf_of(panel.text)})
    panel = await http.get("/console/integrity")
    assert "Anomalie" in panel.text
    assert "record.altered" in panel.text
    assert f'href="/console/audit/records/{first}"' in panel.text
    with db.sync_session() as session:
        runs = session.scalars(select(ConsoleVerification).order_by(ConsoleVerification.id)).all()
    assert [(run.ok, run.problem_code, run.staff_name) for run in runs] == [
        (True, None, "root"),
        (False, "record.altered", "root"),
    ]


async def test_the_registry_pages_list_partners_clients_and_habilitations(
    http: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    partner = make_partner(db, settings, "Fonds <FAF>", "training-fund")
    partner.grant("cfp:read", purposes=["TRAINING_FUNDING"])
    await login(http, *ADMIN)
    partners = (await http.get("/console/partners")).text
    assert "Fonds &lt;FAF&gt;" in partners
    assert partner.client_id in (await http.get("/console/clients")).text
    habilitations = (await http.get("/console/habilitations")).text
    assert "TRAINING_FUNDING" in habilitations
    assert "En vigueur" in habilitations


async def test_without_the_dsfr_the_console_still_works_unstyled(
    settings: Settings, staff: None, tmp_path: object
) -> None:
    bare = settings.model_copy(update={"dsfr_dir": settings.var_dir / "no-dsfr-here"})
    app = create_app(bare)
    assert app.state.console_dsfr is False
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=bare.issuer) as http,
    ):
        await login(http, *AUDITOR)
        page = await http.get("/console/audit")
        assert page.status_code == 200
        assert "/console/static/dsfr/" not in page.text
        assert (await http.get("/console/static/console/console.css")).status_code == 200


async def test_the_dsfr_and_our_assets_are_served_from_self(
    http: httpx.AsyncClient, app: FastAPI
) -> None:
    if not app.state.console_dsfr:
        return  # node_modules absent: covered by the test above
    for path in (
        "/console/static/dsfr/dsfr.min.css",
        "/console/static/dsfr/dsfr.module.min.js",
        "/console/static/console/console.js",
    ):
        response = await http.get(path)
        assert response.status_code == 200, path
