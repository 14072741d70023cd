"""The provider states the consumers' pacts name, and the endpoint that sets them up.

The endpoint exists only in the contract tests: it is an ASGI layer put around the real
gateway by the test, never part of the application. The verifier calls it before each
interaction with ``{"state": ..., "params": ..., "action": "setup"}``; it writes the rows the
interaction needs and answers the values the pact injects (a consent's id, say).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import httpx
from factories import (
    create_account,
    create_acre_decision,
    create_cfp_payment,
    create_declaration,
    create_ingestion_run,
    create_status_event,
)
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.types import Receive, Scope, Send

from gateway.database import Database, utcnow
from gateway.reference.models import Account, IngestionRun, StatusEvent

STATES_PATH = "/_pact/provider-states"
DATASETS = ("accounts", "status-events", "turnover", "cfp")
MONTHS = ("2026-04", "2026-05", "2026-06", "2026-07", "2026-08", "2026-09")
QUARTERS = ("2026-Q1", "2026-Q2", "2026-Q3")


class UnknownStateError(LookupError):
    """A pact names a state no handler sets up: the verification must fail, not guess."""


def _ingested(session: Session) -> None:
    """Every dataset loaded once, so that each answer carries an ``as_of``."""
    if session.scalar(select(func.count()).select_from(IngestionRun)):
        return
    for dataset in DATASETS:
        create_ingestion_run(session, dataset, dt.datetime(2026, 10, 1, 2, tzinfo=dt.UTC))


def _account(session: Session, *, siren: str | None = None, nir: str | None = None) -> Account:
    column, value = (Account.siren, siren) if siren else (Account.nir, nir)
    found = session.scalar(select(Account).where(column == value))
    return found or create_account(
        session, siren=siren, nir=nir, affiliation_date=dt.date(2024, 1, 8)
    )


def _declaring_monthly(session: Session, nir: str) -> None:
    account = _account(session, nir=nir)
    for month in MONTHS:
        create_declaration(session, account, month, services_bic="1530.00")


def status_feed(session: Session, params: dict[str, Any]) -> None:
    if session.scalar(select(func.count()).select_from(StatusEvent)):
        return
    first = create_account(session, affiliation_date=dt.date(2026, 3, 1))
    create_status_event(session, first, "affiliation", dt.date(2026, 3, 1), detail="micro")
    second = create_account(session, affiliation_date=dt.date(2021, 1, 4))
    create_status_event(session, second, "affiliation", dt.date(2021, 1, 4), detail="micro")
    create_status_event(
        session, second, "radiation", dt.date(2026, 6, 30), detail="cessation d'activité"
    )


def declares_quarterly(session: Session, params: dict[str, Any]) -> None:
    account = _account(session, siren=params["siren"])
    for quarter in QUARTERS:
        create_declaration(session, account, quarter, sales_bic="8000.00", services_bic="450.00")


def declares_monthly(session: Session, params: dict[str, Any]) -> None:
    _declaring_monthly(session, params["nir"])


def unknown_siren(session: Session, params: dict[str, Any]) -> None:
    assert session.scalar(select(Account.id).where(Account.siren == params["siren"])) is None


def granted_acre(session: Session, params: dict[str, Any]) -> None:
    account = _account(session, siren=params["siren"])
    create_acre_decision(
        session,
        account,
        utcnow(),
        exemption_start_date=account.affiliation_date,
        exemption_end_date=account.affiliation_date.replace(year=account.affiliation_date.year + 1)
        - dt.timedelta(days=1),
    )


def paid_cfp(session: Session, params: dict[str, Any]) -> None:
    account = _account(session, siren=params["siren"])
    create_cfp_payment(
        session,
        account,
        year=int(params["year"]),
        base="48250.00",
        rate="0.300",
        amount_due="144.75",
        payment_date=dt.date(int(params["year"]) + 1, 2, 25),
        fund="FAFCEA",
    )


SEEDS: dict[str, Callable[[Session, dict[str, Any]], None]] = {
    "the status feed holds events": status_feed,
    "a micro-entrepreneur declares quarterly": declares_quarterly,
    "a micro-entrepreneur declares monthly": declares_monthly,
    "no self-employed person has this SIREN": unknown_siren,
    "a business creator was granted ACRE": granted_acre,
    "a person gave Pôle emploi no consent": declares_monthly,
    "a person consented to Pôle emploi's support": declares_monthly,
    "Pôle emploi recorded a person's consent": declares_monthly,
    "a craftsman paid the CFP of a year": paid_cfp,
}
# States where Pôle emploi's consent is recorded, through the consent API itself.
CONSENTING = {
    "a person consented to Pôle emploi's support",
    "Pôle emploi recorded a person's consent",
}


class ProviderStates:
    """The gateway app with the provider-states endpoint in front of it."""

    def __init__(self, app: FastAPI, consent_token: Callable[[], str]) -> None:
        self.app = app
        self._consent_token = consent_token
        self.seen: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == STATES_PATH:
            await self._state(receive, send)
        else:
            await self.app(scope, receive, send)

    async def _state(self, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        change = json.loads(body)
        status, answer = 200, {}
        try:
            answer = await self.set_up(change["state"], change.get("params") or {})
        except (UnknownStateError, AssertionError, httpx.HTTPError) as exc:
            status, answer = 500, {"error": f"{type(exc).__name__}: {exc}"}
        payload = json.dumps(answer).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    async def set_up(self, state: str, params: dict[str, Any]) -> dict[str, Any]:
        if not state:
            # The verifier's call for an interaction that names no state.
            return {}
        seed = SEEDS.get(state)
        if seed is None:
            raise UnknownStateError(state)
        self.seen.append(state)
        db: Database = self.app.state.db

        def write() -> None:
            with db.sync_session.begin() as session:
                _ingested(session)
                seed(session, params)

        await asyncio.to_thread(write)
        if state not in CONSENTING:
            return {}
        return {"consentId": await self._record_consent(params["nir"])}

    async def _record_consent(self, nir: str) -> str:
        # Through the gateway's own API, in process: a consent is what the API makes it.
        transport = httpx.ASGITransport(app=self.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
            response = await http.post(
                "/api/v1/consents",
                headers={"Authorization": f"Bearer {self._consent_token()}"},
                json={
                    "subject": {"nir": nir},
                    "scopes": ["turnover:read"],
                    "purpose": "accompagnement-createur",
                    "evidence": "Signed consent form (provider state)",
                    "expires_at": (utcnow() + dt.timedelta(days=30)).isoformat(),
                },
            )
        response.raise_for_status()
        return str(response.json()["id"])
