"""What the console's pages show, and the staff actions it records in the audit trail.

Services open their own short transactions on the app's ``Database``; nothing here renders
HTML. A person's identifier typed by staff enters through ``resolve_subject`` only, leaves
it as pseudonyms, and is never stored, logged or sent back.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import re
import secrets
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final
from zoneinfo import ZoneInfo

from fastapi import Request
from pydantic import ValidationError

from gateway.audit.models import AuditCheckpoint, AuditRecord, AuditSubjectEntry
from gateway.audit.pseudonym import Pseudonymiser
from gateway.audit.schemas import OUTCOMES, AuditEntry, AuditSubject, Outcome
from gateway.audit.signing import CheckpointSigner
from gateway.audit.subject import identify
from gateway.audit.verify import verify_trail
from gateway.consent.models import Consent, ConsentEvent
from gateway.console.auth import StaffContext
from gateway.console.models import ConsoleVerification, StaffSearch
from gateway.console.repository import (
    AuditRepository,
    ConsentRepository,
    RegistryRepository,
    SearchRepository,
    VerificationRepository,
    linked_identifiers,
)
from gateway.console.schemas import (
    FIRST_SEARCH_DATE,
    LAST_SEARCH_DATE,
    PAGE_SIZE,
    AuditFilters,
    ConsentState,
    Cursor,
    SubjectFilter,
    SubjectPseudonym,
    has_control_characters,
    in_search_range,
)
from gateway.database import Database, utcnow
from gateway.errors import NotFoundError, UnprocessableError, request_id_of
from gateway.identifiers import NIR_SHAPE
from gateway.settings import Settings

SEARCH_LIFETIME: Final = dt.timedelta(hours=12)
# What ``secrets.token_urlsafe`` makes; anything else cannot be a handle, and is not sent to
# the database (a NUL character, for one, makes PostgreSQL's driver raise).
HANDLE_PATTERN: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")
EXPORT_BATCH: Final = 1000
SUBJECT_REPORT_LIMIT: Final = 5000
CONSOLE_CONNECTOR: Final = "console"
# Records of the consent API name the person but carry none of their data out: the subject
# page shows consents from the consent ledger instead.
CONSENT_CONNECTOR: Final = "consents"
EXPORT_COLUMNS: Final = (
    "id",
    "occurred_at",
    "request_id",
    "partner_id",
    "partner",
    "client_id",
    "connector",
    "connector_version",
    "operation",
    "purpose",
    "recipient",
    "legal_basis",
    "consent_id",
    "case_reference",
    "outcome",
    "reason_code",
    "http_status",
    "response_sha256",
    "latency_us",
)


class SearchUnknownError(NotFoundError):
    def __init__(self) -> None:
        super().__init__(
            "console.search_unknown",
            "This search has expired or belongs to someone else: run it again.",
        )


def legal_zone(settings: Settings) -> ZoneInfo:
    return ZoneInfo(settings.legal_timezone)


# --- staff actions in the audit trail --------------------------------------------------------


async def record_staff_action(
    request: Request,
    client_id: str,
    operation: str,
    outcome: Outcome,
    http_status: int,
    *,
    subject: SubjectFilter | None = None,
    case_reference: str | None = None,
    reason_code: str | None = None,
) -> None:
    """Commit an audit record of a staff action; raises ``AuditUnavailableError`` otherwise.

    Callers record before they show anything: a lookup that cannot be audited shows nothing.
    """
    subjects = [
        AuditSubject(item.kind, item.pseudonym, item.key_id)
        for item in (subject.pseudonyms if subject else ())
    ]
    try:
        entry = AuditEntry(
            request_id=request_id_of(request) or uuid.uuid4().hex,
            operation=operation,
            outcome=outcome,
            http_status=http_status,
            client_id=client_id,
            connector=CONSOLE_CONNECTOR,
            case_reference=case_reference or None,
            reason_code=reason_code,
            subjects=subjects,
        )
    except ValueError as exc:
        # A backstop: the forms refuse what the trail would (``free_text_error``), but text the
        # trail refuses must end in a refusal page, not a 500. Nothing was written or shown.
        raise UnprocessableError(
            "console.request_invalid", "The request holds text the audit trail refuses."
        ) from exc
    await request.app.state.audit.writer.write(entry)


# --- subjects --------------------------------------------------------------------------------


def _resolve_subject(db: Database, pseudonymiser: Pseudonymiser, typed: str) -> SubjectFilter:
    kind, normalised = identify(typed)
    with db.sync_session() as session:
        identifiers = linked_identifiers(session, kind, normalised)
    # A trail without any pseudonym key yet gets its first one, as its first record would.
    pseudonymiser.active_key_sync()
    pseudonyms = [
        SubjectPseudonym(kind=item_kind, pseudonym=value, key_id=key_id)
        for item_kind, identifier in identifiers
        for key_id, value in pseudonymiser.all_pseudonyms(item_kind, identifier)
    ]
    return SubjectFilter(typed=kind, identifiers=len(identifiers), pseudonyms=tuple(pseudonyms))


async def resolve_subject(db: Database, pseudonymiser: Pseudonymiser, typed: str) -> SubjectFilter:
    """The person behind a NIR or SIREN typed by staff, as pseudonyms under every key.

    Raises ``InvalidIdentifierError`` (whose message never repeats the input).
    """
    return await asyncio.to_thread(_resolve_subject, db, pseudonymiser, typed)


# --- saved searches --------------------------------------------------------------------------


async def save_search(db: Database, staff: StaffContext, kind: str, filters: AuditFilters) -> str:
    """Keep ``filters`` server-side; returns the opaque handle result pages carry."""
    now = utcnow()
    handle = secrets.token_urlsafe(18)
    async with db.async_session.begin() as session:
        searches = SearchRepository(session)
        await searches.purge_expired(now)
        await searches.add(
            StaffSearch(
                id=handle,
                staff_id=staff.staff_id,
                kind=kind,
                criteria=filters.model_dump(mode="json", exclude_defaults=True),
                created_at=now,
                expires_at=now + SEARCH_LIFETIME,
            )
        )
    return handle


async def load_search(db: Database, staff: StaffContext, kind: str, handle: str) -> AuditFilters:
    if not HANDLE_PATTERN.fullmatch(handle):
        raise SearchUnknownError()
    async with db.async_session() as session:
        search = await SearchRepository(session).get(handle, staff.staff_id, utcnow())
    if search is None or search.kind != kind:
        raise SearchUnknownError()
    try:
        return AuditFilters.model_validate(search.criteria)
    except ValidationError as exc:
        raise SearchUnknownError() from exc


# --- audit search ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    records: list[AuditRecord]
    next_cursor: Cursor | None
    partner_names: Mapping[int, str] = field(default_factory=dict)


async def search_page(
    db: Database,
    filters: AuditFilters,
    zone: ZoneInfo,
    *,
    after: Cursor | None = None,
    page_size: int = PAGE_SIZE,
    with_partner_names: bool = True,
) -> Page:
    """One page of the audit search, newest first; ``next_cursor`` when more follow."""
    async with db.async_session() as session:
        rows = await AuditRepository(session).search(
            filters, zone, after=after, limit=page_size + 1
        )
        names = await RegistryRepository(session).partner_names() if with_partner_names else {}
    more = len(rows) > page_size
    rows = rows[:page_size]
    cursor = Cursor(rows[-1].occurred_at, rows[-1].id) if more else None
    return Page(rows, cursor, names)


def _cell(value: Any) -> Any:
    # A spreadsheet runs a cell starting with = + - @ as a formula; free text comes from
    # partners (case references), so such cells are quoted.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _csv_lines(rows: Iterable[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerows([[_cell(value) for value in row] for row in rows])
    return buffer.getvalue()


async def export_csv(db: Database, filters: AuditFilters, zone: ZoneInfo) -> AsyncIterator[str]:
    """The whole filtered view as CSV, produced one keyset batch at a time."""
    yield _csv_lines([EXPORT_COLUMNS])
    cursor: Cursor | None = None
    names: Mapping[int, str] | None = None
    while True:
        page = await search_page(
            db,
            filters,
            zone,
            after=cursor,
            page_size=EXPORT_BATCH,
            with_partner_names=names is None,
        )
        if names is None:
            names = page.partner_names
        yield _csv_lines(
            [
                (
                    r.id,
                    r.occurred_at.isoformat(),
                    r.request_id,
                    r.partner_id,
                    names.get(r.partner_id, "") if r.partner_id is not None else "",
                    r.client_id,
                    r.connector,
                    r.connector_version,
                    r.operation,
                    r.purpose,
                    r.recipient,
                    r.legal_basis,
                    r.consent_id,
                    r.case_reference,
                    r.outcome,
                    r.reason_code,
                    r.http_status,
                    r.response_sha256,
                    r.latency_us,
                )
                for r in page.records
            ]
        )
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


# --- record detail ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordDetail:
    record: AuditRecord
    partner_name: str | None
    subjects: list[AuditSubjectEntry]
    subject_count: int
    seal_position: int | None
    chain_hash: str | None
    checkpoint: AuditCheckpoint | None
    pending: bool


async def record_detail(db: Database, record_id: int) -> RecordDetail:
    async with db.async_session() as session:
        audit = AuditRepository(session)
        record = await audit.record(record_id)
        if record is None:
            raise NotFoundError("console.record_unknown", "No audit record has this number.")
        names = await RegistryRepository(session).partner_names()
        seal = await audit.seal(record_id)
        checkpoint = await audit.covering_checkpoint(seal.position) if seal else None
        return RecordDetail(
            record=record,
            partner_name=names.get(record.partner_id) if record.partner_id is not None else None,
            subjects=await audit.subjects(record_id),
            subject_count=await audit.subject_count(record_id),
            seal_position=seal.position if seal else None,
            chain_hash=seal.chain_hash if seal else None,
            checkpoint=checkpoint,
            pending=await audit.is_pending(record_id),
        )


# --- a person's right of access --------------------------------------------------------------


@dataclass(frozen=True)
class ConsentView:
    consent: Consent
    partner_name: str
    state: ConsentState
    events: list[ConsentEvent]


@dataclass(frozen=True)
class SubjectReport:
    disclosures: list[AuditRecord]
    refusals: list[AuditRecord]
    staff_lookups: list[AuditRecord]
    consents: list[ConsentView]
    partner_names: Mapping[int, str]
    truncated: bool
    generated_at: dt.datetime


def consent_state(
    consent: Consent, events: Sequence[ConsentEvent], now: dt.datetime
) -> ConsentState:
    if any(event.event == "revoked" for event in events):
        return "revoked"
    if consent.expires_at <= now:
        return "expired"
    return "active"


async def subject_report(db: Database, subject: SubjectFilter) -> SubjectReport:
    """Every record naming the person, split into disclosures, refusals and staff lookups,
    and their consents with each one's history."""
    now = utcnow()
    async with db.async_session() as session:
        records = await AuditRepository(session).naming(subject, SUBJECT_REPORT_LIMIT + 1)
        consent_repository = ConsentRepository(session)
        consents = await consent_repository.of_subject(subject)
        events = await consent_repository.events([consent.id for consent in consents])
        names = await RegistryRepository(session).partner_names()
    truncated = len(records) > SUBJECT_REPORT_LIMIT
    records = records[:SUBJECT_REPORT_LIMIT]
    data = [r for r in records if r.connector not in (CONSOLE_CONNECTOR, CONSENT_CONNECTOR)]
    by_consent: dict[str, list[ConsentEvent]] = {}
    for event in events:
        by_consent.setdefault(event.consent_id, []).append(event)
    return SubjectReport(
        disclosures=[r for r in data if r.outcome == "granted"],
        refusals=[r for r in data if r.outcome != "granted"],
        staff_lookups=[r for r in records if r.connector == CONSOLE_CONNECTOR],
        consents=[
            ConsentView(
                consent=consent,
                partner_name=names.get(consent.partner_id, str(consent.partner_id)),
                state=consent_state(consent, by_consent.get(consent.id, []), now),
                events=by_consent.get(consent.id, []),
            )
            for consent in consents
        ],
        partner_names=names,
        truncated=truncated,
        generated_at=now,
    )


# --- integrity -------------------------------------------------------------------------------


@dataclass(frozen=True)
class IntegrityStatus:
    checkpoint: AuditCheckpoint | None
    pending: int
    oldest_pending_at: dt.datetime | None
    last_verification: ConsoleVerification | None
    checked_at: dt.datetime

    @property
    def sealing_lag(self) -> dt.timedelta:
        """How long the oldest unsealed record has waited for its seal (zero when none)."""
        if self.oldest_pending_at is None:
            return dt.timedelta(0)
        return max(dt.timedelta(0), self.checked_at - self.oldest_pending_at)

    @property
    def since_checkpoint(self) -> dt.timedelta | None:
        if self.checkpoint is None:
            return None
        return max(dt.timedelta(0), self.checked_at - self.checkpoint.created_at)


async def integrity_status(db: Database) -> IntegrityStatus:
    async with db.async_session() as session:
        audit = AuditRepository(session)
        checkpoint = await audit.last_checkpoint()
        pending, oldest = await audit.pending()
        last = await VerificationRepository(session).last()
    return IntegrityStatus(checkpoint, pending, oldest, last, utcnow())


async def run_verification(
    db: Database, signer: CheckpointSigner, staff: StaffContext
) -> ConsoleVerification:
    """Verify the whole trail with the audit package's verifier, and keep what it found."""
    started = utcnow()
    report = await asyncio.to_thread(verify_trail, db.sync_engine, signer)
    problem = report.problem
    run = ConsoleVerification(
        started_at=started,
        finished_at=utcnow(),
        staff_name=staff.name,
        ok=report.ok,
        records=report.records,
        checkpoints=report.checkpoints,
        pending=report.pending,
        seconds=report.seconds,
        problem_code=problem.code if problem else None,
        problem_message=problem.message if problem else None,
        problem_record_id=problem.record_id if problem else None,
    )
    async with db.async_session.begin() as session:
        await VerificationRepository(session).add(run)
    return run


# --- registry (admin) ------------------------------------------------------------------------


async def registry(db: Database) -> dict[str, Any]:
    async with db.async_session() as session:
        repository = RegistryRepository(session)
        return {
            "partners": await repository.partners(),
            "clients": await repository.clients(),
            "habilitations": await repository.habilitations(),
        }


# --- filters from the search form ------------------------------------------------------------


def connector_choices(versions: Iterable[Any]) -> list[tuple[str, str]]:
    """(value, label) of the connector filter: every dataset, then each of its versions."""
    choices: list[tuple[str, str]] = []
    datasets: dict[str, list[int]] = {}
    for version in versions:
        datasets.setdefault(version.dataset, []).append(version.version)
    for dataset in sorted(datasets):
        choices.append((dataset, f"{dataset} (toutes versions)"))
        choices.extend((f"{dataset}.v{n}", f"{dataset} v{n}") for n in sorted(datasets[dataset]))
    choices.append((CONSOLE_CONNECTOR, "console (actions du personnel)"))
    return choices


FREE_TEXT_FIELDS: Final = {"client_id": 128, "purpose": 64, "reason": 100}
NIR_ELSEWHERE: Final = "Un NIR ne se saisit que dans le champ « NIR ou SIREN »."
CONTROL_CHARACTERS: Final = "Caractères de contrôle ou invisibles refusés : retapez ce champ."
DATE_OUT_OF_RANGE: Final = (
    f"Date comprise entre le {FIRST_SEARCH_DATE:%d/%m/%Y} et le {LAST_SEARCH_DATE:%d/%m/%Y}."
)


def free_text_error(value: str, limit: int) -> str | None:
    """The message for a free-text field staff typed (a reason, a client id), or ``None``.

    Checked before the value reaches the audit trail or a query: the trail refuses what the
    database could not store, and a refusal there would be a 500 rather than a field message.
    """
    if has_control_characters(value):
        return CONTROL_CHARACTERS
    if len(value) > limit:
        return f"{limit} caractères au plus."
    if NIR_SHAPE.search(value):
        return NIR_ELSEWHERE
    return None


def _text(form: Mapping[str, Any], name: str) -> str | None:
    value = form.get(name)
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value or None


def filters_from_form(
    form: Mapping[str, Any], subject: SubjectFilter | None
) -> tuple[AuditFilters | None, dict[str, str]]:
    """The filters a search form asks for, or the message of each field that is wrong."""
    errors: dict[str, str] = {}
    values: dict[str, Any] = {"subject": subject}
    for name in ("date_from", "date_to"):
        raw = _text(form, name)
        if raw is not None:
            try:
                day = dt.date.fromisoformat(raw)
            except ValueError:
                errors[name] = "Date attendue au format AAAA-MM-JJ."
                continue
            if in_search_range(day):
                values[name] = day
            else:
                errors[name] = DATE_OUT_OF_RANGE
    partner = _text(form, "partner_id")
    if partner is not None:
        if partner.isascii() and partner.isdigit() and len(partner) < 10:
            values["partner_id"] = int(partner)
        else:
            errors["partner_id"] = "Partenaire inconnu."
    connector = _text(form, "connector")
    if connector is not None and has_control_characters(connector):
        errors["connector"] = "Connecteur inconnu."
    elif connector is not None:
        dataset, _, version = connector.partition(".v")
        values["connector"] = dataset
        if version:
            if version.isascii() and version.isdigit() and len(version) < 10:
                values["connector_version"] = int(version)
            else:
                errors["connector"] = "Connecteur inconnu."
    version_field = _text(form, "connector_version")
    if version_field is not None:
        if version_field.isascii() and version_field.isdigit() and len(version_field) < 10:
            values["connector_version"] = int(version_field)
        else:
            errors["connector_version"] = "Un numéro de version est un entier."
    outcome = _text(form, "outcome")
    if outcome is not None:
        if outcome in OUTCOMES:
            values["outcome"] = outcome
        else:
            errors["outcome"] = "Issue inconnue."
    for name, limit in FREE_TEXT_FIELDS.items():
        raw = _text(form, name)
        if raw is not None:
            message = free_text_error(raw, limit)
            if message is None:
                values[name] = raw
            else:
                errors[name] = message
    if errors:
        return None, errors
    try:
        return AuditFilters(**values), {}
    except ValidationError as exc:
        for error in exc.errors():
            location = str(error["loc"][0]) if error.get("loc") else "date_to"
            errors[location] = "Valeur refusée."
        if "date_to" in errors or not errors:
            errors["date_to"] = "La date de fin précède la date de début."
        return None, errors
