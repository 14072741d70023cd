"""Turnover v2: declared turnover per period, split by activity, with its rectifications.

Consumers: CAF and Pôle emploi. Same operations, ranges and outcomes as v1 (under ``/api/v2``,
scope ``turnover:read``): ``GET /turnover/{siren}?from=&to=`` and ``POST /turnover/search``
with the NIR in the body. Each period also carries the date of the declaration in force, its
amounts per activity category, and every earlier declaration it replaced.

Releasable fields (a habilitation may withhold them, and then the key is absent):

- ``periods.amounts``: the split by activity category of the declaration in force;
- ``periods.rectifications``: the earlier declarations of the period;
- ``periods.rectifications.amounts``: their split by activity category. Listed on its own so
  that a habilitation releasing the history but not the split never gets the split through
  the history.

Error codes: ``range.invalid`` (422), ``subject.unknown``, ``subject.radiated_before_period``,
``turnover.not_micro_entrepreneur`` (404). See :mod:`connectors.turnover.common`.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from connectors.kit import (
    ConnectorContext,
    ConnectorVersion,
    Disclosure,
    Nir,
    Provenance,
    Siren,
    Subject,
    YearMonth,
)
from connectors.turnover.common import (
    SOURCE,
    Declaration,
    FromQuery,
    PeriodicityCode,
    ToQuery,
    Turnover,
    read_turnover,
    resolve_range,
)

VERSION = ConnectorVersion(
    dataset="turnover",
    version=2,
    scope="turnover:read",
    title="Micro-entrepreneur turnover: per period and activity, with rectifications",
    consumers=["CAF", "Pôle emploi"],
    releasable=frozenset(
        {"periods.amounts", "periods.rectifications", "periods.rectifications.amounts"}
    ),
)


class TurnoverAmountsV2(BaseModel):
    """A declaration's turnover by activity category, in euros, as decimal strings."""

    sales_bic: Decimal = Field(description="Sale of goods (BIC).")
    services_bic: Decimal = Field(description="Commercial and craft services (BIC).")
    services_bnc: Decimal = Field(description="Liberal services (BNC).")


class TurnoverRectificationV2(BaseModel):
    """An earlier declaration of the period, replaced by a later one."""

    declared_at: dt.datetime = Field(description="When this declaration was made (UTC).")
    total: Decimal = Field(description="Its declared total in euros, as a decimal string.")
    amounts: TurnoverAmountsV2 | None = Field(
        default=None,
        description="Its split by activity category. Releasable: absent when the "
        "habilitation does not cover `periods.rectifications.amounts`.",
    )


class TurnoverPeriodV2(BaseModel):
    """One month or quarter of the range."""

    period: str = Field(description="The period: `YYYY-MM` for a month, `YYYY-Qn` for a quarter.")
    periodicity: PeriodicityCode = Field(description="Whether the period is a month or a quarter.")
    start_date: dt.date = Field(description="First day of the period.")
    end_date: dt.date = Field(description="Last day of the period.")
    declared: bool = Field(
        description="Whether a declaration was received for this period. A period without "
        "declaration is still listed, with `total` null; a zero declaration is declared."
    )
    total: Decimal | None = Field(
        description="Declared turnover of the period in euros, all activities together, as a "
        "decimal string, from the declaration in force (the latest). Null when not declared."
    )
    declared_at: dt.datetime | None = Field(
        description="When the declaration in force was made (UTC); null when not declared."
    )
    amounts: TurnoverAmountsV2 | None = Field(
        default=None,
        description="The declaration in force by activity category; null when not declared. "
        "Releasable: absent when the habilitation does not cover `periods.amounts`.",
    )
    rectifications: list[TurnoverRectificationV2] | None = Field(
        default=None,
        description="Earlier declarations of the period that a later one replaced, oldest "
        "first; empty when never rectified. Releasable: absent when the habilitation does not "
        "cover `periods.rectifications`.",
    )


class TurnoverAnswerV2(Provenance):
    """The declared turnover of a micro-entrepreneur over a range of months, in detail.

    Not found (404) codes: `subject.unknown` (no account has this identifier),
    `subject.radiated_before_period` (radiated before the range and nothing declared in it),
    `turnover.not_micro_entrepreneur` (regime classique and nothing declared in the range).
    Invalid range (422): `range.invalid`.
    """

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "source": SOURCE,
                    "as_of": "2026-07-01T03:12:45Z",
                    "siren": "732829320",
                    "periodicity": "monthly",
                    "from_month": "2026-05",
                    "to_month": "2026-06",
                    "periods": [
                        {
                            "period": "2026-05",
                            "periodicity": "monthly",
                            "start_date": "2026-05-01",
                            "end_date": "2026-05-31",
                            "declared": True,
                            "total": "2350.00",
                            "declared_at": "2026-06-12T09:30:00Z",
                            "amounts": {
                                "sales_bic": "1200.00",
                                "services_bic": "1150.00",
                                "services_bnc": "0.00",
                            },
                            "rectifications": [
                                {
                                    "declared_at": "2026-06-02T18:04:11Z",
                                    "total": "2100.00",
                                    "amounts": {
                                        "sales_bic": "1200.00",
                                        "services_bic": "900.00",
                                        "services_bnc": "0.00",
                                    },
                                }
                            ],
                        },
                        {
                            "period": "2026-06",
                            "periodicity": "monthly",
                            "start_date": "2026-06-01",
                            "end_date": "2026-06-30",
                            "declared": False,
                            "total": None,
                            "declared_at": None,
                            "amounts": None,
                            "rectifications": [],
                        },
                    ],
                }
            ]
        }
    )

    siren: str = Field(description="SIREN of the micro-entrepreneur.")
    periodicity: PeriodicityCode | None = Field(
        description="The declaration periodicity in force: that of the latest declared period "
        "of the range, else of the nearest declaration outside it; null if none was ever made."
    )
    from_month: str = Field(description="First month of the range (`YYYY-MM`), defaults applied.")
    to_month: str = Field(description="Last month of the range (`YYYY-MM`), defaults applied.")
    periods: list[TurnoverPeriodV2] = Field(
        description="Every period touching the range, oldest first, declared or not."
    )


class TurnoverSearchV2(BaseModel):
    """A lookup by NIR: the NIR goes in the body, never in a URL."""

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        json_schema_extra={
            "examples": [{"nir": "180019999900168", "from": "2026-01", "to": "2026-06"}]
        },
    )

    nir: Nir
    from_: YearMonth | None = Field(
        default=None,
        alias="from",
        description="First month (`YYYY-MM`); default: eleven months before `to`.",
    )
    to: YearMonth | None = Field(default=None, description="Last month; default: this month.")


def _amounts(declaration: Declaration) -> TurnoverAmountsV2:
    return TurnoverAmountsV2(
        sales_bic=declaration.sales_bic,
        services_bic=declaration.services_bic,
        services_bnc=declaration.services_bnc,
    )


def _answer(turnover: Turnover) -> Disclosure[TurnoverAnswerV2]:
    periods = []
    for period in turnover.periods:
        current = period.current
        periods.append(
            TurnoverPeriodV2(
                period=period.key,
                periodicity=period.periodicity,
                start_date=period.start_date,
                end_date=period.end_date,
                declared=current is not None,
                total=current.total if current else None,
                declared_at=current.declared_at if current else None,
                amounts=_amounts(current) if current else None,
                rectifications=[
                    TurnoverRectificationV2(
                        declared_at=earlier.declared_at,
                        total=earlier.total,
                        amounts=_amounts(earlier),
                    )
                    for earlier in period.superseded
                ],
            )
        )
    body = TurnoverAnswerV2(
        source=SOURCE,
        as_of=turnover.as_of,
        siren=turnover.siren,
        periodicity=turnover.periodicity,
        from_month=turnover.months.from_month,
        to_month=turnover.months.to_month,
        periods=periods,
    )
    return Disclosure(body=body, subjects=turnover.subjects)


@VERSION.operation(
    "GET",
    "/turnover/{siren}",
    response_model=TurnoverAnswerV2,
    summary="Turnover per period and activity, with rectifications, by SIREN",
    subject=lambda params: Subject("siren", params["siren"]),
)
async def turnover_by_siren(
    *,
    siren: Siren,
    from_: FromQuery = None,
    to: ToQuery = None,
    ctx: ConnectorContext,
) -> Disclosure[TurnoverAnswerV2]:
    """Every period touching the range, with amounts per activity and rectifications, by SIREN.

    404 codes: `subject.unknown`, `subject.radiated_before_period`,
    `turnover.not_micro_entrepreneur`. 422: `range.invalid`.
    """
    months = resolve_range(from_, to, ctx.today)
    return _answer(await read_turnover(ctx.reader, months=months, siren=siren))


@VERSION.operation(
    "POST",
    "/turnover/search",
    response_model=TurnoverAnswerV2,
    summary="Turnover per period and activity, with rectifications, by NIR",
    subject=lambda params: Subject("nir", params["body"].nir),
)
async def turnover_by_nir(
    *, body: TurnoverSearchV2, ctx: ConnectorContext
) -> Disclosure[TurnoverAnswerV2]:
    """Every period touching the range, with amounts per activity and rectifications, by NIR.

    404 codes: `subject.unknown`, `subject.radiated_before_period`,
    `turnover.not_micro_entrepreneur`. 422: `range.invalid`.
    """
    months = resolve_range(body.from_, body.to, ctx.today)
    return _answer(await read_turnover(ctx.reader, months=months, nir=body.nir))
