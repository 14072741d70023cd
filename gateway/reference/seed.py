"""Deterministic synthetic reference data, for demos, tests and load measurements.

Person ``i`` of seed ``s`` is generated from a random generator seeded with ``(s, i)`` alone, so
the same seed always gives the same people, and the first ``k`` people are the same whatever
the total: tests call :func:`synthetic_persons` to know whom the store holds.

Identifiers are valid (NIR key, SIREN Luhn) and unique by construction: the last six digits of
each NIR body and the first eight of each SIREN are an affine permutation of the person's index
(a multiplier coprime with the modulus never maps two indexes to the same value), which caps a
seed at one million people.

The mixes follow the domain: about 70 % micro-entrepreneurs and 30 % TI classique; micro
accounts declare turnover monthly (about 40 %) or quarterly over the 24 months before
:data:`REFERENCE_DATE`, including zero declarations and about 5 % rectifications; about 10 % of
accounts are radiated and 5 % changed regime; CFP for the last three years is mostly paid,
sometimes partly, sometimes not. Data is dated from a fixed reference date, not today, so it
does not drift.

Rows are written with multi-row Core inserts in large batches, not through the ingestion
path, and every dataset gets an ``IngestionRun`` named ``seed``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import math
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, NamedTuple

from sqlalchemy import Connection, Engine, func, insert, select
from sqlalchemy.orm import Session

from gateway.database import utcnow
from gateway.identifiers import nir_with_key, siren_with_checksum
from gateway.reference.ingest.rows import Dataset
from gateway.reference.models import (
    Account,
    Category,
    CfpPayment,
    IngestionRun,
    Periodicity,
    Regime,
    StatusEvent,
    StatusEventKind,
    TurnoverDeclaration,
)
from gateway.reference.status import AccountStatus, derive_status

__all__ = [
    "CFP_YEARS",
    "MAX_PERSONS",
    "PASS_BY_YEAR",
    "REFERENCE_DATE",
    "ReferenceStoreNotEmptyError",
    "SeedSummary",
    "SyntheticCfp",
    "SyntheticDeclaration",
    "SyntheticEvent",
    "SyntheticPerson",
    "seed_reference_data",
    "synthetic_person",
    "synthetic_persons",
]

REFERENCE_DATE = dt.date(2026, 10, 31)
MAX_PERSONS = 1_000_000
SEED_SOURCE_NAME = "seed"

# Annual social security ceiling (plafond annuel de la sécurité sociale).
PASS_BY_YEAR = {2024: Decimal(46368), 2025: Decimal(47100), 2026: Decimal(48060)}
CFP_YEARS = (2024, 2025, 2026)
# Micro-entrepreneurs: a share of turnover by activity; TI classique: a share of the PASS.
MICRO_CFP_RATES: dict[str, Decimal] = {
    Category.COMMERCANT.value: Decimal("0.1"),
    Category.ARTISAN.value: Decimal("0.3"),
    Category.LIBERAL.value: Decimal("0.2"),
}
CLASSIQUE_CFP_RATE = Decimal("0.25")
FUNDS: dict[str, str] = {
    Category.COMMERCANT.value: "AGEFICE",
    Category.ARTISAN.value: "FAFCEA",
    Category.LIBERAL.value: "FIF-PL",
}
RADIATION_REASONS = (
    ("cessation d'activité", 70),
    ("départ à la retraite", 12),
    ("radiation d'office pour absence de chiffre d'affaires", 10),
    ("transfert vers une société", 8),
)

# Turnover window: periods ending in the 24 months before the reference date.
_FIRST_MONTH = dt.date(2024, 10, 1)
_MONTHS = 24
_CENT = Decimal("0.01")
# Nothing is declared after the reference date.
_DATA_END = dt.datetime.combine(REFERENCE_DATE + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
_CHUNK = 5000
_DEPARTMENTS = tuple(f"{n:02d}" for n in range(1, 96) if n != 20)
_SIREN_SPAN = 90_000_000  # prefixes 10000000..99999999
_NIR_SPAN = 1_000_000  # commune and order number: the body's last six digits


# --- what a person is ------------------------------------------------------------------------


# Plain named tuples: a seed builds over a million of them, and they are the cheapest to make.
class SyntheticEvent(NamedTuple):
    id: int  # order within the person, so the status replay breaks same-day ties
    event: str
    effective_date: dt.date
    detail: str | None


class SyntheticDeclaration(NamedTuple):
    period: str
    periodicity: str
    period_start: dt.date
    sales_bic: Decimal
    services_bic: Decimal
    services_bnc: Decimal
    declared_at: dt.datetime


class SyntheticCfp(NamedTuple):
    year: int
    base: Decimal
    rate: Decimal
    amount_due: Decimal
    amount_paid: Decimal
    payment_date: dt.date | None
    fund: str


@dataclass(frozen=True, slots=True)
class SyntheticPerson:
    index: int
    nir: str
    siren: str
    category: str
    status: AccountStatus
    periodicity: str | None  # how the person declares turnover while micro
    events: tuple[SyntheticEvent, ...]
    declarations: tuple[SyntheticDeclaration, ...]
    cfp: tuple[SyntheticCfp, ...]

    @property
    def regime(self) -> str:
        return self.status.regime

    @property
    def is_radiated(self) -> bool:
        return self.status.is_radiated


@dataclass(frozen=True)
class SeedSummary:
    persons: int
    seed: int
    accounts: int
    status_events: int
    turnover_declarations: int
    cfp_payments: int
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "persons": self.persons,
            "seed": self.seed,
            "accounts": self.accounts,
            "status_events": self.status_events,
            "turnover_declarations": self.turnover_declarations,
            "cfp_payments": self.cfp_payments,
            "seconds": round(self.seconds, 3),
        }


class ReferenceStoreNotEmptyError(Exception):
    """Seeding adds people by index from zero; into a store that has accounts it would clash."""


# --- generation ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Layout:
    """The identifier permutations of one seed."""

    siren_factor: int
    siren_offset: int
    nir_factor: int
    nir_offset: int

    @classmethod
    def of(cls, seed: int) -> _Layout:
        rng = random.Random(f"layout:{seed}")  # noqa: S311 - reproducible test data, no secret
        return cls(
            siren_factor=_coprime(rng, _SIREN_SPAN),
            siren_offset=rng.randrange(_SIREN_SPAN),
            nir_factor=_coprime(rng, _NIR_SPAN),
            nir_offset=rng.randrange(_NIR_SPAN),
        )


def _coprime(rng: random.Random, modulus: int) -> int:
    while True:
        candidate = rng.randrange(modulus // 3, modulus)
        if math.gcd(candidate, modulus) == 1:
            return candidate


def _cents(amount: float) -> Decimal:
    return Decimal(max(0, round(amount * 100))).scaleb(-2)


def _add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def _random_day(rng: random.Random, first: dt.date, last: dt.date) -> dt.date:
    return first + dt.timedelta(days=rng.randint(0, (last - first).days))


class _Weighted:
    """A fixed weighted choice, its cumulative weights computed once."""

    def __init__(self, choices: Sequence[tuple[str, int]]) -> None:
        self.names = [name for name, _ in choices]
        self.cumulative = list(itertools.accumulate(weight for _, weight in choices))

    def pick(self, rng: random.Random) -> str:
        return rng.choices(self.names, cum_weights=self.cumulative)[0]


_CATEGORIES = _Weighted(
    ((Category.ARTISAN.value, 35), (Category.COMMERCANT.value, 35), (Category.LIBERAL.value, 30))
)
_RADIATION_REASONS = _Weighted(RADIATION_REASONS)


def synthetic_person(seed: int, index: int, layout: _Layout | None = None) -> SyntheticPerson:
    """Person number ``index`` (from 0) of ``seed``: the same on every call and machine."""
    if not 0 <= index < MAX_PERSONS:
        raise ValueError(f"a person index is between 0 and {MAX_PERSONS - 1}")
    layout = layout or _Layout.of(seed)
    rng = random.Random(f"person:{seed}:{index}")  # noqa: S311 - reproducible test data

    category = _CATEGORIES.pick(rng)
    # Affiliations skew recent, as registrations of micro-entrepreneurs do.
    years_back = min(rng.expovariate(1 / 5), 18.0)
    affiliation_date = REFERENCE_DATE - dt.timedelta(days=30 + int(years_back * 365.25))
    first_regime = Regime.MICRO.value if rng.random() < 0.71 else Regime.CLASSIQUE.value
    events = [SyntheticEvent(0, StatusEventKind.AFFILIATION.value, affiliation_date, first_regime)]

    # Radiation first, so that a regime change can be placed before it.
    end = REFERENCE_DATE
    roll = rng.random()
    radiation_date = None
    if roll < 0.12 and (REFERENCE_DATE - affiliation_date).days > 200:
        radiation_date = _random_day(rng, affiliation_date + dt.timedelta(days=180), end)
        end = radiation_date - dt.timedelta(days=1)
    if rng.random() < 0.06 and (end - affiliation_date).days > 400:
        other = Regime.CLASSIQUE.value if first_regime == Regime.MICRO else Regime.MICRO.value
        change_date = _random_day(rng, affiliation_date + dt.timedelta(days=365), end)
        events.append(SyntheticEvent(1, StatusEventKind.REGIME_CHANGE.value, change_date, other))
    if radiation_date is not None:
        reason = _RADIATION_REASONS.pick(rng)
        events.append(SyntheticEvent(2, StatusEventKind.RADIATION.value, radiation_date, reason))
        # Some come back: a new affiliation clears the radiation.
        if rng.random() < 0.15 and (REFERENCE_DATE - radiation_date).days > 90:
            back = _random_day(rng, radiation_date + dt.timedelta(days=60), REFERENCE_DATE)
            regime = derive_status(AccountStatus(first_regime, affiliation_date), events).regime
            events.append(SyntheticEvent(3, StatusEventKind.AFFILIATION.value, back, regime))
    status = derive_status(AccountStatus(first_regime, affiliation_date), events)

    birth_year = max(1940, affiliation_date.year - rng.randint(18, 62))
    roll = rng.random()
    if roll < 0.01:
        department = "2A"
    elif roll < 0.02:
        department = "2B"
    elif roll < 0.05:
        department = "99"  # born abroad
    else:
        department = rng.choice(_DEPARTMENTS)
    sex = rng.choice("12")
    tail = (layout.nir_factor * index + layout.nir_offset) % _NIR_SPAN
    nir = nir_with_key(f"{sex}{birth_year % 100:02d}{rng.randint(1, 12):02d}{department}{tail:06d}")
    prefix = 10_000_000 + (layout.siren_factor * index + layout.siren_offset) % _SIREN_SPAN
    siren = siren_with_checksum(f"{prefix:08d}")

    micro_spans = _micro_spans(events)
    periodicity = None
    if micro_spans:
        periodicity = (
            Periodicity.MONTHLY.value if rng.random() < 0.4 else Periodicity.QUARTERLY.value
        )
    monthly_level = min(math.exp(rng.gauss(math.log(1800), 0.9)), 14_000.0)
    dormant = rng.random() < 0.06
    declarations = (
        _declarations(rng, category, periodicity, micro_spans, monthly_level, dormant)
        if periodicity is not None
        else []
    )
    cfp = _cfp(rng, category, events, declarations, micro_spans, monthly_level, dormant)
    return SyntheticPerson(
        index=index,
        nir=nir,
        siren=siren,
        category=category,
        status=status,
        periodicity=periodicity,
        events=tuple(events),
        declarations=tuple(declarations),
        cfp=tuple(cfp),
    )


def _timeline(events: Sequence[SyntheticEvent]) -> Iterator[tuple[dt.date, bool, str]]:
    """(from date, active, regime) after each event, in order."""
    regime = str(events[0].detail)
    for event in sorted(events, key=lambda item: (item.effective_date, item.id)):
        if event.event in (StatusEventKind.AFFILIATION, StatusEventKind.REGIME_CHANGE):
            regime = str(event.detail)
            yield event.effective_date, True, regime
        else:
            yield event.effective_date, False, regime


def _micro_spans(events: Sequence[SyntheticEvent]) -> list[tuple[dt.date, dt.date]]:
    """The (first, last) days the person was affiliated as a micro-entrepreneur."""
    if len(events) == 1:
        first = events[0]
        return [(first.effective_date, REFERENCE_DATE)] if first.detail == Regime.MICRO else []
    spans = []
    steps = list(_timeline(events))
    for position, (start, active, regime) in enumerate(steps):
        if not active or regime != Regime.MICRO:
            continue
        if position + 1 < len(steps):
            last = steps[position + 1][0] - dt.timedelta(days=1)
        else:
            last = REFERENCE_DATE
        if last >= start:
            spans.append((start, last))
    return spans


def _overlaps(spans: Sequence[tuple[dt.date, dt.date]], first: dt.date, last: dt.date) -> bool:
    return any(start <= last and first <= end for start, end in spans)


_ZERO = Decimal(0)
_SERVICE_SHARES = {
    Category.COMMERCANT.value: (0.0, 0.0, 0.0, 0.2, 0.35),
    Category.ARTISAN.value: (1.0, 1.0, 0.9, 0.7, 0.5),
}


def _split(rng: random.Random, category: str, total: Decimal) -> tuple[Decimal, Decimal, Decimal]:
    """(sales_bic, services_bic, services_bnc) for a declared total, by kind of activity."""
    if total == 0:
        return total, total, total
    if category == Category.LIBERAL:
        return _ZERO, _ZERO, total
    shares = _SERVICE_SHARES[category]
    services = (total * Decimal(shares[int(rng.random() * len(shares))])).quantize(_CENT)
    return total - services, services, _ZERO


@dataclass(frozen=True, slots=True)
class _Period:
    label: str
    start: dt.date
    last: dt.date
    closed_at: dt.datetime  # midnight UTC after the last day: declarations come after it


def _window(months: int) -> tuple[_Period, ...]:
    periods = []
    for step in range(0, _MONTHS, months):
        start = _add_months(_FIRST_MONTH, step)
        following = _add_months(start, months)
        if months == 1:
            label = f"{start.year}-{start.month:02d}"
        else:
            label = f"{start.year}-Q{(start.month + 2) // 3}"
        closed_at = dt.datetime.combine(following, dt.time(), tzinfo=dt.UTC)
        periods.append(_Period(label, start, following - dt.timedelta(days=1), closed_at))
    return tuple(periods)


# The periods of the turnover window, computed once: generation runs them for every person.
_WINDOWS = {Periodicity.MONTHLY.value: _window(1), Periodicity.QUARTERLY.value: _window(3)}
_DAY = 86_400


def _declarations(
    rng: random.Random,
    category: str,
    periodicity: str,
    spans: Sequence[tuple[dt.date, dt.date]],
    monthly_level: float,
    dormant: bool,
) -> list[SyntheticDeclaration]:
    found = []
    months = 1 if periodicity == Periodicity.MONTHLY else 3
    draw = rng.random
    for period in _WINDOWS[periodicity]:
        if not _overlaps(spans, period.start, period.last):
            continue
        if dormant or draw() < 0.05:
            total = _ZERO
        else:
            total = _cents(monthly_level * months * (0.4 + 1.2 * draw()))
        # Within four weeks of the period's end, between 07:00 and 23:00 UTC.
        declared_at = period.closed_at + dt.timedelta(
            seconds=int(draw() * 29) * _DAY + 25_200 + int(draw() * 57_600)
        )
        found.append(
            SyntheticDeclaration(
                period.label,
                periodicity,
                period.start,
                *_split(rng, category, total),
                declared_at,
            )
        )
        if draw() < 0.05:
            # A rectification: a later declaration for the same period, with other amounts.
            corrected = _cents(float(total) * (0.7 + 0.6 * draw()) + 10 + 290 * draw())
            rectified_at = declared_at + dt.timedelta(
                seconds=int((3 + 57 * draw()) * _DAY) + int(draw() * 32_400)
            )
            if rectified_at < _DATA_END:
                found.append(
                    SyntheticDeclaration(
                        period.label,
                        periodicity,
                        period.start,
                        *_split(rng, category, corrected),
                        rectified_at,
                    )
                )
    return found


_MONTHS_BEFORE_WINDOW = {
    year: tuple(
        (first, _add_months(first, 1) - dt.timedelta(days=1))
        for first in (dt.date(year, month, 1) for month in range(1, 13))
        if first < _FIRST_MONTH
    )
    for year in CFP_YEARS
}


def _status_on(events: Sequence[SyntheticEvent], day: dt.date) -> AccountStatus:
    first = events[0]
    start = AccountStatus(str(first.detail), first.effective_date)
    if len(events) == 1:  # most people: affiliated once, nothing since
        return start
    return derive_status(start, [event for event in events if event.effective_date <= day])


def _cfp(
    rng: random.Random,
    category: str,
    events: Sequence[SyntheticEvent],
    declarations: Sequence[SyntheticDeclaration],
    spans: Sequence[tuple[dt.date, dt.date]],
    monthly_level: float,
    dormant: bool,
) -> list[SyntheticCfp]:
    # The latest declaration of each period is the one that counts.
    latest: dict[str, SyntheticDeclaration] = {}
    for declaration in declarations:
        known = latest.get(declaration.period)
        if known is None or declaration.declared_at > known.declared_at:
            latest[declaration.period] = declaration
    turnover_by_year: dict[int, Decimal] = {}
    for declaration in latest.values():
        year = declaration.period_start.year
        turnover_by_year[year] = (
            turnover_by_year.get(year, Decimal(0))
            + declaration.sales_bic
            + declaration.services_bic
            + declaration.services_bnc
        )

    found = []
    affiliated = events[0].effective_date
    for year in CFP_YEARS:
        year_end = min(dt.date(year, 12, 31), REFERENCE_DATE)
        if affiliated > year_end:
            continue
        status = _status_on(events, year_end)
        if status.radiation_date is not None and status.radiation_date < dt.date(year, 1, 1):
            continue
        if status.regime == Regime.MICRO:
            rate = MICRO_CFP_RATES[category]
            base = turnover_by_year.get(year, Decimal(0))
            # Months before the turnover window still count towards the year's base.
            if not dormant:
                for first, last in _MONTHS_BEFORE_WINDOW.get(year, ()):
                    if _overlaps(spans, first, last):
                        base += _cents(monthly_level * (0.4 + 1.2 * rng.random()))
        else:
            rate = CLASSIQUE_CFP_RATE
            base = PASS_BY_YEAR[year]
        due = (base * rate / 100).quantize(_CENT, rounding=ROUND_HALF_UP)
        roll = rng.random()
        if due == 0 or roll >= 0.93:
            paid, paid_on = Decimal(0), None
        else:
            paid_on = _random_day(
                rng, min(max(dt.date(year, 2, 1), affiliated), year_end), year_end
            )
            paid = due if roll < 0.85 else (due * Decimal(rng.uniform(0.2, 0.8))).quantize(_CENT)
        found.append(SyntheticCfp(year, base, rate, due, paid, paid_on, FUNDS[category]))
    return found


def synthetic_persons(seed: int, count: int) -> list[SyntheticPerson]:
    """The first ``count`` people of ``seed``, as :func:`seed_reference_data` writes them."""
    layout = _Layout.of(seed)
    return [synthetic_person(seed, index, layout) for index in range(count)]


# --- writing ---------------------------------------------------------------------------------


def seed_reference_data(
    bind: Engine | Connection | Session, persons: int, seed: int
) -> SeedSummary:
    """Write ``persons`` synthetic people of ``seed`` into an empty reference store.

    With an engine, everything is committed in one transaction; with a connection or a
    session, the rows join its transaction and committing is left to the caller.
    Raises :class:`ReferenceStoreNotEmptyError` when the store already has accounts.
    """
    if not 1 <= persons <= MAX_PERSONS:
        raise ValueError(f"persons must be between 1 and {MAX_PERSONS}")
    if isinstance(bind, Engine):
        with bind.begin() as connection:
            return _seed(connection, persons, seed)
    connection = bind.connection() if isinstance(bind, Session) else bind
    return _seed(connection, persons, seed)


def _seed(connection: Connection, persons: int, seed: int) -> SeedSummary:
    if connection.execute(select(Account.id).limit(1)).first() is not None:
        raise ReferenceStoreNotEmptyError(
            "the reference store already has accounts: seed an empty database"
        )
    clock = time.perf_counter()
    started_at = utcnow()
    layout = _Layout.of(seed)
    counts = {dataset: 0 for dataset in Dataset}
    for first in range(0, persons, _CHUNK):
        people = [
            synthetic_person(seed, index, layout)
            for index in range(first, min(first + _CHUNK, persons))
        ]
        for dataset, written in _write_chunk(connection, people).items():
            counts[dataset] += written

    finished_at = utcnow()
    digest = hashlib.sha256(f"seed={seed};persons={persons}".encode()).hexdigest()
    connection.execute(
        insert(IngestionRun),
        [
            {
                "dataset": dataset.value,
                "source_name": SEED_SOURCE_NAME,
                "source_sha256": digest,
                "started_at": started_at,
                "finished_at": finished_at,
                "rows_read": written,
                "rows_added": written,
                "rows_updated": 0,
                "rows_unchanged": 0,
                "rows_rejected": 0,
            }
            for dataset, written in counts.items()
        ],
    )
    return SeedSummary(
        persons=persons,
        seed=seed,
        accounts=counts[Dataset.ACCOUNTS],
        status_events=counts[Dataset.STATUS_EVENTS],
        turnover_declarations=counts[Dataset.TURNOVER],
        cfp_payments=counts[Dataset.CFP],
        seconds=time.perf_counter() - clock,
    )


def _write_chunk(connection: Connection, people: Sequence[SyntheticPerson]) -> dict[Dataset, int]:
    # Load timestamps come from the database clock: one SQL expression for the whole batch
    # instead of a value converted for every row, which is most of the cost of a seed.
    loaded_at = func.current_timestamp()
    connection.execute(
        insert(Account).values(created_at=loaded_at, updated_at=loaded_at),
        [
            {
                "nir": person.nir,
                "siren": person.siren,
                "category": person.category,
                "regime": person.status.regime,
                "affiliation_date": person.status.affiliation_date,
                "radiation_date": person.status.radiation_date,
                "radiation_reason": person.status.radiation_reason,
            }
            for person in people
        ],
    )
    # The new ids in one query (RETURNING in row order makes SQLite insert row by row).
    id_of = dict(
        connection.execute(
            select(Account.siren, Account.id).where(
                Account.siren.in_([person.siren for person in people])
            )
        ).all()
    )
    account_ids = [id_of[person.siren] for person in people]
    events: list[dict[str, Any]] = []
    declarations: list[dict[str, Any]] = []
    payments: list[dict[str, Any]] = []
    for account_id, person in zip(account_ids, people, strict=True):
        events.extend(
            {
                "account_id": account_id,
                "event": event.event,
                "effective_date": event.effective_date,
                "detail": event.detail,
            }
            for event in sorted(person.events, key=lambda item: (item.effective_date, item.id))
        )
        declarations.extend(
            {
                "account_id": account_id,
                "period": declaration.period,
                "periodicity": declaration.periodicity,
                "period_start": declaration.period_start,
                "sales_bic": declaration.sales_bic,
                "services_bic": declaration.services_bic,
                "services_bnc": declaration.services_bnc,
                "declared_at": declaration.declared_at,
            }
            for declaration in person.declarations
        )
        payments.extend(
            {
                "account_id": account_id,
                "year": payment.year,
                "base": payment.base,
                "rate": payment.rate,
                "amount_due": payment.amount_due,
                "amount_paid": payment.amount_paid,
                "payment_date": payment.payment_date,
                "fund": payment.fund,
            }
            for payment in person.cfp
        )
    if events:
        connection.execute(insert(StatusEvent).values(recorded_at=loaded_at), events)
    if declarations:
        connection.execute(insert(TurnoverDeclaration).values(recorded_at=loaded_at), declarations)
    if payments:
        connection.execute(
            insert(CfpPayment).values(recorded_at=loaded_at, updated_at=loaded_at), payments
        )
    return {
        Dataset.ACCOUNTS: len(people),
        Dataset.STATUS_EVENTS: len(events),
        Dataset.TURNOVER: len(declarations),
        Dataset.CFP: len(payments),
    }
