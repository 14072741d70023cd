"""What CAF does: read the status feed to its end, then the quarterly turnover of a few people.

The feed is read from its beginning, page after page, until a page comes back short; a real
CAF would keep the last cursor and poll from it the next day. Turnover is read with the v2
connector and regrouped by quarter, since CAF's benefits are computed on quarterly
resources whatever the periodicity the person declares with.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Sequence
from decimal import Decimal

from mocks.caf import PROFILE
from mocks.common import api
from mocks.common.client import GatewayClient
from mocks.common.dates import months_back, today_in_france
from mocks.common.models import FeedEvent, Turnover
from mocks.common.report import Outcome, ScenarioReport

DEFAULT_PEOPLE = 3


def quarter_of(period: str) -> str:
    """``2026-Q2`` for ``2026-Q2`` and for ``2026-05``."""
    year, _, part = period.partition("-")
    if part.startswith("Q"):
        return period
    return f"{year}-Q{(int(part) - 1) // 3 + 1}"


def quarterly_totals(turnover: Turnover) -> dict[str, Decimal | None]:
    """Declared turnover per quarter; None for a quarter with a period left undeclared."""
    totals: dict[str, Decimal | None] = {}
    for period in turnover.periods:
        quarter = quarter_of(period.period)
        running = totals.get(quarter, Decimal(0))
        if period.declared and period.total is not None and running is not None:
            totals[quarter] = running + period.total
        else:
            totals[quarter] = None
    return totals


def euros(amount: Decimal) -> str:
    return f"{amount:,.2f} €"


def _feed_summary(events: Sequence[FeedEvent], pages: int) -> str:
    kinds = Counter(event.event for event in events)
    return (
        f"{len(events):,} events in {pages} page(s): {kinds['affiliation']:,} affiliations, "
        f"{kinds['radiation']:,} radiations, {kinds['regime_change']:,} regime changes; "
        "cursor kept to resume tomorrow"
    )


def _turnover_summary(turnover: Turnover) -> str:
    quarters = quarterly_totals(turnover)
    shown = ", ".join(
        f"{quarter[-2:]} {euros(total) if total is not None else 'not declared'}"
        for quarter, total in quarters.items()
    )
    return f"declares {turnover.periodicity or 'nothing'}; by quarter: {shown}"


def people_from_feed(events: Sequence[FeedEvent], count: int) -> list[str]:
    """SIRENs affiliated and never radiated in the feed: CAF's likely new beneficiaries."""
    radiated = {event.siren for event in events if event.event == "radiation"}
    chosen: list[str] = []
    for event in events:
        if event.event == "affiliation" and event.siren not in radiated:
            if event.siren not in chosen:
                chosen.append(event.siren)
            if len(chosen) == count:
                break
    return chosen


def run(
    client: GatewayClient,
    *,
    sirens: Sequence[str] | None = None,
    from_month: str | None = None,
    to_month: str | None = None,
    today: dt.date | None = None,
) -> ScenarioReport:
    started = time.perf_counter()
    report = ScenarioReport(PROFILE.name, PROFILE.role, purpose=client.purpose)
    if from_month is None or to_month is None:
        from_month, to_month = months_back(today or today_in_france(), 12)

    events, answers = api.read_feed(client)
    report.record(
        api.feed_answer(answers),
        "Follow the status change feed from its start",
        lambda _: _feed_summary(events, len(answers)),
        purpose=client.purpose,
    )

    # People picked from the feed may be TI classique: for them "no turnover" is an answer.
    expect: tuple[Outcome, ...] = ("answered",) if sirens else ("answered", "not found")
    for siren in sirens or people_from_feed(events, DEFAULT_PEOPLE):
        answer = api.turnover_by_siren(
            client,
            siren,
            from_month=from_month,
            to_month=to_month,
            case_reference=f"CAF-RSA-{siren}",
        )
        report.record(
            answer,
            f"Turnover {from_month} to {to_month} of SIREN {siren}",
            _turnover_summary,
            purpose=client.purpose,
            expect=expect,
        )
    report.seconds = time.perf_counter() - started
    return report
