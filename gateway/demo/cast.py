"""Whom the demo partners ask about: people of the synthetic seed picked for each story.

The seed is deterministic, so the same people are picked on every machine: CAF reads the
turnover of people declaring quarterly, Pôle emploi that of people declaring monthly, the
ACRE decisions of a creator Pôle emploi knows as receiving ARE and of one it has never known,
and the training fund the CFP of craftsmen (with one whose business started after the year).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from gateway.reference.models import Category, Periodicity, Regime
from gateway.reference.seed import REFERENCE_DATE, SyntheticPerson, synthetic_persons
from mocks.pole_emploi_api.app import job_seeker_answer

# Turnover read over whole quarters that the seed's window covers, ending before its end.
CAF_FROM, CAF_TO = "2026-01", "2026-09"
PE_FROM, PE_TO = "2026-04", "2026-09"
CFP_YEAR = 2025


@dataclass(frozen=True, slots=True)
class DemoCast:
    quarterly_sirens: list[str]
    monthly_nirs: list[str]
    consenting_nir: str
    acre_sirens: list[str]
    applicant_sirens: list[str]
    caf_range: tuple[str, str] = (CAF_FROM, CAF_TO)
    pole_emploi_range: tuple[str, str] = (PE_FROM, PE_TO)
    cfp_year: int = CFP_YEAR


def _declares_over(person: SyntheticPerson, periods: Iterable[str]) -> bool:
    declared = {declaration.period for declaration in person.declarations}
    return all(period in declared for period in periods)


def _active_micro(person: SyntheticPerson, periodicity: str) -> bool:
    return (
        not person.is_radiated
        and person.regime == Regime.MICRO.value
        and person.periodicity == periodicity
    )


def _pick(
    people: Sequence[SyntheticPerson], count: int, test: Callable[[SyntheticPerson], bool]
) -> list[SyntheticPerson]:
    found = [person for person in people if test(person)][:count]
    if len(found) < count:
        raise LookupError("the demo seed holds too few people for a demo story")
    return found


def cast(seed: int, persons: int) -> DemoCast:
    people = synthetic_persons(seed, persons)
    quarters = ("2026-Q1", "2026-Q2", "2026-Q3")
    months = ("2026-04", "2026-05", "2026-06", "2026-07", "2026-08", "2026-09")
    quarterly = _pick(
        people,
        2,
        lambda p: _active_micro(p, Periodicity.QUARTERLY.value) and _declares_over(p, quarters),
    )
    monthly = _pick(
        people,
        3,
        lambda p: _active_micro(p, Periodicity.MONTHLY.value) and _declares_over(p, months),
    )

    def pole_emploi_says(person: SyntheticPerson) -> dict[str, object]:
        # The mock's answer depends on the NIR alone; the dates only fill its fields.
        return job_seeker_answer(person.nir, REFERENCE_DATE, dt.datetime.now(dt.UTC))

    recent = [
        person
        for person in people
        if not person.is_radiated and (REFERENCE_DATE - person.status.affiliation_date).days < 365
    ]
    receives_are = _pick(recent, 1, lambda p: pole_emploi_says(p).get("benefits") == ["ARE"])
    unknown = _pick(recent, 1, lambda p: not pole_emploi_says(p))

    def craftsman_paid(person: SyntheticPerson) -> bool:
        return person.category == Category.ARTISAN.value and any(
            cfp.year == CFP_YEAR for cfp in person.cfp
        )

    applicants = _pick(people, 5, craftsman_paid)
    started_later = _pick(
        people,
        1,
        lambda p: (
            p.category == Category.ARTISAN.value and not any(cfp.year == CFP_YEAR for cfp in p.cfp)
        ),
    )
    return DemoCast(
        quarterly_sirens=[person.siren for person in quarterly],
        monthly_nirs=[person.nir for person in monthly[:2]],
        consenting_nir=monthly[2].nir,
        acre_sirens=[receives_are[0].siren, unknown[0].siren],
        applicant_sirens=[person.siren for person in [*applicants, *started_later]],
    )
