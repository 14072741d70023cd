"""Status v1: a self-employed person's regime, category, affiliation, radiation and history.

Consumers: CAF and CNAM. Operations (under ``/api/v1``, scope ``status:read``):

- ``GET /status/{siren}``
- ``POST /status/search`` with ``{"nir": ...}``: the NIR never travels in a URL.

Error codes: ``subject.unknown`` (404) when no account has the identifier.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from connectors.kit import (
    ConnectorContext,
    ConnectorVersion,
    Disclosure,
    Nir,
    Provenance,
    Siren,
    Subject,
)
from connectors.status.common import (
    CATEGORY_LABELS,
    REGIME_LABELS,
    SOURCE,
    Status,
    read_status,
)

VERSION = ConnectorVersion(
    dataset="status",
    version=1,
    scope="status:read",
    title="Self-employed status: regime, category, affiliation and radiation, with history",
    consumers=["CAF", "CNAM"],
)

RegimeCode = Literal["micro", "classique"]
CategoryCode = Literal["artisan", "commercant", "liberal"]
EventKind = Literal["affiliation", "radiation", "regime_change"]


class StatusRegimeV1(BaseModel):
    code: RegimeCode = Field(
        description="`micro` (micro-entrepreneur, auto-entrepreneur) or `classique` (TI classique)."
    )
    label: str = Field(description="French label of the regime.")


class StatusCategoryV1(BaseModel):
    code: CategoryCode = Field(
        description="`artisan`, `commercant` (trader) or `liberal` (profession libérale)."
    )
    label: str = Field(description="French label of the category.")


class StatusChangeV1(BaseModel):
    """One event of the account's status history."""

    event: EventKind = Field(description="What happened: affiliation, radiation or regime change.")
    effective_date: dt.date = Field(description="The date the change took effect.")
    detail: str | None = Field(
        description="What the upstream system says about it (e.g. the radiation reason or the "
        "new regime); null when it says nothing."
    )


class StatusAnswerV1(Provenance):
    """The status of a self-employed person's account and how it got there.

    Not found (404) code: `subject.unknown` (no account has this identifier).
    """

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "source": SOURCE,
                    "as_of": "2026-07-01T03:12:45Z",
                    "siren": "732829320",
                    "regime": {"code": "micro", "label": REGIME_LABELS["micro"]},
                    "category": {"code": "artisan", "label": CATEGORY_LABELS["artisan"]},
                    "affiliation_date": "2025-03-01",
                    "radiation_date": None,
                    "radiation_reason": None,
                    "history": [
                        {
                            "event": "affiliation",
                            "effective_date": "2021-01-04",
                            "detail": None,
                        },
                        {
                            "event": "radiation",
                            "effective_date": "2023-06-30",
                            "detail": "cessation d'activité",
                        },
                        {
                            "event": "affiliation",
                            "effective_date": "2025-03-01",
                            "detail": None,
                        },
                    ],
                }
            ]
        }
    )

    siren: str = Field(description="SIREN of the self-employed person.")
    regime: StatusRegimeV1 = Field(description="The social regime in force.")
    category: StatusCategoryV1 = Field(description="The professional category.")
    affiliation_date: dt.date = Field(description="Date of the affiliation in force.")
    radiation_date: dt.date | None = Field(
        description="Date of radiation; null while the person is affiliated."
    )
    radiation_reason: str | None = Field(
        description="Why the account was radiated; null while the person is affiliated."
    )
    history: list[StatusChangeV1] = Field(
        description="Every status event of the account, oldest first."
    )


class StatusSearchV1(BaseModel):
    """A lookup by NIR: the NIR goes in the body, never in a URL."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"nir": "180019999900168"}]}
    )

    nir: Nir


def _answer(status: Status) -> Disclosure[StatusAnswerV1]:
    body = StatusAnswerV1(
        source=SOURCE,
        as_of=status.as_of,
        siren=status.siren,
        regime=StatusRegimeV1.model_validate(
            {"code": status.regime, "label": REGIME_LABELS.get(status.regime, status.regime)}
        ),
        category=StatusCategoryV1.model_validate(
            {
                "code": status.category,
                "label": CATEGORY_LABELS.get(status.category, status.category),
            }
        ),
        affiliation_date=status.affiliation_date,
        radiation_date=status.radiation_date,
        radiation_reason=status.radiation_reason,
        history=[
            StatusChangeV1.model_validate(
                {
                    "event": event.event,
                    "effective_date": event.effective_date,
                    "detail": event.detail,
                }
            )
            for event in status.history
        ],
    )
    return Disclosure(body=body, subjects=status.subjects)


@VERSION.operation(
    "GET",
    "/status/{siren}",
    response_model=StatusAnswerV1,
    summary="Status and status history, by SIREN",
    subject=lambda params: Subject("siren", params["siren"]),
)
async def status_by_siren(*, siren: Siren, ctx: ConnectorContext) -> Disclosure[StatusAnswerV1]:
    """Regime, category, affiliation, radiation and the full status history, by SIREN.

    404 code: `subject.unknown`.
    """
    return _answer(await read_status(ctx.reader, siren=siren))


@VERSION.operation(
    "POST",
    "/status/search",
    response_model=StatusAnswerV1,
    summary="Status and status history, by NIR",
    subject=lambda params: Subject("nir", params["body"].nir),
)
async def status_by_nir(
    *, body: StatusSearchV1, ctx: ConnectorContext
) -> Disclosure[StatusAnswerV1]:
    """Regime, category, affiliation, radiation and the full status history, by NIR.

    404 code: `subject.unknown`.
    """
    return _answer(await read_status(ctx.reader, nir=body.nir))
