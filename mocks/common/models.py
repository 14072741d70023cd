"""What the partners read in the gateway's answers, as typed models.

Each model lists only the fields some partner relies on; anything else in an answer is
ignored, so the gateway may add fields freely. The consumer-driven contracts in
``contracts/pacts/`` say the same thing to the gateway: remove one of these fields and the
contract verification fails.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


class _Answer(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Problem(_Answer):
    """An ``application/problem+json`` error (RFC 9457) with the gateway's stable code."""

    status: int
    title: str = ""
    detail: str = ""
    code: str = "unknown"


class FeedEvent(_Answer):
    siren: str
    event: Literal["affiliation", "radiation", "regime_change"]
    effective_date: dt.date
    detail: str | None = None


class FeedPage(_Answer):
    events: list[FeedEvent]
    next_cursor: str


class TurnoverPeriod(_Answer):
    period: str
    declared: bool
    total: Decimal | None


class Turnover(_Answer):
    siren: str
    periodicity: Literal["monthly", "quarterly"] | None
    periods: list[TurnoverPeriod]
    as_of: dt.datetime | None


class ExemptionPeriod(_Answer):
    start_date: dt.date
    end_date: dt.date


class AcreProof(_Answer):
    siren: str
    decision: Literal["granted", "refused", "pending"]
    exemption: ExemptionPeriod | None
    # Withheld (absent) when the partner's habilitation does not release it.
    criterion: str | None = None
    decided_at: dt.datetime


class CfpAttestation(_Answer):
    siren: str
    year: int
    fund: str
    amount_due: Decimal
    amount_paid: Decimal
    payment_date: dt.date | None
    fully_paid: bool
    attestation_jws: str


class CfpBatchItem(_Answer):
    index: int
    siren: str | None
    year: int
    outcome: Literal["found", "not_found", "invalid_identifier", "invalid_year"]
    code: str | None
    attestation: CfpAttestation | None


class CfpBatch(_Answer):
    items: list[CfpBatchItem]
    found: int
    not_found: int
    invalid: int


class Consent(_Answer):
    id: str
    state: Literal["active", "revoked", "expired"]
    expires_at: dt.datetime
    receipt: str


class KeySet(_Answer):
    keys: list[dict[str, Any]]
