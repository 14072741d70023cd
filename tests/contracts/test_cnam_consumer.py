"""CNAM's contract: the status feed, and ACRE decisions without the criterion."""

from __future__ import annotations

from pathlib import Path

import httpx
from pact import Pact, match
from pact_support import (
    TEST_TOKEN,
    data_headers,
    date,
    datetime,
    discovery,
    expect_headers,
    new_pact,
    one_of,
    publish,
    siren,
)

from mocks.cnam import PROFILE, scenario
from mocks.common import GatewayClient, StaticBearer
from mocks.common.auth import discover

CREATOR = "880000047"


def cnam_pact() -> Pact:
    pact = new_pact("cnam")
    discovery(pact, "CNAM")
    headers = data_headers(PROFILE.purpose, PROFILE.recipient)

    feed = (
        pact.upon_receiving("CNAM reads the status feed from its start")
        .given("the status feed holds events")
        .with_request("GET", "/api/v1/status/events")
        .with_query_parameter("limit", "500")
    )
    expect_headers(feed, headers)
    feed.will_respond_with(200).with_body(
        {
            "events": match.each_like(
                {
                    "siren": siren("732829320"),
                    "event": one_of("affiliation", "affiliation", "radiation", "regime_change"),
                    "effective_date": date("2026-03-01"),
                }
            ),
            "next_cursor": match.regex("WzAsMV0", regex=r"^[A-Za-z0-9_-]+$"),
        },
        content_type="application/json",
    )

    # What CNAM relies on leaves out the criterion: its habilitation does not release it.
    proof = (
        pact.upon_receiving("CNAM reads the ACRE decision of a new affiliate")
        .given("a business creator was granted ACRE", siren=CREATOR)
        .with_request("GET", f"/api/v1/acre/proofs/{CREATOR}")
    )
    expect_headers(proof, headers)
    proof.will_respond_with(200).with_body(
        {
            "siren": CREATOR,
            "decision": one_of("granted", "granted", "refused", "pending"),
            "exemption": {"start_date": date("2026-03-01"), "end_date": date("2027-02-28")},
            "decided_at": datetime("2026-03-02T09:14:05Z"),
        },
        content_type="application/json",
    )
    return pact


def test_cnam_expectations_are_the_committed_pact(tmp_path: Path) -> None:
    pact = cnam_pact()
    with pact.serve() as server:
        with httpx.Client() as http:
            discover(http, str(server.url))
        client = GatewayClient(
            str(server.url),
            auth=StaticBearer(TEST_TOKEN),
            purpose=PROFILE.purpose,
            recipient=PROFILE.recipient,
        )
        with client:
            report = scenario.run(client, sirens=[CREATOR], from_feed=0)
    assert report.succeeded, report.steps
    assert "criterion not released to CNAM" in report.steps[1].received
    publish(pact, tmp_path)
