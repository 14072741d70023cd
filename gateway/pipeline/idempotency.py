"""``Idempotency-Key`` on POST operations: the same request, retried, gets the same answer.

The answer is replayed from the database (several gateway processes share it), not computed
again, so a retried batch is not a second disclosure: its audit record says it was a replay and
names no subject. The same key with another body is refused (422). Records live one day.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass

from fastapi import Request, Response
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from gateway.database import Database, utcnow
from gateway.errors import BadRequestError, UnprocessableError
from gateway.pipeline.models import IdempotencyRecord

HEADER = "Idempotency-Key"
TIME_TO_LIVE = dt.timedelta(hours=24)
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
REPLAYED_HEADER = "Idempotent-Replayed"


@dataclass(frozen=True)
class IdempotentRequest:
    key: str
    request_sha256: str


async def idempotent_request(request: Request) -> IdempotentRequest | None:
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not _KEY.match(key):
        raise BadRequestError(
            "idempotency_key.invalid", "`Idempotency-Key` is 1 to 255 visible ASCII characters."
        )
    return IdempotentRequest(key, hashlib.sha256(await request.body()).hexdigest())


async def replay(db: Database, client_id: str, wanted: IdempotentRequest) -> Response | None:
    """The stored answer to this key, or None; refuses a key reused for another request."""
    async with db.session() as session:
        record = await session.scalar(
            select(IdempotencyRecord).where(
                IdempotencyRecord.client_id == client_id,
                IdempotencyRecord.idempotency_key == wanted.key,
            )
        )
        if record is None:
            return None
        if record.created_at < utcnow() - TIME_TO_LIVE:
            await session.execute(
                delete(IdempotencyRecord).where(IdempotencyRecord.id == record.id)
            )
            await session.commit()
            return None
    if record.request_sha256 != wanted.request_sha256:
        raise UnprocessableError(
            "idempotency.key_reused",
            "This Idempotency-Key was used for a different request; use a new key.",
        )
    headers = json.loads(record.headers)
    headers[REPLAYED_HEADER] = "true"
    return Response(
        content=record.body,
        status_code=record.status,
        media_type=record.media_type,
        headers=headers,
    )


async def remember(
    db: Database, client_id: str, wanted: IdempotentRequest, response: Response
) -> None:
    """Keep the answer for replays; a concurrent twin that stored first wins."""
    kept_headers = {
        name: value
        for name, value in response.headers.items()
        if name.lower() not in {"content-length", "content-type", "x-request-id"}
        and not name.lower().startswith("ratelimit")
    }
    try:
        async with db.session() as session:
            session.add(
                IdempotencyRecord(
                    client_id=client_id,
                    idempotency_key=wanted.key,
                    request_sha256=wanted.request_sha256,
                    status=response.status_code,
                    media_type=response.media_type or "application/json",
                    headers=json.dumps(kept_headers),
                    body=bytes(response.body),
                )
            )
            await session.commit()
    except IntegrityError:
        return
