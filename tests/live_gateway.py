"""The real gateway over real HTTP on a loopback port, with the mock Pôle emploi beside it.

For the tests that play a partner as it really is: the mock consumers (tests/mocks) and the
verification of their contracts (tests/contracts). The four demo partners are registered,
with their keys under the test's var dir.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI

from gateway.app import create_app
from gateway.database import Database
from gateway.demo.partners import DemoCredentials, key_directory, set_up_partners
from gateway.demo.servers import BackgroundServer, bind
from gateway.reference.seed import seed_reference_data
from gateway.settings import Settings
from mocks import pole_emploi_api

HOST = "127.0.0.1"
# Enough for every story of the demo: the cast is found among the first people of the seed.
SEED_PERSONS = 200
SEED = 2026


@dataclass(frozen=True)
class LiveGateway:
    url: str
    settings: Settings
    app: FastAPI
    credentials: dict[str, DemoCredentials]
    """By partner kind (``caf``, ``pole-emploi``, ``cnam``, ``training-fund``)."""


def seed(db: Database, persons: int = SEED_PERSONS) -> None:
    seed_reference_data(db.sync_engine, persons=persons, seed=SEED)


@contextmanager
def live_gateway(
    settings: Settings, *, wrap: Callable[[FastAPI], Any] | None = None
) -> Iterator[LiveGateway]:
    """Serve the gateway (``wrap`` may put an ASGI layer around it) until the block ends."""
    gateway_socket = bind(HOST, 0)
    mock_socket = bind(HOST, 0)
    url = f"http://{HOST}:{gateway_socket.getsockname()[1]}"
    live = settings.model_copy(
        update={
            "issuer": url,
            "pole_emploi_url": f"http://{HOST}:{mock_socket.getsockname()[1]}",
        }
    )
    db = Database(live.database_url)
    try:
        with db.sync_session.begin() as session:
            credentials = set_up_partners(session, live, key_directory(live))
    finally:
        db.sync_engine.dispose()
    app = create_app(live)
    mock = BackgroundServer(pole_emploi_api.create_app(), mock_socket, name="pole-emploi-mock")
    gateway = BackgroundServer(wrap(app) if wrap else app, gateway_socket, name="gateway")
    with mock, gateway:
        yield LiveGateway(
            url=url,
            settings=live,
            app=app,
            credentials={c.profile.kind: c for c in credentials},
        )
