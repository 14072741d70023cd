"""What CNAM does: read the status feed to its end, then the ACRE decisions of new affiliates."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence

from mocks.cnam import PROFILE
from mocks.common import api
from mocks.common.client import GatewayClient
from mocks.common.models import AcreProof, FeedEvent
from mocks.common.report import ScenarioReport

DEFAULT_PEOPLE = 3


def latest_affiliations(events: Sequence[FeedEvent], count: int) -> list[str]:
    """The SIRENs of the latest affiliations in the feed, most recent first."""
    chosen: list[str] = []
    ordered = sorted(
        (event for event in events if event.event == "affiliation"),
        key=lambda event: event.effective_date,
        reverse=True,
    )
    for event in ordered:
        if event.siren not in chosen:
            chosen.append(event.siren)
        if len(chosen) == count:
            break
    return chosen


def _proof(proof: AcreProof) -> str:
    text: str = proof.decision
    if proof.exemption:
        text += f"; exempt {proof.exemption.start_date} to {proof.exemption.end_date}"
    if proof.criterion is None and proof.decision == "granted":
        text += "; criterion not released to CNAM"
    return text


def run(
    client: GatewayClient, *, sirens: Sequence[str] = (), from_feed: int = DEFAULT_PEOPLE
) -> ScenarioReport:
    """Read the feed, then the ACRE decisions of ``sirens`` and of the ``from_feed`` latest
    affiliations it carried."""
    started = time.perf_counter()
    report = ScenarioReport(PROFILE.name, PROFILE.role, purpose=client.purpose)
    events, answers = api.read_feed(client)
    kinds = Counter(event.event for event in events)
    report.record(
        api.feed_answer(answers),
        "Follow the status change feed from its start",
        lambda _: (
            f"{len(events):,} events in {len(answers)} page(s): "
            f"{kinds['affiliation']:,} affiliations, {kinds['radiation']:,} radiations"
        ),
        purpose=client.purpose,
    )
    asked = list(dict.fromkeys([*sirens, *latest_affiliations(events, from_feed + len(sirens))]))
    for siren in asked[: len(sirens) + from_feed]:
        report.record(
            api.acre_proof(client, siren, case_reference=f"CNAM-AFF-{siren}"),
            f"ACRE decision for new affiliate {siren}",
            _proof,
            purpose=client.purpose,
        )
    report.seconds = time.perf_counter() - started
    return report
