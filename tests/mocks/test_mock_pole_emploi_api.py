"""The mock Pôle emploi API keeps the contract the ACRE connector relies on."""

from __future__ import annotations

import ast
import collections
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from factories import ManualClock, new_nir
from hypothesis import given
from hypothesis import strategies as st

import mocks.pole_emploi_api
from gateway.identifiers import InvalidIdentifierError, nir_with_key, parse_nir
from mocks.pole_emploi_api import create_app
from mocks.pole_emploi_api.__main__ import main
from mocks.pole_emploi_api.app import job_seeker_answer, nir_is_valid

CLIENT_ID = "fund-tests"
CLIENT_SECRET = "mock-secret-for-tests"
STATUS = "/api/v1/job-seekers/status"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def mock_api(clock: ManualClock) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, token_ttl_seconds=60, clock=clock
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://pole-emploi") as http:
        yield http


async def token(http: httpx.AsyncClient) -> str:
    response = await http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(CLIENT_ID, CLIENT_SECRET),
    )
    assert response.status_code == 200
    value: str = response.json()["access_token"]
    return value


async def ask(http: httpx.AsyncClient, bearer: str, nir: str, **extra: Any) -> httpx.Response:
    return await http.post(
        STATUS,
        json={"nir": nir, "situation_date": "2025-09-01", **extra},
        headers={"Authorization": f"Bearer {bearer}"},
    )


def nir_in_bucket(low: int, high: int) -> str:
    """A valid NIR whose mock answer falls in buckets ``low``..``high``."""
    for serial in range(10_000):
        nir = nir_with_key(f"2840631{serial:06d}")
        answer = job_seeker_answer(nir, dt.date(2025, 9, 1), dt.datetime.now(dt.UTC))
        bucket = _bucket(answer)
        if low <= bucket <= high:
            return nir
    raise AssertionError("no NIR found")


def _bucket(answer: dict[str, Any]) -> int:
    # Classifies an answer back into the documented bucket ranges.
    if not answer:
        return 95
    if answer["benefits"] == ["ARE"]:
        return 0
    if answer["benefits"] == ["ASS"]:
        return 45
    if answer["under_review"]:
        return 75
    if answer["registration_months_last_18"] >= 6:
        return 60
    return 85


# --- tokens ----------------------------------------------------------------------------------


async def test_client_credentials_give_a_bearer_token(mock_api: httpx.AsyncClient) -> None:
    response = await mock_api.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(CLIENT_ID, CLIENT_SECRET),
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 60
    assert len(body["access_token"]) >= 32
    assert response.headers["cache-control"] == "no-store"


async def test_credentials_in_the_form_are_accepted(mock_api: httpx.AsyncClient) -> None:
    response = await mock_api.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        },
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("auth", "form", "status", "error"),
    [
        ((CLIENT_ID, "wrong"), {"grant_type": "client_credentials"}, 401, "invalid_client"),
        (("someone", CLIENT_SECRET), {"grant_type": "client_credentials"}, 401, "invalid_client"),
        (None, {"grant_type": "client_credentials"}, 401, "invalid_client"),
        ((CLIENT_ID, CLIENT_SECRET), {"grant_type": "password"}, 400, "unsupported_grant_type"),
        ((CLIENT_ID, CLIENT_SECRET), {}, 400, "invalid_request"),
    ],
)
async def test_token_endpoint_refusals(
    mock_api: httpx.AsyncClient,
    auth: tuple[str, str] | None,
    form: dict[str, str],
    status: int,
    error: str,
) -> None:
    if auth is None:
        response = await mock_api.post("/oauth/token", data=form)
    else:
        response = await mock_api.post("/oauth/token", data=form, auth=auth)
    assert response.status_code == status
    assert response.json() == {"error": error}


async def test_status_without_a_valid_token_is_401(
    mock_api: httpx.AsyncClient, clock: ManualClock
) -> None:
    nir = new_nir()
    missing = await mock_api.post(STATUS, json={"nir": nir, "situation_date": "2025-09-01"})
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    forged = await ask(mock_api, "A" * 43, nir)
    assert forged.status_code == 401
    valid = await token(mock_api)
    assert (await ask(mock_api, valid, nir)).status_code in (200, 404)
    clock.now += 61
    assert (await ask(mock_api, valid, nir)).status_code == 401


async def test_authentication_comes_before_the_body(mock_api: httpx.AsyncClient) -> None:
    # An unauthenticated caller must not learn anything, not even whether a NIR is valid.
    response = await mock_api.post(STATUS, json={"nir": "not a nir"})
    assert response.status_code == 401


# --- answers ---------------------------------------------------------------------------------


async def test_answers_follow_the_documented_contract(mock_api: httpx.AsyncClient) -> None:
    bearer = await token(mock_api)
    nir = nir_in_bucket(0, 39)
    response = await ask(mock_api, bearer, nir)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {
        "reference",
        "registered",
        "registration_months_last_18",
        "benefits",
        "under_review",
        "situation_date",
        "as_of",
    }
    assert body["reference"].startswith("PE-")
    assert body["benefits"] == ["ARE"]
    assert body["registered"] is True
    assert 6 <= body["registration_months_last_18"] <= 18
    assert body["situation_date"] == "2025-09-01"
    assert body["as_of"].endswith("T00:00:00Z")


async def test_answers_are_deterministic(mock_api: httpx.AsyncClient) -> None:
    bearer = await token(mock_api)
    nir = new_nir()
    first = await ask(mock_api, bearer, nir)
    again = await ask(mock_api, bearer, nir)
    assert first.status_code == again.status_code
    assert first.content == again.content


async def test_unknown_people_get_the_contract_404(mock_api: httpx.AsyncClient) -> None:
    bearer = await token(mock_api)
    response = await ask(mock_api, bearer, nir_in_bucket(90, 99))
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "job_seeker.unknown"


def test_seeded_people_get_a_mix_close_to_the_documented_shares() -> None:
    # Seeded persons must exercise every decision: a skewed hash would hide a whole branch.
    counts: collections.Counter[int] = collections.Counter()
    total = 4000
    for serial in range(total):
        nir = nir_with_key(f"1850175{serial:06d}")
        counts[_bucket(job_seeker_answer(nir, dt.date(2025, 1, 1), dt.datetime.now(dt.UTC)))] += 1
    shares = {bucket: count / total for bucket, count in counts.items()}
    expected = {0: 0.40, 45: 0.10, 60: 0.20, 75: 0.10, 85: 0.10, 95: 0.10}
    for bucket, share in expected.items():
        assert abs(shares[bucket] - share) < 0.03, (bucket, shares)


@pytest.mark.parametrize(
    "nir",
    [
        "185017512345600",  # wrong key
        "18501751234567",  # 14 characters
        "985017512345678",  # sex digit 9
        "1850175123456AB",
        "",
    ],
)
async def test_invalid_nir_is_422_without_echo(mock_api: httpx.AsyncClient, nir: str) -> None:
    bearer = await token(mock_api)
    response = await ask(mock_api, bearer, nir)
    assert response.status_code == 422
    assert response.json()["code"] in ("nir.invalid", "request.invalid")
    if nir:
        assert nir not in response.text


@pytest.mark.parametrize(
    "body",
    [
        {"nir": "185017512345678"},
        {"nir": 185017512345678, "situation_date": "2025-09-01"},
        {"nir": "1", "situation_date": "2025-13-01"},
        {"nir": "1", "situation_date": "2025-09-01", "surname": "Martin"},
        [],
    ],
)
async def test_malformed_bodies_are_422(mock_api: httpx.AsyncClient, body: Any) -> None:
    bearer = await token(mock_api)
    response = await mock_api.post(STATUS, json=body, headers={"Authorization": f"Bearer {bearer}"})
    assert response.status_code == 422
    assert response.json()["code"] == "request.invalid"
    assert "185017512345678" not in response.text


async def test_not_json_is_422(mock_api: httpx.AsyncClient) -> None:
    bearer = await token(mock_api)
    response = await mock_api.post(
        STATUS, content=b"nir=1", headers={"Authorization": f"Bearer {bearer}"}
    )
    assert response.status_code == 422


@given(
    body=st.from_regex(r"[1-478][0-9]{2}(0[1-9]|1[0-2])([0-9]{2}|2[AB])[0-9]{6}", fullmatch=True),
    key=st.integers(min_value=0, max_value=99),
)
def test_the_mock_checks_nir_keys_as_the_gateway_does(body: str, key: int) -> None:
    # The mock keeps its own copy of the key rule; the two must agree on every valid NIR.
    candidate = f"{body}{key:02d}"
    try:
        parse_nir(candidate)
    except InvalidIdentifierError:
        assert not nir_is_valid(candidate)
    else:
        assert nir_is_valid(candidate)
    assert nir_is_valid(nir_with_key(body))


def test_the_mock_imports_nothing_of_ours() -> None:
    # An outside partner: if it imported the gateway, it would check nothing independently.
    package = Path(mocks.pole_emploi_api.__file__).parent
    for source in package.glob("*.py"):
        tree = ast.parse(source.read_text())
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in ("gateway", "connectors"), (source, name)


def test_command_line_runs_uvicorn_on_the_given_port(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []

    def fake_run(app: Any, **options: Any) -> None:
        calls.append({"app": app, **options})

    monkeypatch.setattr("mocks.pole_emploi_api.__main__.uvicorn.run", fake_run)
    main(["--port", "8111", "--host", "127.0.0.1"])
    assert calls[0]["port"] == 8111
    assert calls[0]["host"] == "127.0.0.1"
    assert calls[0]["app"].title.startswith("Pôle emploi")


async def test_demo_credentials_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("POLE_EMPLOI_MOCK_CLIENT_ID", "from-env")
    monkeypatch.setenv("POLE_EMPLOI_MOCK_CLIENT_SECRET", "env-secret")
    transport = httpx.ASGITransport(app=create_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://pe") as http:
        form = {"grant_type": "client_credentials"}
        accepted = await http.post("/oauth/token", data=form, auth=("from-env", "env-secret"))
        default = await http.post(
            "/oauth/token", data=form, auth=("gateway-demo", "gateway-demo-secret")
        )
    assert accepted.status_code == 200
    assert default.status_code == 401
