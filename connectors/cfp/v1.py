"""CFP attestations, version 1: proof that a self-employed person paid the training contribution.

Training funds (AGEFICE, FAFCEA, FIF-PL, ...) finance a person's training only once the
contribution to vocational training (CFP) of the year is paid. The old portal answered one
request at a time; this version answers one attestation or a batch of up to 10,000, each also
as a signed JWS the fund can verify offline (see :mod:`connectors.cfp.attestation`).

Nothing here is releasable field by field: the signed attestation is one indivisible document,
and a field withheld from the JSON would still be readable in the JWS next to it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Annotated, Any, Literal, NamedTuple

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Integer, and_, bindparam, select

from connectors.cfp.attestation import AttestationSigner, attestation_claims, signer_from
from connectors.kit import (
    ConnectorContext,
    ConnectorVersion,
    Disclosure,
    InvalidRequest,
    Provenance,
    Siren,
    Subject,
    SubjectNotFound,
    TooManyItems,
)
from gateway.identifiers import InvalidIdentifierError, parse_siren
from gateway.reads import Prepared
from gateway.reference.freshness import loaded_at
from gateway.reference.models import Account, CfpPayment

SOURCE = "URSSAF"
DATASET = "cfp"
FIRST_YEAR = 2000
MAX_BATCH_ITEMS = 10_000
# Bound parameters per IN list: far below SQLite's and PostgreSQL's limits, and large enough
# that a full batch takes ten round trips.
QUERY_CHUNK = 1_000

VERSION = ConnectorVersion(
    dataset="cfp",
    version=1,
    scope="cfp:read",
    title="CFP attestations",
    consumers=["AGEFICE", "FAFCEA", "FIF-PL", "training funds"],
    releasable=frozenset(),
)

_EXAMPLE_JWS = (
    "eyJhbGciOiJFUzI1NiIsImtpZCI6ImF0dC0yMDI2LTAxIiwidHlwIjoiY2ZwLWF0dGVzdGF0aW9uK2p3dCJ9"
    ".eyJzdWIiOiI3MzI4MjkzMjAiLCJ5ZWFyIjoyMDI1fQ.c2lnbmF0dXJl"
)
_EXAMPLE_ATTESTATION: dict[str, Any] = {
    "siren": "732829320",
    "year": 2025,
    "fund": "AGEFICE",
    "base": "48250.00",
    "rate": "0.100",
    "amount_due": "48.25",
    "amount_paid": "48.25",
    "payment_date": "2026-02-25",
    "fully_paid": True,
    "attestation_jws": _EXAMPLE_JWS,
}


class CfpAttestation(BaseModel):
    """The CFP of one person for one year, and the same facts signed."""

    model_config = ConfigDict(frozen=True, json_schema_extra={"examples": [_EXAMPLE_ATTESTATION]})

    siren: str = Field(description="SIREN of the self-employed person.")
    year: int = Field(description="Year the contribution is due for.")
    fund: str = Field(
        description="Training fund the contribution goes to (AGEFICE, FAFCEA, FIF-PL, ...)."
    )
    base: Decimal = Field(
        description="Base in euros: declared turnover (micro-entrepreneurs) or the annual "
        "social security ceiling (TI classique)."
    )
    rate: Decimal = Field(description="Rate applied to the base, in percent (0.100 = 0.1 %).")
    amount_due: Decimal = Field(description="Contribution due, in euros.")
    amount_paid: Decimal = Field(description="Contribution paid so far, in euros.")
    payment_date: dt.date | None = Field(
        description="Date of the last payment; null when nothing was paid."
    )
    fully_paid: bool = Field(description="Whether the amount paid covers the amount due.")
    attestation_jws: str = Field(
        description="These facts as a compact JWS (ES256, typ cfp-attestation+jwt) signed by "
        "the gateway; verify it with the key of its kid in /.well-known/jwks.json."
    )


class CfpAttestationAnswer(CfpAttestation, Provenance):
    """One attestation, with where it comes from."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {**_EXAMPLE_ATTESTATION, "source": SOURCE, "as_of": "2026-03-01T02:00:00Z"}
            ]
        }
    )


class CfpBatchItem(BaseModel):
    """One question of a batch; the SIREN is checked per item, so one typo fails one item."""

    siren: str = Field(description="SIREN as the fund holds it (spaces allowed).")
    year: int = Field(description=f"Year of the contribution, {FIRST_YEAR} to this year.")


class CfpBatchRequest(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {"siren": "732829320", "year": 2025},
                        {"siren": "552100554", "year": 2024},
                    ]
                }
            ]
        }
    )

    # No max_length: over the limit is 413 batch.too_many_items, not a schema error (422).
    items: list[CfpBatchItem] = Field(
        description=f"Up to {MAX_BATCH_ITEMS:,} questions; more gets 413 batch.too_many_items."
    )


BatchOutcome = Literal["found", "not_found", "invalid_identifier", "invalid_year"]


class CfpBatchResult(BaseModel):
    """The answer to one question of a batch, in the order asked."""

    index: int = Field(description="Position of the question in the request, from 0.")
    siren: str | None = Field(
        description="The SIREN normalised; null when it is not a valid SIREN (never echoed)."
    )
    year: int = Field(description="The year asked.")
    outcome: BatchOutcome = Field(
        description="found; not_found (see code); invalid_identifier or invalid_year (see code)."
    )
    code: str | None = Field(
        description="Why nothing was found or the question was rejected: subject.unknown, "
        "cfp.no_contribution_for_year, siren.malformed, siren.bad_checksum, year.invalid."
    )
    attestation: CfpAttestation | None = Field(description="The attestation when found.")


class CfpBatchAnswer(Provenance):
    """The answers to a batch, one per question, in the order asked."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "index": 0,
                            "siren": "732829320",
                            "year": 2025,
                            "outcome": "found",
                            "code": None,
                            "attestation": _EXAMPLE_ATTESTATION,
                        },
                        {
                            "index": 1,
                            "siren": None,
                            "year": 2025,
                            "outcome": "invalid_identifier",
                            "code": "siren.bad_checksum",
                            "attestation": None,
                        },
                    ],
                    "found": 1,
                    "not_found": 0,
                    "invalid": 1,
                    "source": SOURCE,
                    "as_of": "2026-03-01T02:00:00Z",
                }
            ]
        }
    )

    items: list[CfpBatchResult] = Field(description="One result per question, in order.")
    found: int = Field(description="How many questions got an attestation.")
    not_found: int = Field(description="How many valid questions found nothing.")
    invalid: int = Field(description="How many questions had an invalid SIREN or year.")


_PAYMENT_COLUMNS = (
    CfpPayment.year,
    CfpPayment.fund,
    CfpPayment.base,
    CfpPayment.rate,
    CfpPayment.amount_due,
    CfpPayment.amount_paid,
    CfpPayment.payment_date,
)


def _year_is_valid(year: int, today: dt.date) -> bool:
    return FIRST_YEAR <= year <= today.year


_LATEST_LOAD = Prepared(select(loaded_at(DATASET)))
# The freshness rides along as a scalar subquery: one round trip for the whole answer; the
# outer join tells an unknown SIREN (no row) from a year without contribution (null year).
_ATTESTATION = Prepared(
    select(Account.id, *_PAYMENT_COLUMNS, loaded_at(DATASET))
    .select_from(Account)
    .outerjoin(
        CfpPayment,
        and_(
            CfpPayment.account_id == Account.id,
            CfpPayment.year == bindparam("year", type_=Integer),
        ),
    )
    .where(Account.siren == bindparam("siren"))
)


class Payment(NamedTuple):
    """A CFP payment row, in the order of ``_PAYMENT_COLUMNS``."""

    year: int
    fund: str
    base: Decimal
    rate: Decimal
    amount_due: Decimal
    amount_paid: Decimal
    payment_date: dt.date | None


def _attestation(
    signer: AttestationSigner, issued_at: dt.datetime, siren: str, row: Payment
) -> CfpAttestation:
    fully_paid = row.amount_paid >= row.amount_due
    claims = attestation_claims(
        issuer=signer.issuer,
        issued_at=issued_at,
        siren=siren,
        year=row.year,
        fund=row.fund,
        base=row.base,
        rate=row.rate,
        amount_due=row.amount_due,
        amount_paid=row.amount_paid,
        payment_date=row.payment_date,
        fully_paid=fully_paid,
    )
    # Values come from the reference store's typed columns: no need to validate them again,
    # which matters for 10,000 items.
    return CfpAttestation.model_construct(
        siren=siren,
        year=row.year,
        fund=row.fund,
        base=row.base,
        rate=row.rate,
        amount_due=row.amount_due,
        amount_paid=row.amount_paid,
        payment_date=row.payment_date,
        fully_paid=fully_paid,
        attestation_jws=signer.sign(claims),
    )


@VERSION.operation(
    "GET",
    "/cfp/attestations/{siren}/{year}",
    response_model=CfpAttestationAnswer,
    summary="CFP attestation of one person for one year",
    subject=lambda params: Subject("siren", params["siren"]),
)
async def get_attestation(
    siren: Siren,
    year: Annotated[int, Path(description=f"Year of the contribution, {FIRST_YEAR} to this year.")],
    ctx: ConnectorContext,
) -> Disclosure[CfpAttestationAnswer]:
    """The training contribution of one person for one year: base, rate, amounts due and paid,
    payment date, fund, whether it is fully paid, and the same facts as a signed JWS.

    Errors: 404 `subject.unknown` (no such SIREN), 404 `cfp.no_contribution_for_year`,
    422 `year.invalid` (before 2000 or after this year).
    """
    if not _year_is_valid(year, ctx.today):
        raise InvalidRequest(
            "year.invalid", f"The year must be between {FIRST_YEAR} and this year."
        )
    signer = signer_from(ctx.services)
    row = await ctx.reader.first(_ATTESTATION, siren=siren, year=year)
    if row is None:
        raise SubjectNotFound("subject.unknown", "No self-employed person has this SIREN.")
    payment, as_of = row[1:-1], row[-1]
    if payment[0] is None:
        raise SubjectNotFound(
            "cfp.no_contribution_for_year", "No training contribution is recorded for this year."
        )
    attestation = _attestation(signer, ctx.now, siren, Payment(*payment))
    body = CfpAttestationAnswer.model_construct(**attestation.__dict__, source=SOURCE, as_of=as_of)
    return Disclosure(body=body, subjects=[Subject("siren", siren)])


def _chunks(values: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


@VERSION.operation(
    "POST",
    "/cfp/attestations/batch",
    response_model=CfpBatchAnswer,
    summary="CFP attestations for up to 10,000 (SIREN, year) questions",
    bulk=True,
)
async def batch_attestations(
    body: CfpBatchRequest, ctx: ConnectorContext
) -> Disclosure[CfpBatchAnswer]:
    """Answers every question of the batch on its own: `found` with the attestation,
    `not_found` (code `subject.unknown` or `cfp.no_contribution_for_year`),
    `invalid_identifier` (the SIREN's error code) or `invalid_year` (`year.invalid`).
    A bad question never fails the batch. More than 10,000 questions: 413
    `batch.too_many_items`. Send an `Idempotency-Key` header to retry safely.
    """
    if len(body.items) > MAX_BATCH_ITEMS:
        raise TooManyItems(
            "batch.too_many_items",
            f"A batch holds at most {MAX_BATCH_ITEMS} items; split it.",
            extra={"max_items": MAX_BATCH_ITEMS},
        )
    signer = signer_from(ctx.services)

    sirens: list[str | None] = []
    errors: list[str | None] = []
    for item in body.items:
        try:
            sirens.append(parse_siren(item.siren))
            errors.append(None)
        except InvalidIdentifierError as exc:
            sirens.append(None)
            errors.append(exc.code)

    # Only questions valid on both counts reach the database.
    asked = [
        (siren, item.year)
        for siren, item in zip(sirens, body.items, strict=True)
        if siren is not None and _year_is_valid(item.year, ctx.today)
    ]
    years = sorted({year for _, year in asked})
    wanted = sorted({siren for siren, _ in asked})
    known: set[str] = set()
    payments: dict[tuple[str, int], Payment] = {}
    if asked:
        # One round trip per chunk answers both questions: does the account exist (the outer
        # join keeps it) and which of the asked years it has a CFP row for.
        join = and_(CfpPayment.account_id == Account.id, CfpPayment.year.in_(years))
        for chunk in _chunks(wanted, QUERY_CHUNK):
            query = (
                select(Account.siren, *_PAYMENT_COLUMNS)
                .select_from(Account)
                .outerjoin(CfpPayment, join)
                .where(Account.siren.in_(chunk))
            )
            for row in await ctx.reader.all(query):
                known.add(row[0])
                if row[1] is not None:
                    payments[(row[0], row[1])] = Payment(*row[1:])

    results: list[CfpBatchResult] = []
    subjects: dict[str, Subject] = {}
    found = not_found = invalid = 0
    for index, (item, siren, error) in enumerate(zip(body.items, sirens, errors, strict=True)):
        outcome: BatchOutcome
        attestation: CfpAttestation | None = None
        code: str | None
        if siren is None:
            outcome, code = "invalid_identifier", error
            invalid += 1
        elif not _year_is_valid(item.year, ctx.today):
            outcome, code = "invalid_year", "year.invalid"
            invalid += 1
        elif siren not in known:
            outcome, code = "not_found", "subject.unknown"
            not_found += 1
        elif (payment := payments.get((siren, item.year))) is None:
            outcome, code = "not_found", "cfp.no_contribution_for_year"
            not_found += 1
        else:
            outcome, code = "found", None
            attestation = _attestation(signer, ctx.now, siren, payment)
            subjects.setdefault(siren, Subject("siren", siren))
            found += 1
        results.append(
            CfpBatchResult.model_construct(
                index=index,
                siren=siren,
                year=item.year,
                outcome=outcome,
                code=code,
                attestation=attestation,
            )
        )
    answer = CfpBatchAnswer.model_construct(
        items=results,
        found=found,
        not_found=not_found,
        invalid=invalid,
        source=SOURCE,
        as_of=await ctx.reader.scalar(_LATEST_LOAD),
    )
    return Disclosure(body=answer, subjects=list(subjects.values()))
