"""Granting, revoking and finding consents; the state is derived from the ledger."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from connectors.kit import Subject
from gateway.audit.pseudonym import Pseudonymiser, hmac_pseudonym
from gateway.consent.models import Consent, ConsentEvent, ConsentSubject
from gateway.consent.receipt import receipt_claims, sign_receipt
from gateway.consent.schemas import ConsentEventOut, ConsentIn, ConsentOut, ConsentState
from gateway.database import Database, utcnow
from gateway.errors import ForbiddenError, NotFoundError, UnprocessableError
from gateway.keys.store import KeyStore
from gateway.oauth.status import HabilitationGrant
from gateway.reference.models import Account
from gateway.settings import Settings


def _revoked(consent_id: object) -> object:
    return exists().where(ConsentEvent.consent_id == consent_id, ConsentEvent.event == "revoked")


# How often a lookup that found no consent may re-read the pseudonym keys, in case a rotation
# in another process made the key the consent was recorded under.
_KEYS_RECHECK_SECONDS = 1.0


async def find_active_consent(
    db: Database,
    pseudonymiser: Pseudonymiser,
    *,
    partner_id: int,
    subject: Subject,
    scope: str,
    purpose: str,
) -> str | None:
    """The id of an active consent of this person for this partner, scope and purpose."""
    consent_id = await _active_consent(db, pseudonymiser, subject, partner_id, scope, purpose)
    if consent_id is None and await pseudonymiser.reload_if_older_than(_KEYS_RECHECK_SECONDS):
        consent_id = await _active_consent(db, pseudonymiser, subject, partner_id, scope, purpose)
    return consent_id


async def _active_consent(
    db: Database,
    pseudonymiser: Pseudonymiser,
    subject: Subject,
    partner_id: int,
    scope: str,
    purpose: str,
) -> str | None:
    pseudonyms = await pseudonymiser.known_pseudonyms(subject.kind, subject.identifier)
    now = utcnow()
    async with db.session() as session:
        rows = await session.execute(
            select(Consent.id, Consent.scopes)
            .join(ConsentSubject, ConsentSubject.consent_id == Consent.id)
            .where(
                ConsentSubject.pseudonym.in_([value for _, value in pseudonyms]),
                Consent.partner_id == partner_id,
                Consent.purpose == purpose,
                Consent.expires_at > now,
                ~_revoked(Consent.id),  # type: ignore[operator]
            )
            .order_by(Consent.granted_at.desc())
        )
        for consent_id, scopes in rows:
            if scope in scopes.split():
                return str(consent_id)
    return None


def _subjects_of(session: Session, subject: Subject) -> list[Subject]:
    """The person under every identifier the reference store links to the one given."""
    column = Account.nir if subject.kind == "nir" else Account.siren
    account = session.execute(
        select(Account.nir, Account.siren).where(column == subject.identifier)
    ).first()
    if account is None:
        return [subject]
    return [Subject("nir", account.nir), Subject("siren", account.siren)]


def _check_habilitated(body: ConsentIn, grants: Sequence[HabilitationGrant]) -> str:
    """The legal basis the consent serves; refuses scopes the partner cannot use it for."""
    bases = []
    for scope in body.scopes:
        grant = next((g for g in grants if g.scope == scope and body.purpose in g.purposes), None)
        if grant is None:
            raise ForbiddenError(
                "consent.not_habilitated",
                "The partner holds no habilitation in force for one of these scopes with this "
                "purpose.",
            )
        bases.append(grant.legal_basis)
    return "; ".join(sorted(set(bases)))


def _state(consent: Consent, events: Sequence[ConsentEvent], now: dt.datetime) -> ConsentState:
    if any(event.event == "revoked" for event in events):
        return "revoked"
    if consent.expires_at <= now:
        return "expired"
    return "active"


def _out(consent: Consent, events: Sequence[ConsentEvent], now: dt.datetime) -> ConsentOut:
    ledger = [ConsentEventOut(event=e.event, occurred_at=e.occurred_at) for e in events]
    state = _state(consent, events, now)
    if state == "expired":
        ledger.append(ConsentEventOut(event="expired", occurred_at=consent.expires_at))
    return ConsentOut(
        id=consent.id,
        state=state,
        scopes=consent.scopes.split(),
        purpose=consent.purpose,
        legal_basis=consent.legal_basis,
        granted_at=consent.granted_at,
        expires_at=consent.expires_at,
        events=ledger,
        receipt=consent.receipt_jws,
    )


class ConsentService:
    """Consent operations for one partner's client; runs on a sync session off the loop."""

    def __init__(
        self, db: Database, settings: Settings, pseudonymiser: Pseudonymiser, keys: KeyStore
    ) -> None:
        self._db = db
        self._settings = settings
        self._pseudonymiser = pseudonymiser
        self._keys = keys

    def grant(
        self,
        *,
        client_id: str,
        partner_id: int,
        grants: Sequence[HabilitationGrant],
        body: ConsentIn,
    ) -> tuple[ConsentOut, list[Subject]]:
        now = utcnow()
        if body.expires_at <= now:
            raise UnprocessableError("consent.expires_in_past", "`expires_at` is in the past.")
        legal_basis = _check_habilitated(body, grants)
        given = (
            Subject("nir", body.subject.nir)
            if body.subject.nir
            else Subject("siren", body.subject.siren or "")
        )
        consent_id = str(uuid.uuid4())
        with self._db.sync_session.begin() as session:
            subjects = _subjects_of(session, given)
            key_id, secret = self._pseudonymiser.active_key_sync()
            pseudonyms = [
                (s.kind, hmac_pseudonym(secret, s.kind, s.identifier), key_id) for s in subjects
            ]
            claims = receipt_claims(
                settings=self._settings,
                consent_id=consent_id,
                partner_name=grants[0].partner_name if grants else "",
                subject_reference=f"pseudonym:{key_id}:{pseudonyms[0][1]}",
                scopes=body.scopes,
                purpose=body.purpose,
                legal_basis=legal_basis,
                evidence=body.evidence,
                granted_at=now,
                expires_at=body.expires_at,
            )
            consent = Consent(
                id=consent_id,
                partner_id=partner_id,
                client_id=client_id,
                scopes=" ".join(body.scopes),
                purpose=body.purpose,
                evidence=body.evidence,
                legal_basis=legal_basis,
                granted_at=now,
                expires_at=body.expires_at,
                receipt_jws=sign_receipt(self._keys, session, claims),
            )
            session.add(consent)
            session.flush()
            session.add_all(
                ConsentSubject(consent_id=consent_id, kind=kind, pseudonym=value, key_id=kid)
                for kind, value, kid in pseudonyms
            )
            event = ConsentEvent(
                consent_id=consent_id, event="granted", occurred_at=now, client_id=client_id
            )
            session.add(event)
        return _out(consent, [event], now), subjects

    def _load(self, session: Session, consent_id: str, partner_id: int) -> Consent:
        consent = session.get(Consent, consent_id)
        # Another partner's consent is reported as unknown: its existence is not theirs to see.
        if consent is None or consent.partner_id != partner_id:
            raise NotFoundError("consent.unknown", "No consent of this partner has this id.")
        return consent

    def _events(self, session: Session, consent_id: str) -> list[ConsentEvent]:
        return list(
            session.scalars(
                select(ConsentEvent)
                .where(ConsentEvent.consent_id == consent_id)
                .order_by(ConsentEvent.occurred_at, ConsentEvent.id)
            )
        )

    def get(self, *, consent_id: str, partner_id: int) -> ConsentOut:
        with self._db.sync_session() as session:
            consent = self._load(session, consent_id, partner_id)
            return _out(consent, self._events(session, consent_id), utcnow())

    def revoke(
        self, *, consent_id: str, partner_id: int, client_id: str, reason: str | None
    ) -> ConsentOut:
        now = utcnow()
        with self._db.sync_session.begin() as session:
            consent = self._load(session, consent_id, partner_id)
            events = self._events(session, consent_id)
            if _state(consent, events, now) != "revoked":
                event = ConsentEvent(
                    consent_id=consent_id,
                    event="revoked",
                    occurred_at=now,
                    client_id=client_id,
                    reason=reason,
                )
                session.add(event)
                events.append(event)
            return _out(consent, events, now)
