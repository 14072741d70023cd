"""The gateway keeps every consumer's contract: each committed pact, replayed over HTTP.

The real gateway runs on a loopback port with the four partners registered; the verifier
replays each interaction of a pact with a real access token of that partner (obtained with
``private_key_jwt``), after the provider-states endpoint has written the rows it names.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from live_gateway import LiveGateway, live_gateway
from pact import Verifier
from pact_support import PACT_DIR, PROVIDER
from provider_states import STATES_PATH, ProviderStates

from gateway.database import Database
from gateway.settings import Settings
from mocks.common import PrivateKeyJwt, load_private_key

CONSUMERS = ("caf", "pole-emploi", "cnam", "training-fund")
PACTS = sorted(PACT_DIR.glob("*.json"))

Scope = dict[str, Any]
App = Callable[..., Any]


def token_for(live: LiveGateway, consumer: str) -> str:
    """A real access token of the partner, as its own machine would get it."""
    credentials = live.credentials[consumer]
    auth = PrivateKeyJwt(
        client_id=credentials.client_id,
        key=load_private_key(credentials.key_path),
        token_endpoint=live.url + "/oauth/token",
        scopes=credentials.profile.scopes,
    )
    with httpx.Client() as http:
        response = http.send(auth.token_request())
    response.raise_for_status()
    return str(response.json()["access_token"])


class Gateway:
    """The live gateway with the provider-states layer, optionally altered by ``alter``."""

    def __init__(self, settings: Settings, alter: Callable[[App], App] | None = None) -> None:
        self.settings = settings
        self.alter = alter
        self.states: ProviderStates | None = None
        self.tokens: dict[str, str] = {}

    def wrap(self, app: Any) -> Any:
        self.states = ProviderStates(app, lambda: self.tokens["pole-emploi"])
        return self.alter(self.states) if self.alter else self.states

    def verify(self, live: LiveGateway, pact: Path) -> tuple[bool, str]:
        """Replay the pact; whether it held, and the verifier's report."""
        consumer = json.loads(pact.read_text(encoding="utf-8"))["consumer"]["name"]
        if consumer not in self.tokens:
            self.tokens[consumer] = token_for(live, consumer)
        self.tokens.setdefault("pole-emploi", token_for(live, "pole-emploi"))
        verifier = (
            Verifier(PROVIDER, host="127.0.0.1")
            .add_transport(url=live.url)
            .add_source(pact)
            .state_handler(live.url + STATES_PATH, body=True)
            .add_custom_header("Authorization", f"Bearer {self.tokens[consumer]}")
            .set_coloured_output(enabled=False)
        )
        try:
            verifier.verify()
        except RuntimeError:
            # The verifier raises when an interaction fails; its report says which and why.
            return False, verifier.output(strip_ansi=True)
        return bool(verifier.results["result"]), verifier.output(strip_ansi=True)


@pytest.fixture
def gateway(settings: Settings) -> Gateway:
    return Gateway(settings)


@pytest.fixture
def live(db: Database, gateway: Gateway) -> Iterator[LiveGateway]:
    with live_gateway(gateway.settings, wrap=gateway.wrap) as served:
        yield served


def test_every_consumer_has_a_committed_pact() -> None:
    assert sorted(json.loads(p.read_text())["consumer"]["name"] for p in PACTS) == sorted(CONSUMERS)


@pytest.mark.parametrize("pact", PACTS, ids=[p.stem for p in PACTS])
def test_the_gateway_honours_the_pact(gateway: Gateway, live: LiveGateway, pact: Path) -> None:
    held, report = gateway.verify(live, pact)

    assert held, report
    interactions = json.loads(pact.read_text(encoding="utf-8"))["interactions"]
    assert gateway.states is not None
    named = {state["name"] for i in interactions for state in i.get("providerStates", [])}
    assert set(gateway.states.seen) == named, "a provider state was never set up"


def drop_turnover_totals(app: App) -> App:
    """The gateway as if ``total`` had been removed from turnover v2's periods."""

    async def altered(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/v2/turnover/"):
            await app(scope, receive, send)
            return
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def capture(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            document = json.loads(b"".join(chunks))
            for period in document.get("periods", []):
                period.pop("total", None)
            body = json.dumps(document).encode()
            headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await app(scope, receive, capture)

    return altered


def test_removing_a_field_a_consumer_relies_on_fails_its_pact(settings: Settings) -> None:
    """CAF computes quarterly resources from each period's ``total``: without it, red."""
    gateway = Gateway(settings, alter=drop_turnover_totals)
    with live_gateway(settings, wrap=gateway.wrap) as live:
        held, report = gateway.verify(live, PACT_DIR / "caf-urssaf-gateway.json")

    assert not held
    assert "total" in report
    # Only the interaction that reads turnover broke; the feed still holds.
    assert "CAF reads the status feed from its start" in report


def test_the_pacts_hold_no_real_token_and_no_secret() -> None:
    for pact in PACTS:
        text = pact.read_text(encoding="utf-8")
        assert "consumer-test-token" in text or "Authorization" not in text
        assert "client_assertion" not in text
