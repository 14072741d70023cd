"""The ACRE rules and the exemption period, as pure functions."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.acre.decision import Criterion, Eligibility, decide, exemption_period
from gateway.reference.models import AcreDecisionKind


@dataclass(frozen=True)
class Facts:
    registration_months_last_18: int = 0
    benefits: tuple[str, ...] = field(default_factory=tuple)
    under_review: bool = False


GRANTED = AcreDecisionKind.GRANTED
REFUSED = AcreDecisionKind.REFUSED


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        (Facts(8, ("ARE",)), Eligibility(GRANTED, Criterion.UNEMPLOYMENT_BENEFIT_ARE)),
        (Facts(2, ("ARE",)), Eligibility(GRANTED, Criterion.UNEMPLOYMENT_BENEFIT_ARE)),
        (Facts(8, ("ASS",)), Eligibility(GRANTED, Criterion.SOLIDARITY_ALLOWANCE_ASS)),
        (Facts(8, ("ASS", "ARE")), Eligibility(GRANTED, Criterion.UNEMPLOYMENT_BENEFIT_ARE)),
        (Facts(6), Eligibility(GRANTED, Criterion.JOB_SEEKER_6_OF_18_MONTHS)),
        (Facts(18), Eligibility(GRANTED, Criterion.JOB_SEEKER_6_OF_18_MONTHS)),
        (Facts(5), Eligibility(REFUSED, None)),
        (Facts(0), Eligibility(REFUSED, None)),
        (Facts(12, ("ARE",), under_review=True), Eligibility(AcreDecisionKind.PENDING, None)),
        (Facts(0, under_review=True), Eligibility(AcreDecisionKind.PENDING, None)),
        (None, Eligibility(REFUSED, None)),
    ],
)
def test_decision_follows_the_job_seeker_criteria(
    facts: Facts | None, expected: Eligibility
) -> None:
    assert decide(facts) == expected


def test_criterion_codes_are_the_published_ones() -> None:
    # These strings are part of the public contract: renaming one breaks partners.
    assert [criterion.value for criterion in Criterion] == [
        "unemployment_benefit_are",
        "solidarity_allowance_ass",
        "job_seeker_6_of_18_months",
    ]


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (dt.date(2025, 1, 1), dt.date(2025, 12, 31)),
        (dt.date(2024, 3, 1), dt.date(2025, 2, 28)),
        (dt.date(2023, 3, 1), dt.date(2024, 2, 29)),
        (dt.date(2024, 2, 29), dt.date(2025, 2, 28)),
        (dt.date(2024, 2, 28), dt.date(2025, 2, 27)),
        (dt.date(2025, 12, 31), dt.date(2026, 12, 30)),
    ],
)
def test_exemption_lasts_twelve_months_from_affiliation(start: dt.date, end: dt.date) -> None:
    assert exemption_period(start) == (start, end)


@given(st.dates(min_value=dt.date(1990, 1, 1), max_value=dt.date(2100, 12, 31)))
def test_exemption_period_is_a_year_less_a_day(start: dt.date) -> None:
    first, last = exemption_period(start)
    assert first == start
    assert 364 <= (last - first).days <= 365
    following = last + dt.timedelta(days=1)
    if (start.month, start.day) == (2, 29):
        assert following == dt.date(start.year + 1, 3, 1)
    else:
        assert following == start.replace(year=start.year + 1)
