"""The ACRE rules on the Pôle emploi side, as pure functions of the facts Pôle emploi sent.

ACRE exempts a business creator from part of their contributions for the first 12 months of
activity. Among its criteria, the job-seeker ones are established from Pôle emploi's file:
receiving the unemployment benefit (ARE), receiving the solidarity allowance (ASS), or having
been registered as a job seeker at least 6 of the last 18 months. Other criteria (age 18-25,
RSA, priority neighbourhood) come from other bodies and are not decided here.

Rules, in order:

1. the person is unknown to Pôle emploi: ``refused``, no criterion;
2. Pôle emploi says the file is under review: ``pending``, no criterion, whatever else the
   answer says, because the facts the review may change are the ones the rules read;
3. the first criterion met, in the order ARE, ASS, registration 6 of 18 months: ``granted``;
4. otherwise ``refused``, no criterion.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from gateway.reference.models import AcreDecisionKind

MIN_REGISTRATION_MONTHS = 6
EXEMPTION_MONTHS = 12


class Criterion(enum.StrEnum):
    """The ACRE criterion a decision rests on; the values are part of the public contract."""

    UNEMPLOYMENT_BENEFIT_ARE = "unemployment_benefit_are"
    SOLIDARITY_ALLOWANCE_ASS = "solidarity_allowance_ass"
    JOB_SEEKER_6_OF_18_MONTHS = "job_seeker_6_of_18_months"


class JobSeekerFacts(Protocol):
    """What the rules read of Pôle emploi's answer."""

    @property
    def registration_months_last_18(self) -> int: ...

    @property
    def benefits(self) -> Sequence[str]: ...

    @property
    def under_review(self) -> bool: ...


@dataclass(frozen=True)
class Eligibility:
    decision: AcreDecisionKind
    criterion: Criterion | None


def decide(facts: JobSeekerFacts | None) -> Eligibility:
    """The decision for a person; ``None`` means Pôle emploi does not know them."""
    if facts is None:
        return Eligibility(AcreDecisionKind.REFUSED, None)
    if facts.under_review:
        return Eligibility(AcreDecisionKind.PENDING, None)
    if "ARE" in facts.benefits:
        return Eligibility(AcreDecisionKind.GRANTED, Criterion.UNEMPLOYMENT_BENEFIT_ARE)
    if "ASS" in facts.benefits:
        return Eligibility(AcreDecisionKind.GRANTED, Criterion.SOLIDARITY_ALLOWANCE_ASS)
    if facts.registration_months_last_18 >= MIN_REGISTRATION_MONTHS:
        return Eligibility(AcreDecisionKind.GRANTED, Criterion.JOB_SEEKER_6_OF_18_MONTHS)
    return Eligibility(AcreDecisionKind.REFUSED, None)


def exemption_period(start: dt.date) -> tuple[dt.date, dt.date]:
    """The 12 months of exemption from the affiliation date: first and last day, inclusive.

    The period ends the day before the start's anniversary. A start on 29 February has no
    anniversary in a common year; the next day (1 March) stands in, so the period ends on
    28 February like every other start in late February.
    """
    year = start.year + EXEMPTION_MONTHS // 12
    try:
        anniversary = start.replace(year=year)
    except ValueError:
        anniversary = dt.date(year, 3, 1)
    return start, anniversary - dt.timedelta(days=1)
