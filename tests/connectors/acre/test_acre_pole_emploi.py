"""The Pôle emploi client against a faked upstream (respx): tokens, retries, breaker, checks."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import respx
import structlog
from factories import new_nir

from connectors.acre.decision import Criterion, decide
from connectors.acre.pole_emploi import (
    MAX_ANSWER_BYTES,
    SOURCE,
    BreakerState,
    PoleEmploiClient,
)
from connectors.kit import UpstreamBadAnswer, UpstreamTimeout, UpstreamUnavailable

BASE = "https://pole-emploi.example.test"
CLIENT_ID = "gateway"
CLIENT_SECRET = "s3cret-for-tests"
FETCHED_AT = dt.datetime(2026, 7, 15, 12, 0, 5, tzinfo=dt.UTC)
SITUATION = dt.date(2025, 9, 1)


class FakeTime:
    """A monotonic clock and a sleep that only records, so backoffs take no time."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.pauses: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def nir() -> str:
    return new_nir()


@pytest.fixture
def upstream() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        router.post("/oauth/token", name="token").respond(
            200,
            json={
                "access_token": "token-aaaaaaaaaaaaaaaa",
                "token_type": "Bearer",
                "expires_in": 600,
            },
        )
        router.post("/api/v1/job-seekers/status", name="status")
        yield router


def state_of(client: PoleEmploiClient) -> BreakerState:
    # A function call, so the type checker does not carry a narrowed state across awaits.
    return client.breaker.state


def make_client(fake_time: FakeTime, **options: Any) -> PoleEmploiClient:
    settings: dict[str, Any] = {
        "timeout_seconds": 3.0,
        "backoff_seconds": 0.1,
        "clock": fake_time.clock,
        "sleep": fake_time.sleep,
        "now": lambda: FETCHED_AT,
        **options,
    }
    return PoleEmploiClient(BASE, CLIENT_ID, CLIENT_SECRET, **settings)


def answer(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "reference": "PE-0A1B2C3D4E5F",
        "registered": True,
        "registration_months_last_18": 9,
        "benefits": ["ARE"],
        "under_review": False,
        "situation_date": SITUATION.isoformat(),
        "as_of": "2026-07-15T00:00:00Z",
    }
    body.update(changes)
    return body


def ok(body: dict[str, Any]) -> httpx.Response:
    return httpx.Response(200, json=body)


def unknown_person() -> httpx.Response:
    return httpx.Response(
        404,
        json={"title": "Unknown job seeker", "status": 404, "code": "job_seeker.unknown"},
        headers={"Content-Type": "application/problem+json"},
    )


# --- answers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "criterion"),
    [
        ({"benefits": ["ARE"]}, Criterion.UNEMPLOYMENT_BENEFIT_ARE),
        (
            {"benefits": ["ASS"], "registration_months_last_18": 18},
            Criterion.SOLIDARITY_ALLOWANCE_ASS,
        ),
        ({"benefits": [], "registration_months_last_18": 6}, Criterion.JOB_SEEKER_6_OF_18_MONTHS),
        (
            {"benefits": [], "registered": False, "registration_months_last_18": 7},
            Criterion.JOB_SEEKER_6_OF_18_MONTHS,
        ),
        ({"benefits": [], "registration_months_last_18": 5}, None),
        ({"benefits": [], "registered": False, "registration_months_last_18": 0}, None),
    ],
)
async def test_each_answer_gives_its_criterion_and_a_digest_of_the_bytes(
    upstream: respx.MockRouter,
    fake_time: FakeTime,
    nir: str,
    changes: dict[str, Any],
    criterion: Criterion | None,
) -> None:
    raw = json.dumps(answer(**changes)).encode()
    upstream["status"].respond(200, content=raw, headers={"Content-Type": "application/json"})
    async with make_client(fake_time) as client:
        evidence = await client.job_seeker_status(nir, SITUATION)
    assert evidence.status is not None
    assert decide(evidence.status).criterion == criterion
    assert evidence.digest == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert evidence.reference == "PE-0A1B2C3D4E5F"
    assert evidence.source == SOURCE
    assert evidence.fetched_at == FETCHED_AT


async def test_under_review_is_pending(
    upstream: respx.MockRouter, fake_time: FakeTime, nir: str
) -> None:
    upstream["status"].mock(return_value=ok(answer(under_review=True, benefits=[])))
    async with make_client(fake_time) as client:
        evidence = await client.job_seeker_status(nir, SITUATION)
    assert decide(evidence.status).decision == "pending"


async def test_unknown_person_is_an_answer_with_evidence(
    upstream: respx.MockRouter, fake_time: FakeTime, nir: str
) -> None:
    upstream["status"].mock(return_value=unknown_person())
    async with make_client(fake_time) as client:
        evidence = await client.job_seeker_status(nir, SITUATION)
    assert evidence.status is None
    assert evidence.reference is None
    sent = upstream["status"].calls.last.response.content
    assert evidence.digest == "sha256:" + hashlib.sha256(sent).hexdigest()
    assert decide(evidence.status).decision == "refused"


async def test_a_404_without_the_contract_code_is_not_an_unknown_person(
    upstream: respx.MockRouter, fake_time: FakeTime, nir: str
) -> None:
    # A wrong base URL also gives 404: refusing ACRE on it would be a silent wrong decision.
    upstream["status"].respond(404, json={"detail": "Not Found"})
    async with make_client(fake_time) as client:
        with pytest.raises(UpstreamBadAnswer) as caught:
            await client.job_seeker_status(nir, SITUATION)
    assert caught.value.code == "upstream.bad_answer"
    assert caught.value.status == 502


# --- what is sent ----------------------------------------------------------------------------


async def test_nir_travels_in_the_body_with_a_bearer_token_from_client_credentials(
    upstream: respx.MockRouter, fake_time: FakeTime, nir: str
) -> None:
    upstream["status"].mock(return_value=ok(answer()))
    async with make_client(fake_time) as client:
        await client.job_seeker_status(nir, SITUATION)

    token_request = upstream["token"].calls.last.request
    expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    assert token_request.headers["Authorization"] == f"Basic {expected}"
    assert parse_qs(token_request.content.decode()) == {"grant_type": ["client_credentials"]}

    status_request = upstream["status"].calls.last.request
    assert status_request.headers["Authorization"] == "Bearer token-aaaaaaaaaaaaaaaa"
    assert json.loads(status_request.content) == {"nir": nir, "situation_date": "2025-09-01"}
    assert nir not in str(status_request.url)
    assert nir not in str(token_request.url)
    assert status_request.headers["Accept-Encoding"] == "identity"


async def test_token_is_reused_until_it_nearly_expires(
    upstream: respx.MockRouter, fake_time: FakeTime, nir: str
) -> None:
    upstream["status"].mock(return_value=ok(answer()))
    async with make_client(fake_time) as client:
        await client.job_seeker_status(nir, SITUATION)
        fake_time.now += 500
        await client.job_seeker_status(nir, SITUATION)
        assert upstream["token"].call_count == 1
        # 600 s tokens are renewed 30 s early, so one in flight never expires on the way.
        fake_time.now += 75
        await client.job_seeker_status(nir, SITUATION)
    assert upstream["token"].call_count == 2
    assert upstream["status"].call_count == 3


async def test_concurrent_calls_share_one_token_request(
    upstream: respx.MockRouter, fake_time: FakeTime, nir: str
) -> None:
    upstream["status"].mock(return_value=ok(answer()))
    async with make_client(fake_time) as client:
        await asyncio.gather(*(client.job_seeker_status(nir, SITUATION) for _ in range(5)))
    assert upstream["token"].call_count == 1


async def test_a_token_rejected_early_is_fetched_again_once(
    upstream: respx.MockRouter, fake_time: FakeTime, nir: str
) -> None:
    upstream["status"].side_effect = [httpx.Response(401), ok(answer())]
    async with make_client(fake_time) as client:
        evidence = await client.job_seeker_status(nir, SITUATION)
    assert evidence.status is not None
    assert upstream["token"].call_count == 2


async def test_a_token_rejected_twice_is_unavailable_without_retry_loops(
    upstream: respx.MockRouter, fake_time: FakeTime, nir: str
) -> None:
    upstream["status"].respond(401)
    async with make_client(fake_time) as client:
        with pytest.raises(UpstreamUnavailable) as caught:
            await client.job_seeker_status(nir, SITUATION)
    assert caught.value.code == "upstream.unavailable"
    assert upstream["status"].call_count == 2
    assert fake_time.pauses == []


async def test_refused_credentials_are_unavailable_and_not_retried(
    upstream: respx.MockRouter, fake_time: FakeTime, nir: str
) -> None:
    upstream["token"].respond(401, json={"error": "invalid_client"})
    async with make_client(fake_time) as client:
        with pytest.raises(UpstreamUnavailable) as caught:
            await client.job_seeker_status(nir, SITUATION)
        assert state_of(client) is BreakerState.CLOSED
    assert caught.value.code == "upstream.unavailable"
    assert upstream["token"].call_count == 1
    assert upstream["status"].call_count == 0


async def test_a_malformed_token_answer_is_a_bad_answer(
    upstream: respx.MockRouter, fake_time: FakeTime, nir: str
) -> None:
    upstream["token"].respond(
        200, json={"access_token": "x", "token_type": "mac", "expires_in": 60}
    )
    async with make_client(fake_time) as client:
        with pytest.raises(UpstreamBadAnswer):
            await client.job_seeker_status(nir, SITUATION)
    assert upstream["status"].call_count == 0


class _HugeBody(httpx.AsyncByteStream):
    """A body of 16 MiB, counting what the client read of it."""

    chunk = b"[" * 4096

    def __init__(self) -> None:
        self.read = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(4096):
            self.read += len(self.chunk)
            yield self.chunk


@pytest.mark.parametrize("route", ["status", "token"])
async def test_an_answer_beyond_the_cap_is_a_bad_answer_read_no_further_than_the_cap(
    upstream: respx.MockRouter, fake_time: FakeTime, nir: str, route: str
) -> None:
    body = _HugeBody()
    upstream[route].mock(
        return_value=httpx.Response(200, headers={"Content-Type": "application/json"}, stream=body)
    )
    async with make_client(fake_time) as client:
        with pytest.raises(UpstreamBadAnswer):
            await client.job_seeker_status(nir, SITUATION)
    assert MAX_ANSWER_BYTES < body.read <= MAX_ANSWER_BYTES + len(body.chunk)


async def test_an_absurd_token_lifetime_is_used_for_a_day_at_most(
    upstream: respx.MockRouter, fake_time: FakeTime, nir: str
) -> None:
    lifetime = "9" * 400  # a valid JSON integer, beyond what a float holds
    upstream["token"].respond(
        200,
        content=f'{{"access_token": "t", "token_type": "Bearer", "expires_in": {lifetime}}}',
        headers={"Content-Type": "application/json"},
    )
    upstream["status"].mock(return_value=ok(answer()))
    async with make_client(fake_time) as client:
        await client.job_seeker_status(nir, SITUATION)
        fake_time.now += 86_400
        await client.job_seeker_status(nir, SITUATION)
    assert upstream["token"].call_count == 2


# --- retries ---------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 403, 405, 409, 422])
async def test_client_errors_are_never_retried(
    upstream: respx.MockRouter, fake_time: FakeTime, nir: str, status: int
) -> None:
    upstream["status"].respond(status, json={"code": "whatever"})
    async with make_client(fake_time) as client:
        with pytest.raises((UpstreamBadAnswer, UpstreamUnavailable)) as caught:
            await client.job_seeker_status(nir, SITUATION)
    assert caught.value.status in (502, 503)
    assert upstream["status"].call_count == 1
    assert fake_time.pauses == []


async def test_rate_limited_is_unavailable_and_not_retried(
    upstream: respx.MockRouter, fake_time: FakeTime, nir: str
) -> None:
    upstream["status"].respond(429, headers={"Retry-After": "30"})
    async with make_client(fake_time) as client:
        with pytest.raises(UpstreamUnavailable) as caught:
            await client.job_seeker_status(nir, SITUATION)
    assert caught.value.code == "upstream.unavailable"
    assert upstream["status"].call_count == 1


async def test_server_error_then_success_is_retried_after_a_pause(
    upstream: respx.MockRouter, fake_time: FakeTime, nir: str
) -> None:
    upstream["status"].side_effect = [httpx.Response(503), ok(answer())]
    async with make_client(fake_time) as client:
        evidence = await client.job_seeker_status(nir, SITUATION)
    assert evidence.status is not None
    assert upstream["status"].call_count == 2
    assert len(fake_time.pauses) == 1
    assert 0.05 <= fake_time.pauses[0] <= 0.1


async def test_server_errors_give_up_after_two_retries_with_growing_pauses(
    upstream: respx.MockRouter, fake_time: FakeTime, nir: str
) -> None:
    upstream["status"].respond(502)
    async with make_client(fake_time) as client:
        with pytest.raises(UpstreamUnavailable) as caught:
            await client.job_seeker_status(nir, SITUATION)
    assert caught.value.code == "upstream.unavailable"
    assert caught.value.status == 503
    assert upstream["status"].call_count == 3
    first, second = fake_time.pauses
    assert 0.05 <= first <= 0.1
    assert 0.1 <= second <= 0.2


async def test_timeouts_give_up_as_upstream_timeout(
    upstream: respx.MockRouter, fake_time: FakeTime, nir: str
) -> None:
    upstream["status"].side_effect = httpx.ReadTimeout("slow")
    async with make_client(fake_time) as client:
        with pytest.raises(UpstreamTimeout) as caught:
            await client.job_seeker_status(nir, SITUATION)
    assert caught.value.code == "upstream.timeout"
    assert caught.value.status == 504
    assert upstream["status"].call_count == 3


async def test_a_timeout_then_an_answer_succeeds(
    upstream: respx.MockRouter, fake_time: FakeTime, nir: str
) -> None:
    upstream["status"].side_effect = [httpx.ConnectTimeout("slow"), ok(answer())]
    async with make_client(fake_time) as client:
        evidence = await client.job_seeker_status(nir, SITUATION)
    assert evidence.status is not None


async def test_network_errors_are_retried_then_unavailable(
    upstream: respx.MockRouter, fake_time: FakeTime, nir: str
) -> None:
    upstream["status"].side_effect = httpx.ConnectError("refused")
    async with make_client(fake_time) as client:
        with pytest.raises(UpstreamUnavailable) as caught:
            await client.job_seeker_status(nir, SITUATION)
    assert caught.value.code == "upstream.unavailable"
    assert upstream["status"].call_count == 3


async def test_a_trickling_upstream_is_cut_at_the_deadline(
    upstream: respx.MockRouter, fake_time: FakeTime, nir: str
) -> None:
    started: list[httpx.Request] = []

    async def trickle(request: httpx.Request) -> httpx.Response:
        started.append(request)
        await asyncio.sleep(5)
        return ok(answer())

    upstream["status"].side_effect = trickle
    async with make_client(fake_time, timeout_seconds=0.05, max_retries=1) as client:
        with pytest.raises(UpstreamTimeout):
            await client.job_seeker_status(nir, SITUATION)
    assert len(started) == 2


# --- malformed answers -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"registered": True},
        answer(registered="true"),
        answer(registration_months_last_18="9"),
        answer(registration_months_last_18=19),
        answer(registration_months_last_18=-1),
        answer(benefits=["RSA"]),
        answer(benefits=["ARE", "ARE"]),
        answer(benefits="ARE"),
        answer(under_review=None),
        answer(reference=""),
        answer(reference="PE-1 OR 1=1"),
        answer(as_of="2026-07-15T00:00:00"),
        answer(as_of="yesterday"),
        answer(situation_date="01/09/2025"),
        [answer()],
    ],
)
async def test_malformed_answers_are_rejected_not_retried(
    upstream: respx.MockRouter, fake_time: FakeTime, nir: str, body: Any
) -> None:
    upstream["status"].respond(200, json=body)
    async with make_client(fake_time) as client:
        with pytest.raises(UpstreamBadAnswer) as caught:
            await client.job_seeker_status(nir, SITUATION)
    assert caught.value.code == "upstream.bad_answer"
    assert upstream["status"].call_count == 1


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(
            200, content=b"<html>maintenance</html>", headers={"Content-Type": "text/html"}
        ),
        httpx.Response(200, content=b"{not json", headers={"Content-Type": "application/json"}),
        httpx.Response(200, content=b"", headers={"Content-Type": "application/json"}),
        httpx.Response(
            200,
            content=b'{"pad":"' + b"x" * 70_000 + b'"}',
            headers={"Content-Type": "application/json"},
        ),
        httpx.Response(302, headers={"Location": "https://elsewhere.test/login"}),
    ],
)
async def test_answers_that_are_not_the_contract_json_are_rejected(
    upstream: respx.MockRouter, fake_time: FakeTime, nir: str, response: httpx.Response
) -> None:
    upstream["status"].mock(return_value=response)
    async with make_client(fake_time) as client:
        with pytest.raises(UpstreamBadAnswer):
            await client.job_seeker_status(nir, SITUATION)


async def test_unknown_fields_are_tolerated(
    upstream: respx.MockRouter, fake_time: FakeTime, nir: str
) -> None:
    upstream["status"].mock(return_value=ok(answer(agency="Paris 11")))
    async with make_client(fake_time) as client:
        evidence = await client.job_seeker_status(nir, SITUATION)
    assert evidence.status is not None


# --- circuit breaker -------------------------------------------------------------------------


async def test_breaker_opens_then_half_opens_then_closes(
    upstream: respx.MockRouter, fake_time: FakeTime, nir: str
) -> None:
    upstream["status"].respond(503)
    client = make_client(
        fake_time, max_retries=0, breaker_failure_threshold=2, breaker_cooldown_seconds=30
    )
    async with client:
        for _ in range(2):
            with pytest.raises(UpstreamUnavailable):
                await client.job_seeker_status(nir, SITUATION)
        assert state_of(client) is BreakerState.OPEN

        # Open: fail at once, Pôle emploi is not called.
        with pytest.raises(UpstreamUnavailable) as caught:
            await client.job_seeker_status(nir, SITUATION)
        assert caught.value.code == "upstream.circuit_open"
        assert caught.value.status == 503
        assert upstream["status"].call_count == 2

        # After the cool-down, one trial; it fails, so the breaker opens again.
        fake_time.now += 30
        assert state_of(client) is BreakerState.HALF_OPEN
        with pytest.raises(UpstreamUnavailable) as caught:
            await client.job_seeker_status(nir, SITUATION)
        assert caught.value.code == "upstream.unavailable"
        assert upstream["status"].call_count == 3
        assert state_of(client) is BreakerState.OPEN
        with pytest.raises(UpstreamUnavailable) as caught:
            await client.job_seeker_status(nir, SITUATION)
        assert caught.value.code == "upstream.circuit_open"

        # Next cool-down: the trial succeeds and the breaker closes.
        upstream["status"].mock(return_value=ok(answer()))
        fake_time.now += 30
        evidence = await client.job_seeker_status(nir, SITUATION)
        assert evidence.status is not None
        assert state_of(client) is BreakerState.CLOSED
        await client.job_seeker_status(nir, SITUATION)
    assert upstream["status"].call_count == 5


async def test_breaker_counts_failed_attempts_including_retries(
    upstream: respx.MockRouter, fake_time: FakeTime, nir: str
) -> None:
    upstream["status"].side_effect = httpx.ReadTimeout("slow")
    client = make_client(fake_time, max_retries=2, breaker_failure_threshold=2)
    async with client:
        with pytest.raises(UpstreamUnavailable) as caught:
            await client.job_seeker_status(nir, SITUATION)
    # The second failed attempt opened the breaker, so the third was never sent.
    assert caught.value.code == "upstream.circuit_open"
    assert upstream["status"].call_count == 2


async def test_half_open_lets_a_single_trial_through(
    upstream: respx.MockRouter, fake_time: FakeTime, nir: str
) -> None:
    release = asyncio.Event()

    async def slow_success(request: httpx.Request) -> httpx.Response:
        await release.wait()
        return ok(answer())

    client = make_client(
        fake_time, max_retries=0, breaker_failure_threshold=1, breaker_cooldown_seconds=10
    )
    async with client:
        upstream["status"].respond(500)
        with pytest.raises(UpstreamUnavailable):
            await client.job_seeker_status(nir, SITUATION)
        fake_time.now += 10
        upstream["status"].side_effect = slow_success
        trial = asyncio.create_task(client.job_seeker_status(nir, SITUATION))
        await asyncio.sleep(0.01)
        with pytest.raises(UpstreamUnavailable) as caught:
            await client.job_seeker_status(nir, SITUATION)
        assert caught.value.code == "upstream.circuit_open"
        release.set()
        assert (await trial).status is not None
        assert state_of(client) is BreakerState.CLOSED


async def test_a_cancelled_trial_frees_the_half_open_slot(
    upstream: respx.MockRouter, fake_time: FakeTime, nir: str
) -> None:
    async def hang(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(60)
        return ok(answer())

    client = make_client(
        fake_time, max_retries=0, breaker_failure_threshold=1, breaker_cooldown_seconds=10
    )
    async with client:
        upstream["status"].respond(500)
        with pytest.raises(UpstreamUnavailable):
            await client.job_seeker_status(nir, SITUATION)
        fake_time.now += 10
        upstream["status"].side_effect = hang
        trial = asyncio.create_task(client.job_seeker_status(nir, SITUATION))
        await asyncio.sleep(0.01)
        trial.cancel()
        with pytest.raises(asyncio.CancelledError):
            await trial
        upstream["status"].side_effect = None
        upstream["status"].mock(return_value=ok(answer()))
        assert (await client.job_seeker_status(nir, SITUATION)).status is not None


async def test_client_errors_and_unknown_people_do_not_open_the_breaker(
    upstream: respx.MockRouter, fake_time: FakeTime, nir: str
) -> None:
    client = make_client(fake_time, breaker_failure_threshold=2)
    async with client:
        upstream["status"].respond(400, json={})
        for _ in range(3):
            with pytest.raises(UpstreamBadAnswer):
                await client.job_seeker_status(nir, SITUATION)
        upstream["status"].mock(return_value=unknown_person())
        for _ in range(3):
            await client.job_seeker_status(nir, SITUATION)
        assert state_of(client) is BreakerState.CLOSED


async def test_malformed_answers_count_as_failures(
    upstream: respx.MockRouter, fake_time: FakeTime, nir: str
) -> None:
    upstream["status"].respond(200, json={"nonsense": True})
    client = make_client(fake_time, breaker_failure_threshold=2)
    async with client:
        for _ in range(2):
            with pytest.raises(UpstreamBadAnswer):
                await client.job_seeker_status(nir, SITUATION)
        assert state_of(client) is BreakerState.OPEN


# --- personal data ---------------------------------------------------------------------------


async def test_the_nir_never_reaches_the_logs(
    upstream: respx.MockRouter, fake_time: FakeTime, nir: str
) -> None:
    upstream["status"].side_effect = [
        httpx.Response(503),
        httpx.ReadTimeout("slow"),
        httpx.Response(200, json=answer(registered=nir)),
    ]
    with structlog.testing.capture_logs() as logs:
        async with make_client(fake_time) as client:
            with pytest.raises(UpstreamBadAnswer):
                await client.job_seeker_status(nir, SITUATION)
    events = [entry["event"] for entry in logs]
    assert "pole_emploi_retry" in events
    assert "pole_emploi_bad_answer" in events
    assert nir not in repr(logs)
    assert CLIENT_SECRET not in repr(logs)


def test_the_secret_does_not_show_in_the_client() -> None:
    client = PoleEmploiClient(BASE, CLIENT_ID, CLIENT_SECRET)
    assert CLIENT_SECRET not in repr(vars(client))


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="timeout"):
        PoleEmploiClient(BASE, CLIENT_ID, CLIENT_SECRET, timeout_seconds=0)
    with pytest.raises(ValueError, match="threshold"):
        PoleEmploiClient(BASE, CLIENT_ID, CLIENT_SECRET, breaker_failure_threshold=0)
