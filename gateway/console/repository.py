"""Every query the console runs.

The audit search is keyset-paginated, newest first: a page is ``ORDER BY occurred_at DESC,
id DESC LIMIT n`` below the last row of the previous page, never an OFFSET, so page 1,000
costs what page 1 costs and records written meanwhile do not shift the pages. With a partner
filter it walks ``ix_audit_record_partner_id_occurred_at``; no page ever counts the matches,
which on a large trail would cost more than the page itself.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, and_, delete, func, or_, select, true, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from gateway.audit.models import (
    AuditCheckpoint,
    AuditPending,
    AuditRecord,
    AuditSeal,
    AuditSubjectEntry,
)
from gateway.audit.schemas import SubjectKind
from gateway.consent.models import Consent, ConsentEvent, ConsentSubject
from gateway.console.models import (
    ConsoleVerification,
    StaffAccount,
    StaffSearch,
    StaffSession,
)
from gateway.console.schemas import AuditFilters, Cursor, SubjectFilter
from gateway.console.throttle import BUCKET_PREFIX, Window
from gateway.oauth.models import RateLimitCounter
from gateway.partners.models import Habilitation, OAuthClient, Partner
from gateway.reference.models import Account


class StaffRepository:
    """Staff accounts, on a sync session (the CLI, and logins in a worker thread)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def by_name(self, name: str) -> StaffAccount | None:
        return self.session.scalar(select(StaffAccount).where(StaffAccount.name == name))

    def all(self) -> Sequence[StaffAccount]:
        return self.session.scalars(select(StaffAccount).order_by(StaffAccount.name)).all()

    def add(self, account: StaffAccount) -> StaffAccount:
        self.session.add(account)
        self.session.flush()
        return account

    def count_failure(self, name: str) -> int | None:
        """Add a failed login to the account named ``name``; its failures since the last
        success, or ``None`` when no account has that name.

        One statement: failures sent in parallel each add one (a value read, then written back
        by each request, would count them as one).
        """
        failures: int | None = self.session.scalar(
            update(StaffAccount)
            .where(StaffAccount.name == name)
            .values(failed_logins=StaffAccount.failed_logins + 1)
            .returning(StaffAccount.failed_logins)
        )
        return failures

    def record_login(self, staff_id: int, now: dt.datetime, password_hash: str | None) -> bool:
        """Note a successful login (and a rehashed password); ``False`` when the account was
        disabled meanwhile, in which case nothing changes and no session may open."""
        values: dict[str, Any] = {"failed_logins": 0, "locked_until": None, "last_login_at": now}
        if password_hash is not None:
            values["password_hash"] = password_hash
        updated = self.session.scalar(
            update(StaffAccount)
            .where(StaffAccount.id == staff_id, StaffAccount.disabled_at.is_(None))
            .values(**values)
            .returning(StaffAccount.id)
        )
        return updated is not None

    def end_sessions(self, staff_id: int, now: dt.datetime) -> int:
        sessions = self.session.scalars(
            select(StaffSession).where(
                StaffSession.staff_id == staff_id, StaffSession.ended_at.is_(None)
            )
        ).all()
        for staff_session in sessions:
            staff_session.ended_at = now
        return len(sessions)


class LoginThrottleRepository:
    """Login attempts per (name, address) and window, in ``rate_limit_counter`` (sync session:
    logins run in a worker thread)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def reserve(self, windows: Sequence[Window]) -> tuple[int, ...]:
        """Add one attempt to each window; the count of each, this attempt included.

        ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING``: the database serialises the
        increments, so concurrent attempts, from any process, each get a distinct count.
        """
        dialect = self.session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        # Sorted: two transactions lock the same rows in the same order, never a deadlock.
        ordered = sorted(windows, key=lambda window: (window.bucket, window.start))
        statement: Any = insert(RateLimitCounter).values(
            [{"bucket": w.bucket, "window_start_epoch": w.start, "hits": 1} for w in ordered]
        )
        statement = statement.on_conflict_do_update(
            index_elements=["bucket", "window_start_epoch"],
            set_={"hits": RateLimitCounter.hits + 1},
        ).returning(
            RateLimitCounter.bucket, RateLimitCounter.window_start_epoch, RateLimitCounter.hits
        )
        counts = {(row[0], row[1]): int(row[2]) for row in self.session.execute(statement)}
        return tuple(counts[(window.bucket, window.start)] for window in windows)

    def release(self, windows: Sequence[Window]) -> None:
        """Give back one attempt taken by ``reserve`` in each window."""
        for window in sorted(windows, key=lambda window: (window.bucket, window.start)):
            self.session.execute(
                update(RateLimitCounter)
                .where(
                    RateLimitCounter.bucket == window.bucket,
                    RateLimitCounter.window_start_epoch == window.start,
                    RateLimitCounter.hits > 0,
                )
                .values(hits=RateLimitCounter.hits - 1)
            )

    def purge(self, before: int) -> None:
        """Delete the console's counters of windows that started before ``before``."""
        self.session.execute(
            delete(RateLimitCounter).where(
                RateLimitCounter.window_start_epoch < before,
                RateLimitCounter.bucket.startswith(BUCKET_PREFIX, autoescape=True),
            )
        )


class StaffSessionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, session_id: str, staff_id: int, csrf: str, now: dt.datetime) -> None:
        self.session.add(
            StaffSession(
                id=session_id, staff_id=staff_id, csrf_token=csrf, created_at=now, last_seen_at=now
            )
        )

    async def with_account(self, session_id: str) -> tuple[StaffSession, StaffAccount] | None:
        row = (
            await self.session.execute(
                select(StaffSession, StaffAccount)
                .join(StaffAccount, StaffAccount.id == StaffSession.staff_id)
                .where(StaffSession.id == session_id)
            )
        ).first()
        return None if row is None else (row[0], row[1])

    async def end(self, session_id: str, now: dt.datetime) -> None:
        staff_session = await self.session.get(StaffSession, session_id)
        if staff_session is not None and staff_session.ended_at is None:
            staff_session.ended_at = now


class SearchRepository:
    """Saved searches: the server-side side of the opaque handles in result URLs."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, search: StaffSearch) -> None:
        self.session.add(search)

    async def get(self, handle: str, staff_id: int, now: dt.datetime) -> StaffSearch | None:
        # Bound to its author: a handle seen over a shoulder or in a log opens nothing.
        return await self.session.scalar(
            select(StaffSearch).where(
                StaffSearch.id == handle,
                StaffSearch.staff_id == staff_id,
                StaffSearch.expires_at > now,
            )
        )

    async def purge_expired(self, now: dt.datetime) -> None:
        await self.session.execute(delete(StaffSearch).where(StaffSearch.expires_at <= now))


def _naming(column: Any, subject: SubjectFilter) -> ColumnElement[bool]:
    """Rows of ``column``'s table carrying one of the subject's pseudonyms under its own key."""
    table = column.table
    return or_(
        *(
            and_(table.c.pseudonym == item.pseudonym, table.c.key_id == item.key_id)
            for item in subject.pseudonyms
        )
    )


def audit_conditions(filters: AuditFilters, zone: ZoneInfo) -> list[ColumnElement[bool]]:
    """The WHERE clauses of a search (without its cursor)."""
    since, until = filters.bounds(zone)
    conditions: list[ColumnElement[bool]] = []
    if since is not None:
        conditions.append(AuditRecord.occurred_at >= since)
    if until is not None:
        conditions.append(AuditRecord.occurred_at < until)
    if filters.partner_id is not None:
        conditions.append(AuditRecord.partner_id == filters.partner_id)
    if filters.client_id:
        conditions.append(AuditRecord.client_id == filters.client_id)
    if filters.connector:
        conditions.append(AuditRecord.connector == filters.connector)
    if filters.connector_version is not None:
        conditions.append(AuditRecord.connector_version == filters.connector_version)
    if filters.purpose:
        conditions.append(AuditRecord.purpose == filters.purpose)
    if filters.outcome:
        conditions.append(AuditRecord.outcome == filters.outcome)
    if filters.subject is not None:
        named = select(AuditSubjectEntry.record_id).where(
            _naming(AuditSubjectEntry.pseudonym, filters.subject)
        )
        # The subject index is (pseudonym, occurred_at): the date range narrows it too.
        if since is not None:
            named = named.where(AuditSubjectEntry.occurred_at >= since)
        if until is not None:
            named = named.where(AuditSubjectEntry.occurred_at < until)
        conditions.append(AuditRecord.id.in_(named))
    return conditions


def _after(cursor: Cursor) -> ColumnElement[bool]:
    # Spelled out rather than as a row comparison: PostgreSQL only turns the first conjunct
    # into an index bound on (partner_id, occurred_at).
    return and_(
        AuditRecord.occurred_at <= cursor.occurred_at,
        or_(
            AuditRecord.occurred_at < cursor.occurred_at,
            AuditRecord.id < cursor.record_id,
        ),
    )


def search_query(
    filters: AuditFilters, zone: ZoneInfo, *, after: Cursor | None, limit: int
) -> Select[AuditRecord]:
    """The statement of one search page (also what benchmarks EXPLAIN)."""
    conditions = audit_conditions(filters, zone)
    if after is not None:
        conditions.append(_after(after))
    return (
        select(AuditRecord)
        .where(and_(true(), *conditions))
        .order_by(AuditRecord.occurred_at.desc(), AuditRecord.id.desc())
        .limit(limit)
    )


class AuditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def search(
        self, filters: AuditFilters, zone: ZoneInfo, *, after: Cursor | None, limit: int
    ) -> list[AuditRecord]:
        """Up to ``limit`` records matching ``filters``, newest first, after ``after``."""
        query = search_query(filters, zone, after=after, limit=limit)
        return list((await self.session.scalars(query)).all())

    async def record(self, record_id: int) -> AuditRecord | None:
        return await self.session.get(AuditRecord, record_id)

    async def subjects(self, record_id: int) -> list[AuditSubjectEntry]:
        return list(
            (
                await self.session.scalars(
                    select(AuditSubjectEntry)
                    .where(AuditSubjectEntry.record_id == record_id)
                    .order_by(AuditSubjectEntry.id)
                    .limit(1000)
                )
            ).all()
        )

    async def subject_count(self, record_id: int) -> int:
        return int(
            await self.session.scalar(
                select(func.count())
                .select_from(AuditSubjectEntry)
                .where(AuditSubjectEntry.record_id == record_id)
            )
            or 0
        )

    async def seal(self, record_id: int) -> AuditSeal | None:
        return await self.session.scalar(select(AuditSeal).where(AuditSeal.record_id == record_id))

    async def covering_checkpoint(self, position: int) -> AuditCheckpoint | None:
        return await self.session.scalar(
            select(AuditCheckpoint)
            .where(AuditCheckpoint.position >= position)
            .order_by(AuditCheckpoint.position)
            .limit(1)
        )

    async def is_pending(self, record_id: int) -> bool:
        return (await self.session.get(AuditPending, record_id)) is not None

    async def naming(self, subject: SubjectFilter, limit: int) -> list[AuditRecord]:
        """Records naming the subject, oldest first (the right of access reads as a history)."""
        named = select(AuditSubjectEntry.record_id).where(
            _naming(AuditSubjectEntry.pseudonym, subject)
        )
        query = (
            select(AuditRecord)
            .where(AuditRecord.id.in_(named))
            .order_by(AuditRecord.occurred_at, AuditRecord.id)
            .limit(limit)
        )
        return list((await self.session.scalars(query)).all())

    async def last_checkpoint(self) -> AuditCheckpoint | None:
        return await self.session.scalar(
            select(AuditCheckpoint).order_by(AuditCheckpoint.position.desc()).limit(1)
        )

    async def pending(self) -> tuple[int, dt.datetime | None]:
        """How many records wait for their seal, and when the oldest of them was written."""
        count = await self.session.scalar(select(func.count()).select_from(AuditPending))
        oldest = await self.session.scalar(
            select(AuditRecord.occurred_at)
            .join(AuditPending, AuditPending.record_id == AuditRecord.id)
            .order_by(AuditPending.record_id)
            .limit(1)
        )
        return int(count or 0), oldest


class ConsentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def of_subject(self, subject: SubjectFilter) -> list[Consent]:
        named = select(ConsentSubject.consent_id).where(_naming(ConsentSubject.pseudonym, subject))
        return list(
            (
                await self.session.scalars(
                    select(Consent)
                    .where(Consent.id.in_(named))
                    .order_by(Consent.granted_at, Consent.id)
                )
            ).all()
        )

    async def events(self, consent_ids: Sequence[str]) -> list[ConsentEvent]:
        if not consent_ids:
            return []
        return list(
            (
                await self.session.scalars(
                    select(ConsentEvent)
                    .where(ConsentEvent.consent_id.in_(list(consent_ids)))
                    .order_by(ConsentEvent.occurred_at, ConsentEvent.id)
                )
            ).all()
        )


class RegistryRepository:
    """The partner registry, read-only."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def partner_names(self) -> dict[int, str]:
        rows = await self.session.execute(select(Partner.id, Partner.name))
        return {partner_id: name for partner_id, name in rows}

    async def partners(self) -> list[Partner]:
        return list((await self.session.scalars(select(Partner).order_by(Partner.name))).all())

    async def clients(self) -> list[OAuthClient]:
        query = select(OAuthClient).order_by(OAuthClient.partner_id, OAuthClient.client_id)
        return list((await self.session.scalars(query)).unique().all())

    async def habilitations(self) -> list[Habilitation]:
        query = select(Habilitation).order_by(Habilitation.partner_id, Habilitation.id)
        return list((await self.session.scalars(query)).unique().all())


class VerificationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, run: ConsoleVerification) -> None:
        self.session.add(run)

    async def last(self) -> ConsoleVerification | None:
        return await self.session.scalar(
            select(ConsoleVerification).order_by(ConsoleVerification.id.desc()).limit(1)
        )


def linked_identifiers(
    session: Session, kind: SubjectKind, identifier: str
) -> list[tuple[SubjectKind, str]]:
    """The person's identifiers the reference store knows, starting from the one typed.

    A partner asks for turnover by SIREN while staff usually hold the person's NIR: the search
    covers both, as consents already do.
    """
    column = Account.nir if kind == "nir" else Account.siren
    row = session.execute(select(Account.nir, Account.siren).where(column == identifier)).first()
    if row is None:
        return [(kind, identifier)]
    return [("nir", row.nir), ("siren", row.siren)]
