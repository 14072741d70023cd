"""Turnover v1: the declared total per period of a micro-entrepreneur (deprecated, see v2).

Consumers: CAF (family benefits) and Pôle emploi (unemployment benefits), which today ask the
person to re-declare the turnover they already declared to URSSAF.

Operations (under ``/api/v1``, scope ``turnover:read``):

- ``GET /turnover/{siren}?from=YYYY-MM&to=YYYY-MM``
- ``POST /turnover/search`` with ``{"nir": ..., "from": ..., "to": ...}``: the NIR never
  travels in a URL.

Both answer every period (month or quarter) touching the range, with its current total (the
latest declaration, rectifications included) or ``declared: false``. ``from`` defaults to
eleven months before ``to``, ``to`` to the current month; ranges span at most 36 months.

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
    Deprecation,
    Disclosure,
    Nir,
    Provenance,
    Siren,
    Subject,
    YearMonth,
)
from connectors.turnover.common import (
    SOURCE,
    FromQuery,
    PeriodicityCode,
    ToQuery,
    Turnover,
    read_turnover,
    resolve_range,
)

VERSION = ConnectorVersion(
    dataset="turnover",
    version=1,
    scope="turnover:read",
    title="Micro-entrepreneur turnover: declared totals per period",
    consumers=["CAF", "Pôle emploi"],
    deprecation=Deprecation(
        deprecated_on=dt.date(2026, 9, 1),
        sunset_on=dt.date(2027, 3, 31),
        successor="/api/v2/turnover",
    ),
)


class TurnoverPeriodV1(BaseModel):
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
        description="Declared turnover of the period in euros (sale of goods, commercial and "
        "craft services, liberal services together), as a decimal string; the latest "
        "declaration when it was rectified. Null when nothing was declared."
    )


class TurnoverAnswerV1(Provenance):
    """The declared turnover of a micro-entrepreneur over a range of months.

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
                    "periodicity": "quarterly",
                    "from_month": "2026-02",
                    "to_month": "2026-07",
                    "periods": [
                        {
                            "period": "2026-Q1",
                            "periodicity": "quarterly",
                            "start_date": "2026-01-01",
                            "end_date": "2026-03-31",
                            "declared": True,
                            "total": "8450.00",
                        },
                        {
                            "period": "2026-Q2",
                            "periodicity": "quarterly",
                            "start_date": "2026-04-01",
                            "end_date": "2026-06-30",
                            "declared": True,
                            "total": "0.00",
                        },
                        {
                            "period": "2026-Q3",
                            "periodicity": "quarterly",
                            "start_date": "2026-07-01",
                            "end_date": "2026-09-30",
                            "declared": False,
                            "total": None,
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
    periods: list[TurnoverPeriodV1] = Field(
        description="Every period touching the range, oldest first, declared or not."
    )


class TurnoverSearchV1(BaseModel):
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


def _answer(turnover: Turnover) -> Disclosure[TurnoverAnswerV1]:
    periods = [
        TurnoverPeriodV1(
            period=period.key,
            periodicity=period.periodicity,
            start_date=period.start_date,
            end_date=period.end_date,
            declared=period.current is not None,
            total=period.current.total if period.current else None,
        )
        for period in turnover.periods
    ]
    body = TurnoverAnswerV1(
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
    response_model=TurnoverAnswerV1,
    summary="Declared turnover per period, by SIREN",
    subject=lambda params: Subject("siren", params["siren"]),
)
async def turnover_by_siren(
    *,
    siren: Siren,
    from_: FromQuery = None,
    to: ToQuery = None,
    ctx: ConnectorContext,
) -> Disclosure[TurnoverAnswerV1]:
    """The declared total of every period touching the range, by SIREN.

    404 codes: `subject.unknown`, `subject.radiated_before_period`,
    `turnover.not_micro_entrepreneur`. 422: `range.invalid`.
    """
    months = resolve_range(from_, to, ctx.today)
    return _answer(await read_turnover(ctx.reader, months=months, siren=siren))


@VERSION.operation(
    "POST",
    "/turnover/search",
    response_model=TurnoverAnswerV1,
    summary="Declared turnover per period, by NIR",
    subject=lambda params: Subject("nir", params["body"].nir),
)
async def turnover_by_nir(
    *, body: TurnoverSearchV1, ctx: ConnectorContext
) -> Disclosure[TurnoverAnswerV1]:
    """The declared total of every period touching the range, for the person with this NIR.

    404 codes: `subject.unknown`, `subject.radiated_before_period`,
    `turnover.not_micro_entrepreneur`. 422: `range.invalid`.
    """
    months = resolve_range(body.from_, body.to, ctx.today)
    return _answer(await read_turnover(ctx.reader, months=months, nir=body.nir))
