"""``Idempotency-Key`` on POST operations: the same request, retried, gets the same answer.

The answer is replayed from the database (several gateway processes share it), not computed
again, so a retried batch is not a second disclosure: its audit record says it was a replay and
names no subject. Records live one day.

A replay is data leaving again, so it comes after the same checks as a first answer: the
token, the habilitation in force and, where the basis is consent, an active consent (a
withdrawn consent stops replays too). And it answers only the very request it was stored for:
the key's fingerprint covers the operation (method, path, query), the habilitation and the
fields it releases, the declared purpose, recipient and case reference, and the body. The same
key with any of these changed is refused (422), so an answer is never replayed under another
connector, purpose or a habilitation narrowed since.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import Request, Response
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from gateway.database import Database, utcnow
from gateway.errors import BadRequestError, UnprocessableError
from gateway.pipeline.models import IdempotencyRecord

if TYPE_CHECKING:
    from gateway.pipeline.context import AccessContext

HEADER = "Idempotency-Key"
TIME_TO_LIVE = dt.timedelta(hours=24)
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
REPLAYED_HEADER = "Idempotent-Replayed"


@dataclass(frozen=True)
class IdempotentRequest:
    key: str
    request_sha256: str


async def idempotent_request(request: Request, access: AccessContext) -> IdempotentRequest | None:
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not _KEY.match(key):
        raise BadRequestError(
            "idempotency_key.invalid", "`Idempotency-Key` is 1 to 255 visible ASCII characters."
        )
    return IdempotentRequest(key, _fingerprint(request, access, await request.body()))


def _fingerprint(request: Request, access: AccessContext, body: bytes) -> str:
    """The SHA-256 of everything a replayed answer must have been given for (module doc)."""
    released = None if access.released_fields is None else sorted(access.released_fields)
    conditions = json.dumps(
        [
            request.method,
            request.url.path,
            request.url.query,
            access.habilitation_id,
            released,
            access.purpose,
            access.recipient,
            access.case_reference,
        ]
    )
    # JSON text holds no raw newline, so the one after it cannot be confused with the body's.
    return hashlib.sha256(conditions.encode() + b"\n" + body).hexdigest()


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
            "This Idempotency-Key was used for a different request (operation, purpose, "
            "recipient, case reference or body), or under a habilitation that has changed "
            "since; use a new key.",
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
