"""A person's right of access: who received their data, when, and for which purpose.

Staff type the person's NIR or SIREN; it is normalised, turned into its pseudonym under every
key the trail has ever used (retired keys included, so a rotation hides nothing), and the
matching subject entries are listed with their records. The identifier itself is never stored,
logged or echoed back.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Engine, select

from gateway.audit.models import AuditRecord, AuditSubjectEntry
from gateway.audit.pseudonym import Pseudonymiser
from gateway.audit.schemas import SubjectKind
from gateway.identifiers import parse_nir, parse_siren

_SIREN_DIGITS = 9


@dataclass(frozen=True)
class SubjectAccessEntry:
    occurred_at: dt.datetime
    record_id: int
    request_id: str
    subject_kind: str
    key_id: str
    partner_id: int | None
    client_id: str | None
    connector: str | None
    connector_version: int | None
    operation: str
    purpose: str | None
    recipient: str | None
    legal_basis: str | None
    consent_id: str | None
    case_reference: str | None
    outcome: str
    http_status: int

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "occurred_at": self.occurred_at.isoformat()}


def identify(identifier: str, kind: SubjectKind | None = None) -> tuple[SubjectKind, str]:
    """(kind, normalised identifier) of what staff typed: 9 digits is a SIREN, else a NIR.

    Raises ``InvalidIdentifierError``, whose message never repeats the input.
    """
    if kind is None:
        compact = "".join(identifier.split()) if isinstance(identifier, str) else ""
        kind = "siren" if len(compact) == _SIREN_DIGITS else "nir"
    if kind == "siren":
        return kind, parse_siren(identifier)
    return "nir", parse_nir(identifier)


def subject_history(
    engine: Engine,
    pseudonymiser: Pseudonymiser,
    kind: SubjectKind,
    identifier: str,
    *,
    include_refused: bool = False,
) -> list[SubjectAccessEntry]:
    """Every record naming this person, oldest first; only disclosures unless asked."""
    pseudonyms = pseudonymiser.all_pseudonyms(kind, identifier)
    if not pseudonyms:
        return []
    keys_of = {value: key_id for key_id, value in pseudonyms}
    query = (
        select(
            AuditSubjectEntry.occurred_at,
            AuditRecord.id,
            AuditRecord.request_id,
            AuditSubjectEntry.subject_kind,
            AuditSubjectEntry.key_id,
            AuditRecord.partner_id,
            AuditRecord.client_id,
            AuditRecord.connector,
            AuditRecord.connector_version,
            AuditRecord.operation,
            AuditRecord.purpose,
            AuditRecord.recipient,
            AuditRecord.legal_basis,
            AuditRecord.consent_id,
            AuditRecord.case_reference,
            AuditRecord.outcome,
            AuditRecord.http_status,
            AuditSubjectEntry.pseudonym,
        )
        .join(AuditRecord, AuditRecord.id == AuditSubjectEntry.record_id)
        .where(AuditSubjectEntry.pseudonym.in_(list(keys_of)))
        .order_by(AuditSubjectEntry.occurred_at, AuditRecord.id)
    )
    if not include_refused:
        query = query.where(AuditRecord.outcome == "granted")
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    # A pseudonym only counts under the key that made it.
    return [
        SubjectAccessEntry(
            occurred_at=row[0],
            record_id=row[1],
            request_id=row[2],
            subject_kind=row[3],
            key_id=row[4],
            partner_id=row[5],
            client_id=row[6],
            connector=row[7],
            connector_version=row[8],
            operation=row[9],
            purpose=row[10],
            recipient=row[11],
            legal_basis=row[12],
            consent_id=row[13],
            case_reference=row[14],
            outcome=row[15],
            http_status=row[16],
        )
        for row in rows
        if keys_of.get(row[17]) == row[4]
    ]
