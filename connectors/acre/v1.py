"""ACRE proofs, version 1: whether a business creator gets the ACRE exemption, and why.

URSSAF decides the job-seeker criteria of ACRE on evidence it fetches from Pôle emploi (see
:mod:`connectors.acre.pole_emploi` and :mod:`connectors.acre.decision`), then proves the
decision to Pôle emploi and CNAM: the decision, the 12-month exemption period, the criterion
met, and the evidence (who answered, their reference, when, and a digest of their exact bytes).

Each decision is stored in the reference store with its evidence. A decision younger than
24 hours is served again instead of asking Pôle emploi anew: partners often ask twice in a
row (once to route a file, once to process it), and a day-old job-seeker situation is still
the situation at the creation date. Older decisions stay stored as history.

Pôle emploi is asked about the person's situation at the affiliation date, since ACRE is
about the creation; an account affiliated long ago still gets its period.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Integer, bindparam, select

from connectors.acre.decision import Criterion, decide, exemption_period
from connectors.acre.pole_emploi import PoleEmploiClient
from connectors.kit import (
    ConnectorContext,
    ConnectorVersion,
    Disclosure,
    Provenance,
    Siren,
    Subject,
    SubjectNotFound,
    UpstreamUnavailable,
)
from gateway.database import UtcDateTime
from gateway.reads import Prepared
from gateway.reference.freshness import loaded_at
from gateway.reference.models import Account, AcreDecision, AcreDecisionKind

SOURCE = "URSSAF"
DATASET = "accounts"
CLIENT_SERVICE = "pole_emploi"
REUSE_FOR = dt.timedelta(hours=24)

VERSION = ConnectorVersion(
    dataset="acre",
    version=1,
    scope="acre:read",
    title="ACRE proofs",
    consumers=["Pôle emploi", "CNAM"],
    # Which criterion was met tells whether the person received unemployment benefit: a
    # partner that only needs the decision and its period is not given it.
    releasable=frozenset({"criterion", "evidence"}),
    upstream="Pôle emploi's job-seeker status API",
)

_EXAMPLE: dict[str, Any] = {
    "siren": "732829320",
    "decision": "granted",
    "criterion": "unemployment_benefit_are",
    "exemption": {"start_date": "2025-09-01", "end_date": "2026-08-31"},
    "evidence": {
        "source": "pole-emploi/job-seekers/status/v1",
        "reference": "PE-3F09A1C2B7D4",
        "fetched_at": "2026-03-02T09:14:05Z",
        "digest": "sha256:9b2f6c1d0e4a8b7c3f5e2d1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c",
    },
    "decided_at": "2026-03-02T09:14:05Z",
    "source": SOURCE,
    "as_of": "2026-03-02T02:00:00Z",
}


class ExemptionPeriod(BaseModel):
    start_date: dt.date = Field(description="First day of the exemption: the affiliation date.")
    end_date: dt.date = Field(description="Last day of the exemption, 12 months later.")


class Evidence(BaseModel):
    source: str = Field(description="Who answered: the upstream API the evidence comes from.")
    reference: str | None = Field(
        description="The upstream's reference for the person's file; null when the person is "
        "unknown to Pôle emploi."
    )
    fetched_at: dt.datetime = Field(description="When the upstream answer was received (UTC).")
    digest: str = Field(
        description="sha256:<hex> of the exact bytes the upstream sent, to match its archives."
    )


class AcreProof(Provenance):
    """The ACRE decision of one business creator."""

    model_config = ConfigDict(frozen=True, json_schema_extra={"examples": [_EXAMPLE]})

    siren: str = Field(description="SIREN of the business creator.")
    decision: Literal["granted", "refused", "pending"] = Field(
        description="granted: a criterion is met; refused: none is; pending: Pôle emploi is "
        "reviewing the person's file, ask again later."
    )
    criterion: Criterion | None = Field(
        default=None,
        description="The criterion met when granted: unemployment_benefit_are, "
        "solidarity_allowance_ass or job_seeker_6_of_18_months; otherwise null.",
    )
    exemption: ExemptionPeriod | None = Field(
        description="The exemption period when granted; otherwise null."
    )
    evidence: Evidence | None = Field(default=None, description="What the decision rests on.")
    decided_at: dt.datetime = Field(description="When URSSAF took this decision (UTC).")


class StoredDecision(NamedTuple):
    """A decision as :func:`_proof` reads it, in the order of ``_DECISION_COLUMNS``."""

    decision: str
    criterion: str | None
    exemption_start_date: dt.date | None
    exemption_end_date: dt.date | None
    evidence_source: str | None
    evidence_reference: str | None
    evidence_fetched_at: dt.datetime | None
    evidence_digest: str | None
    decided_at: dt.datetime


_DECISION_COLUMNS = tuple(getattr(AcreDecision, name) for name in StoredDecision._fields)
_ACCOUNT = Prepared(
    select(Account.id, Account.nir, Account.affiliation_date, loaded_at(DATASET)).where(
        Account.siren == bindparam("siren")
    )
)
# The latest decision of the account taken since ``since``, to reuse within ``REUSE_FOR``.
_RECENT_DECISION = Prepared(
    select(*_DECISION_COLUMNS)
    .where(
        AcreDecision.account_id == bindparam("account_id", type_=Integer),
        AcreDecision.decided_at > bindparam("since", type_=UtcDateTime()),
    )
    .order_by(AcreDecision.decided_at.desc(), AcreDecision.id.desc())
    .limit(1)
)


def _proof(siren: str, row: StoredDecision | AcreDecision, as_of: dt.datetime | None) -> AcreProof:
    exemption = None
    if row.exemption_start_date is not None and row.exemption_end_date is not None:
        exemption = ExemptionPeriod(
            start_date=row.exemption_start_date, end_date=row.exemption_end_date
        )
    evidence = None
    if (
        row.evidence_source is not None
        and row.evidence_fetched_at is not None
        and row.evidence_digest is not None
    ):
        evidence = Evidence(
            source=row.evidence_source,
            reference=row.evidence_reference,
            fetched_at=row.evidence_fetched_at,
            digest=row.evidence_digest,
        )
    return AcreProof(
        siren=siren,
        decision=AcreDecisionKind(row.decision).value,
        criterion=Criterion(row.criterion) if row.criterion else None,
        exemption=exemption,
        evidence=evidence,
        decided_at=row.decided_at,
        source=SOURCE,
        as_of=as_of,
    )


@VERSION.operation(
    "GET",
    "/acre/proofs/{siren}",
    response_model=AcreProof,
    summary="ACRE decision of one business creator, with its evidence",
    subject=lambda params: Subject("siren", params["siren"]),
)
async def get_proof(siren: Siren, ctx: ConnectorContext) -> Disclosure[AcreProof]:
    """The ACRE decision (granted, refused, pending), the exemption period (the affiliation
    date and the 12 months after it), the job-seeker criterion met, and the evidence from
    Pôle emploi: source, reference, time fetched, sha256 digest of the exact answer.

    A person unknown to Pôle emploi is `refused` with no criterion; the evidence is then
    Pôle emploi's "unknown" answer. Errors: 404 `subject.unknown`; 502 `upstream.bad_answer`,
    503 `upstream.unavailable` or `upstream.circuit_open`, 504 `upstream.timeout` when
    Pôle emploi cannot give a usable answer (nothing is stored then).
    """
    account = await ctx.reader.first(_ACCOUNT, siren=siren)
    if account is None:
        raise SubjectNotFound("subject.unknown", "No self-employed person has this SIREN.")
    account_id, nir, affiliation_date, as_of = account
    recent = await ctx.reader.first(
        _RECENT_DECISION, account_id=account_id, since=ctx.now - REUSE_FOR
    )
    if recent is not None:
        decision = StoredDecision(*recent)
        return Disclosure(body=_proof(siren, decision, as_of), subjects=[Subject("siren", siren)])

    client = ctx.services.get(CLIENT_SERVICE)
    if not isinstance(client, PoleEmploiClient):
        raise UpstreamUnavailable("upstream.unavailable", "Pôle emploi is not configured.")
    # No connection is held while waiting on Pôle emploi (up to several seconds): the reads
    # above returned theirs to the pool, and a session takes one only to write.
    evidence = await client.job_seeker_status(nir, affiliation_date)
    eligibility = decide(evidence.status)
    start = end = None
    if eligibility.decision is AcreDecisionKind.GRANTED:
        start, end = exemption_period(affiliation_date)
    row = AcreDecision(
        account_id=account_id,
        decision=eligibility.decision.value,
        criterion=eligibility.criterion.value if eligibility.criterion else None,
        exemption_start_date=start,
        exemption_end_date=end,
        evidence_source=evidence.source,
        evidence_reference=evidence.reference,
        evidence_fetched_at=evidence.fetched_at,
        evidence_digest=evidence.digest,
        decided_at=max(ctx.now, evidence.fetched_at),
    )
    async with ctx.open_session() as session:
        session.add(row)
        await session.commit()
    return Disclosure(body=_proof(siren, row, as_of), subjects=[Subject("siren", siren)])
