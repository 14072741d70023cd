"""What every turnover version reads: the requested range, the account, its declared periods.

A micro-entrepreneur declares turnover per month or per quarter (the choice can change from one
year to the next). A declaration can be rectified: the rectification is a new row for the same
period with a later ``declared_at``, so a period's current value is its latest declaration and
the others are its history. Versions shape these facts into their own response models; nothing
here is part of a published schema.

Ranges: ``from`` and ``to`` are months (``YYYY-MM``). When ``to`` is absent it is the current
month; when ``from`` is absent it is eleven months before ``to`` (so no parameter at all means
the last twelve months up to the current one). ``from`` must not be after ``to`` and the range
spans at most 36 months, else ``range.invalid``. A quarter is shown when it touches the range:
2026-02..2026-07 for a quarterly declarant is 2026-Q1..2026-Q3.

Outcomes, in the order they are checked (codes are part of every version's contract):

- ``range.invalid`` (422): the range is inverted, longer than 36 months or before year 1;
- ``subject.unknown`` (404): no account has this SIREN or NIR;
- ``subject.radiated_before_period`` (404): the account was radiated before the range starts
  and no declared period touches the range;
- ``turnover.not_micro_entrepreneur`` (404): the account is under the regime classique and no
  declared period touches the range (an account that left the micro regime still gets the
  periods it declared while it was under it);
- otherwise 200; a period without declaration is listed as such, even when none has any.

Queries: one for the account (the freshness ``as_of`` rides along as a scalar subquery), one
for the declarations touching the range, and, only when there is none, one to learn the
account's periodicity from its nearest declaration outside the range.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import Query
from sqlalchemy import Date, Integer, and_, bindparam, case, select
from sqlalchemy.orm import InstrumentedAttribute

from connectors.kit import InvalidRequest, Subject, SubjectNotFound, YearMonth
from gateway.reads import Prepared, Reader
from gateway.reference.freshness import loaded_at
from gateway.reference.models import Account, Regime, TurnoverDeclaration

SOURCE = "URSSAF — reference store"
DATASETS = ("accounts", "turnover")
MAX_MONTHS = 36
DEFAULT_MONTHS = 12

PeriodicityCode = Literal["monthly", "quarterly"]
CENT = Decimal("0.01")

# Months are counted as ``year * 12 + month - 1`` so that range arithmetic is integer arithmetic.
_FIRST_MONTH = 12  # January of year 1: earlier months have no date.


def month_index(year_month: str) -> int:
    """The month number of a ``YYYY-MM`` string already checked against its pattern."""
    return int(year_month[:4]) * 12 + int(year_month[5:7]) - 1


def month_label(index: int) -> str:
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def month_first_day(index: int) -> dt.date:
    return dt.date(index // 12, index % 12 + 1, 1)


def month_last_day(index: int) -> dt.date:
    year, month = index // 12, index % 12 + 1
    return dt.date(year, month, calendar.monthrange(year, month)[1])


def quarter_of(index: int) -> int:
    """The month number of the first month of the quarter holding month ``index``."""
    return index - index % 3


@dataclass(frozen=True)
class MonthRange:
    """An inclusive range of months, as month numbers (see :func:`month_index`)."""

    first: int
    last: int

    @property
    def from_month(self) -> str:
        return month_label(self.first)

    @property
    def to_month(self) -> str:
        return month_label(self.last)


def resolve_range(from_month: str | None, to_month: str | None, today: dt.date) -> MonthRange:
    """The requested range with defaults applied, or ``InvalidRequest("range.invalid")``."""
    last = month_index(to_month) if to_month else today.year * 12 + today.month - 1
    first = month_index(from_month) if from_month else last - (DEFAULT_MONTHS - 1)
    if first < _FIRST_MONTH or last < _FIRST_MONTH:
        raise InvalidRequest("range.invalid", "The range must start in year 1 or later.")
    if first > last:
        raise InvalidRequest(
            "range.invalid",
            "The start of the range is after its end (which defaults to the current month).",
        )
    if last - first + 1 > MAX_MONTHS:
        raise InvalidRequest(
            "range.invalid",
            f"The range spans more than {MAX_MONTHS} months.",
            extra={"max_months": MAX_MONTHS},
        )
    return MonthRange(first, last)


@dataclass(frozen=True)
class Declaration:
    declared_at: dt.datetime
    sales_bic: Decimal
    services_bic: Decimal
    services_bnc: Decimal

    @property
    def total(self) -> Decimal:
        return (self.sales_bic + self.services_bic + self.services_bnc).quantize(CENT)


@dataclass(frozen=True)
class Period:
    """One month or quarter of the range and its declarations, oldest first (maybe none)."""

    periodicity: PeriodicityCode
    first: int
    declarations: tuple[Declaration, ...]

    @property
    def months(self) -> int:
        return 3 if self.periodicity == "quarterly" else 1

    @property
    def key(self) -> str:
        if self.periodicity == "quarterly":
            return f"{self.first // 12:04d}-Q{self.first % 12 // 3 + 1}"
        return month_label(self.first)

    @property
    def start_date(self) -> dt.date:
        return month_first_day(self.first)

    @property
    def end_date(self) -> dt.date:
        return month_last_day(self.first + self.months - 1)

    @property
    def current(self) -> Declaration | None:
        """The declaration in force: the latest one."""
        return self.declarations[-1] if self.declarations else None

    @property
    def superseded(self) -> tuple[Declaration, ...]:
        """Earlier declarations replaced by a rectification, oldest first."""
        return self.declarations[:-1]


@dataclass(frozen=True)
class Turnover:
    """Everything a version needs to answer."""

    siren: str
    subjects: tuple[Subject, ...]
    months: MonthRange
    periodicity: PeriodicityCode | None
    periods: tuple[Period, ...]
    as_of: dt.datetime | None


def _turnover_query(identifier: InstrumentedAttribute[str]) -> Prepared:
    """The account with this identifier and its declarations of a span, in one query.

    The outer join keeps the account's row when it declared nothing in the span: one row with
    the declaration's columns null.
    """
    in_span = and_(
        TurnoverDeclaration.account_id == Account.id,
        TurnoverDeclaration.period_start >= bindparam("first_day", type_=Date),
        TurnoverDeclaration.period_start <= bindparam("last_day", type_=Date),
    )
    return Prepared(
        select(
            Account.id,
            Account.siren,
            Account.regime,
            Account.radiation_date,
            loaded_at(*DATASETS),
            TurnoverDeclaration.periodicity,
            TurnoverDeclaration.period_start,
            TurnoverDeclaration.declared_at,
            TurnoverDeclaration.sales_bic,
            TurnoverDeclaration.services_bic,
            TurnoverDeclaration.services_bnc,
        )
        .select_from(Account)
        .outerjoin(TurnoverDeclaration, in_span)
        .where(identifier == bindparam("identifier"))
        .order_by(TurnoverDeclaration.period_start, TurnoverDeclaration.declared_at)
    )


_BY_SIREN = _turnover_query(Account.siren)
_BY_NIR = _turnover_query(Account.nir)


async def read_turnover(
    reader: Reader, *, months: MonthRange, siren: str | None = None, nir: str | None = None
) -> Turnover:
    """The periods of ``months`` for the account with this SIREN or NIR (exactly one given)."""
    if (siren is None) == (nir is None):
        raise ValueError("give exactly one of siren and nir")
    # A quarter starting up to two months before the range still touches it.
    lookback = max(months.first - 2, _FIRST_MONTH)
    span = {"first_day": month_first_day(lookback), "last_day": month_first_day(months.last)}
    if siren is not None:
        rows = await reader.all(_BY_SIREN, identifier=siren, **span)
    else:
        rows = await reader.all(_BY_NIR, identifier=nir, **span)
    if not rows:
        raise SubjectNotFound("subject.unknown", "No account is known for this identifier.")
    account_id, account_siren, regime, radiation_date, as_of, *_ = rows[0]
    subjects: tuple[Subject, ...] = (Subject("siren", account_siren),)
    if nir is not None:
        # Both identifiers, so the audit trail finds this disclosure by either of them.
        subjects = (Subject("nir", nir), *subjects)

    declared: dict[tuple[PeriodicityCode, int], list[Declaration]] = {}
    for row in rows:
        stored, period_start, declared_at, sales_bic, services_bic, services_bnc = row[5:]
        if period_start is None:
            continue
        kind: PeriodicityCode = "quarterly" if stored == "quarterly" else "monthly"
        first = period_start.year * 12 + period_start.month - 1
        if kind == "quarterly":
            first = quarter_of(first)
        if first + (3 if kind == "quarterly" else 1) - 1 < months.first:
            continue
        # SQLite hands back floats turned into decimals: fix the scale for a stable output.
        declared.setdefault((kind, first), []).append(
            Declaration(
                declared_at,
                sales_bic.quantize(CENT),
                services_bic.quantize(CENT),
                services_bnc.quantize(CENT),
            )
        )

    fallback: PeriodicityCode | None = None
    if not declared:
        range_start = month_first_day(months.first)
        if radiation_date is not None and radiation_date < range_start:
            raise SubjectNotFound(
                "subject.radiated_before_period",
                "The account was radiated before the start of the requested range.",
            )
        if regime == Regime.CLASSIQUE:
            raise SubjectNotFound(
                "turnover.not_micro_entrepreneur",
                "The account is under the regime classique and declared no "
                "micro-entrepreneur turnover in the requested range.",
            )
        fallback = await _nearest_periodicity(reader, account_id, months)

    periods = _periods(months, declared, fallback)
    periodicity = _latest_periodicity(declared) or fallback
    return Turnover(
        siren=account_siren,
        subjects=subjects,
        months=months,
        periodicity=periodicity,
        periods=periods,
        as_of=as_of,
    )


def _nearest_periodicity_query() -> Prepared:
    """The periodicity of the latest declaration before a day, else the first after it."""
    before = TurnoverDeclaration.period_start <= bindparam("range_end", type_=Date)
    return Prepared(
        select(TurnoverDeclaration.periodicity)
        .where(TurnoverDeclaration.account_id == bindparam("account_id", type_=Integer))
        .order_by(
            case((before, 0), else_=1),
            case((before, TurnoverDeclaration.period_start), else_=None).desc(),
            TurnoverDeclaration.period_start,
        )
        .limit(1)
    )


_NEAREST_PERIODICITY = _nearest_periodicity_query()


async def _nearest_periodicity(
    reader: Reader, account_id: int, months: MonthRange
) -> PeriodicityCode | None:
    periodicity = await reader.scalar(
        _NEAREST_PERIODICITY, account_id=account_id, range_end=month_first_day(months.last)
    )
    if periodicity is None:
        return None
    return "quarterly" if periodicity == "quarterly" else "monthly"


def _latest_periodicity(
    declared: dict[tuple[PeriodicityCode, int], list[Declaration]],
) -> PeriodicityCode | None:
    if not declared:
        return None
    return max(declared, key=lambda period: period[1])[0]


def _periods(
    months: MonthRange,
    declared: dict[tuple[PeriodicityCode, int], list[Declaration]],
    fallback: PeriodicityCode | None,
) -> tuple[Period, ...]:
    """Declared periods plus one undeclared period for every month none of them covers.

    An uncovered month takes the periodicity of the nearest declared period before it (else
    after it, else the fallback, else monthly): a quarterly declarant's missing quarter is one
    quarter, not three months. A missing quarter is only used when no month of it is covered.
    """
    periods = [
        Period(kind, first, tuple(declarations)) for (kind, first), declarations in declared.items()
    ]
    covered: set[int] = set()
    for period in periods:
        covered.update(range(period.first, period.first + period.months))
    anchors: Sequence[tuple[int, PeriodicityCode]] = sorted(
        (first, kind) for kind, first in declared
    )

    def periodicity_near(month: int) -> PeriodicityCode:
        before = [kind for first, kind in anchors if first <= month]
        if before:
            return before[-1]
        if anchors:
            return anchors[0][1]
        return fallback or "monthly"

    for month in range(months.first, months.last + 1):
        if month in covered:
            continue
        if periodicity_near(month) == "quarterly":
            quarter = quarter_of(month)
            quarter_months = range(quarter, quarter + 3)
            if not covered.intersection(quarter_months):
                periods.append(Period("quarterly", quarter, ()))
                covered.update(quarter_months)
                continue
        periods.append(Period("monthly", month, ()))
        covered.add(month)
    periods.sort(key=lambda period: (period.first, period.months))
    return tuple(periods)


# Query parameters of the lookup by SIREN, the same in every version.
FromQuery = Annotated[
    YearMonth | None,
    Query(alias="from", description="First month (`YYYY-MM`); default: eleven months before `to`."),
]
ToQuery = Annotated[
    YearMonth | None, Query(description="Last month (`YYYY-MM`); default: the current month.")
]
