"""CAF's contract: what its scenario asks the gateway, and the fields it relies on."""

from __future__ import annotations

from pathlib import Path

import httpx
from pact import Pact, match
from pact_support import (
    TEST_TOKEN,
    data_headers,
    date,
    datetime,
    decimal,
    discovery,
    expect_headers,
    new_pact,
    one_of,
    problem,
    publish,
    siren,
)

from mocks.caf import PROFILE, scenario
from mocks.common import GatewayClient, StaticBearer, api
from mocks.common.auth import discover

QUARTERLY = "880000013"
UNKNOWN = "880000021"
RANGE = ("2026-01", "2026-09")


def caf_pact() -> Pact:
    pact = new_pact("caf")
    discovery(pact, "CAF")
    headers = data_headers(PROFILE.purpose, PROFILE.recipient)

    feed = (
        pact.upon_receiving("CAF reads the status feed from its start")
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

    turnover = (
        pact.upon_receiving("CAF reads the turnover of a micro-entrepreneur declaring quarterly")
        .given("a micro-entrepreneur declares quarterly", siren=QUARTERLY)
        .with_request("GET", f"/api/v2/turnover/{QUARTERLY}")
        .with_query_parameter("from", RANGE[0])
        .with_query_parameter("to", RANGE[1])
    )
    expect_headers(turnover, headers)
    turnover.will_respond_with(200).with_body(
        {
            "siren": QUARTERLY,
            "periodicity": one_of("quarterly", "monthly", "quarterly"),
            "as_of": datetime("2026-10-01T02:00:00Z"),
            "periods": match.each_like(
                {
                    "period": match.regex("2026-Q1", regex=r"^\d{4}-(Q[1-4]|\d{2})$"),
                    "declared": match.bool(True),
                    "total": decimal("8450.00"),
                }
            ),
        },
        content_type="application/json",
    )

    unknown = (
        pact.upon_receiving("CAF asks for the turnover of a SIREN URSSAF does not know")
        .given("no self-employed person has this SIREN", siren=UNKNOWN)
        .with_request("GET", f"/api/v2/turnover/{UNKNOWN}")
        .with_query_parameter("from", RANGE[0])
        .with_query_parameter("to", RANGE[1])
    )
    expect_headers(unknown, headers)
    unknown.will_respond_with(404).with_body(
        problem("subject.unknown", 404, "Not found"), content_type="application/problem+json"
    )
    return pact


def test_caf_expectations_are_the_committed_pact(tmp_path: Path) -> None:
    pact = caf_pact()
    with pact.serve() as server:
        with httpx.Client() as http:
            metadata = discover(http, str(server.url))
        assert metadata.token_endpoint.endswith("/oauth/token")
        client = GatewayClient(
            str(server.url),
            auth=StaticBearer(TEST_TOKEN),
            purpose=PROFILE.purpose,
            recipient=PROFILE.recipient,
        )
        with client:
            report = scenario.run(
                client, sirens=[QUARTERLY], from_month=RANGE[0], to_month=RANGE[1]
            )
            missing = api.turnover_by_siren(client, UNKNOWN, from_month=RANGE[0], to_month=RANGE[1])
    assert report.succeeded, report.steps
    assert "by quarter: Q1 8,450.00 €" in report.steps[1].received
    assert missing.problem is not None
    assert missing.problem.code == "subject.unknown"
    publish(pact, tmp_path)
