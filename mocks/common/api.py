"""The gateway operations the partners call, one function each, with typed answers."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

from mocks.common.client import Answer, GatewayClient
from mocks.common.models import (
    AcreProof,
    CfpBatch,
    Consent,
    FeedEvent,
    FeedPage,
    KeySet,
    Turnover,
)

FEED_PAGE_SIZE = 500
FEED_MAX_PAGES = 200


def status_feed_page(
    client: GatewayClient, *, after: str | None = None, limit: int = 500
) -> Answer[FeedPage]:
    params: dict[str, str | int] = {"limit": limit}
    if after is not None:
        params["after"] = after
    return client.call("GET", "/api/v1/status/events", FeedPage, params=params)


def read_feed(
    client: GatewayClient, *, after: str | None = None, page_size: int = FEED_PAGE_SIZE
) -> tuple[list[FeedEvent], list[Answer[FeedPage]]]:
    """Every event after ``after`` (from the start when None), and the answers that carried
    them; the last answer's ``next_cursor`` is where to resume."""
    events: list[FeedEvent] = []
    answers: list[Answer[FeedPage]] = []
    cursor = after
    for _ in range(FEED_MAX_PAGES):
        answer = status_feed_page(client, after=cursor, limit=page_size)
        answers.append(answer)
        if answer.body is None:
            break
        events.extend(answer.body.events)
        cursor = answer.body.next_cursor
        # A short page is the end of the feed for now.
        if len(answer.body.events) < page_size:
            break
    return events, answers


def feed_answer(answers: Sequence[Answer[FeedPage]]) -> Answer[FeedPage]:
    """The answer that stands for a whole read of the feed: the first that failed, else the
    first page (the request a partner would show)."""
    return next((answer for answer in answers if not answer.ok), answers[0])


def turnover_by_siren(
    client: GatewayClient,
    siren: str,
    *,
    from_month: str,
    to_month: str,
    case_reference: str | None = None,
) -> Answer[Turnover]:
    return client.call(
        "GET",
        f"/api/v2/turnover/{siren}",
        Turnover,
        params={"from": from_month, "to": to_month},
        case_reference=case_reference,
    )


def turnover_by_nir(
    client: GatewayClient,
    nir: str,
    *,
    from_month: str,
    to_month: str,
    purpose: str | None = None,
    case_reference: str | None = None,
) -> Answer[Turnover]:
    """By NIR: the NIR travels in the body, never in the URL."""
    return client.call(
        "POST",
        "/api/v2/turnover/search",
        Turnover,
        json={"nir": nir, "from": from_month, "to": to_month},
        purpose=purpose,
        case_reference=case_reference,
    )


def acre_proof(
    client: GatewayClient, siren: str, *, case_reference: str | None = None
) -> Answer[AcreProof]:
    return client.call(
        "GET", f"/api/v1/acre/proofs/{siren}", AcreProof, case_reference=case_reference
    )


def cfp_batch(
    client: GatewayClient,
    questions: Sequence[tuple[str, int]],
    *,
    idempotency_key: str | None = None,
) -> Answer[CfpBatch]:
    """Up to 10,000 (SIREN, year) questions in one request, safe to retry with the same key."""
    return client.call(
        "POST",
        "/api/v1/cfp/attestations/batch",
        CfpBatch,
        json={"items": [{"siren": siren, "year": year} for siren, year in questions]},
        headers={"Idempotency-Key": idempotency_key or str(uuid.uuid4())},
    )


def record_consent(
    client: GatewayClient,
    *,
    nir: str,
    scopes: Sequence[str],
    purpose: str,
    evidence: str,
    expires_at: dt.datetime,
) -> Answer[Consent]:
    return client.call(
        "POST",
        "/api/v1/consents",
        Consent,
        json={
            "subject": {"nir": nir},
            "scopes": list(scopes),
            "purpose": purpose,
            "evidence": evidence,
            "expires_at": expires_at.isoformat(),
        },
        data_request=False,
    )


def revoke_consent(client: GatewayClient, consent_id: str, *, reason: str) -> Answer[Consent]:
    return client.call(
        "POST",
        f"/api/v1/consents/{consent_id}/revoke",
        Consent,
        json={"reason": reason},
        data_request=False,
    )


def gateway_keys(client: GatewayClient) -> Answer[KeySet]:
    """The gateway's published keys, to verify what it signed."""
    return client.call("GET", "/.well-known/jwks.json", KeySet, data_request=False, anonymous=True)
