"""Mock of Pôle emploi's job-seeker status API: the contract the ACRE connector relies on.

The gateway asks Pôle emploi whether a business creator meets a job-seeker criterion of the
ACRE exemption. This app plays Pôle emploi in demos and tests; it imports nothing of the
gateway, like any outside partner.

Contract
--------
``POST /oauth/token`` — OAuth 2.0 client credentials (RFC 6749 §4.4).
    Client authentication: HTTP Basic ``client_id:client_secret`` (preferred) or the
    ``client_id`` and ``client_secret`` form fields. Form: ``grant_type=client_credentials``.

    - 200 ``{"access_token": "<opaque>", "token_type": "Bearer", "expires_in": 600}``
    - 400 ``{"error": "unsupported_grant_type"}`` or ``{"error": "invalid_request"}``
    - 401 ``{"error": "invalid_client"}``

``POST /api/v1/job-seekers/status`` — ``Authorization: Bearer <access_token>``.
    The NIR travels in the JSON body, never in the URL, so it stays out of access logs:
    ``{"nir": "<15 characters>", "situation_date": "YYYY-MM-DD"}`` where ``situation_date`` is
    the day the situation is assessed at (for ACRE: the business creation date).

    - 200 ``application/json``::

        {
          "reference": "PE-<12 upper-case hex digits>",   # Pôle emploi's file reference
          "registered": true,                             # registered as job seeker today
          "registration_months_last_18": 9,               # 0..18, months registered in the
                                                          # 18 months before situation_date
          "benefits": ["ARE"],                            # [], ["ARE"] or ["ASS"]
          "under_review": false,                          # the file is being reviewed
          "situation_date": "2025-03-01",                 # echoed from the request
          "as_of": "2025-03-02T00:00:00Z"                 # when Pôle emploi's data was current
        }

      Anyone receiving a benefit is registered; ``as_of`` is the start of the current UTC day
      (the mock's "nightly snapshot"), so the same question gets the same bytes all day.
    - 401 missing, unknown or expired token, with ``WWW-Authenticate: Bearer``.
    - 404 ``application/problem+json`` with ``"code": "job_seeker.unknown"``: the person has
      never been known to Pôle emploi. Any other 404 is not part of the contract.
    - 422 ``application/problem+json`` with ``"code": "nir.invalid"`` (bad layout or key) or
      ``"code": "request.invalid"`` (body not as above). Errors never repeat the NIR.

Answers are deterministic: the first four bytes of sha256(NIR), modulo 100, pick the case:

    ==========  ================================================  =====
    bucket      answer                                            share
    ==========  ================================================  =====
    0-39        receives ARE (registered, 6-18 months)            40 %
    40-49       receives ASS (registered, 6-18 months)            10 %
    50-69       registered 6-18 of the last 18 months, no benefit 20 %
    70-79       file under review (registered, 0-5 months)        10 %
    80-89       known, no criterion met (0-5 months)              10 %
    90-99       unknown to Pôle emploi (404)                      10 %
    ==========  ================================================  =====

Settings (environment): ``POLE_EMPLOI_MOCK_CLIENT_ID`` (default ``gateway-demo``),
``POLE_EMPLOI_MOCK_CLIENT_SECRET`` (default ``gateway-demo-secret``),
``POLE_EMPLOI_MOCK_TOKEN_TTL`` (seconds, default 600).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import os
import re
import secrets
import time
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

DEFAULT_CLIENT_ID = "gateway-demo"
DEFAULT_CLIENT_SECRET = "gateway-demo-secret"  # noqa: S105 - the mock's published demo secret
DEFAULT_TOKEN_TTL = 600

PROBLEM = "application/problem+json"

# A NIR's layout: sex digit, year, month, department (2 digits or 2A/2B), commune, order
# number, key. Duplicated from the gateway on purpose: the mock is an outside partner.
_NIR_LAYOUT = re.compile(r"[1-478][0-9]{4}(?:[0-9]{2}|2[AB])[0-9]{8}")
_CORSICA = {"2A": "19", "2B": "18"}
_BEARER = re.compile(r"Bearer ([A-Za-z0-9_\-]{16,128})")


def nir_is_valid(nir: str) -> bool:
    """Layout and key (97 - number mod 97, Corsica's 2A/2B counted as 19/18)."""
    if not _NIR_LAYOUT.fullmatch(nir):
        return False
    department = nir[5:7]
    number = int(nir[:5] + _CORSICA.get(department, department) + nir[7:13])
    return 97 - number % 97 == int(nir[13:])


class StatusQuestion(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    nir: str = Field(min_length=1, max_length=64)
    situation_date: dt.date


def job_seeker_answer(nir: str, situation_date: dt.date, as_of: dt.datetime) -> dict[str, Any]:
    """The answer for one NIR, or an empty dict when the person is unknown (404)."""
    digest = hashlib.sha256(nir.encode()).digest()
    bucket = int.from_bytes(digest[:4], "big") % 100
    # Further bytes of the digest vary the details inside a bucket.
    long_months = 6 + digest[4] % 13
    short_months = digest[5] % 6
    if bucket >= 90:
        return {}
    if bucket < 40:
        registered, months, benefits, review = True, long_months, ["ARE"], False
    elif bucket < 50:
        registered, months, benefits, review = True, long_months, ["ASS"], False
    elif bucket < 70:
        registered, months, benefits, review = True, long_months, [], False
    elif bucket < 80:
        registered, months, benefits, review = True, short_months, [], True
    else:
        registered, months, benefits, review = short_months > 0, short_months, [], False
    return {
        "reference": "PE-" + digest[6:12].hex().upper(),
        "registered": registered,
        "registration_months_last_18": months,
        "benefits": benefits,
        "under_review": review,
        "situation_date": situation_date.isoformat(),
        "as_of": as_of.isoformat().replace("+00:00", "Z"),
    }


def _problem(status: int, code: str, title: str, detail: str) -> JSONResponse:
    return JSONResponse(
        {
            "type": f"urn:pole-emploi:problem:{code}",
            "title": title,
            "status": status,
            "detail": detail,
            "code": code,
        },
        status_code=status,
        media_type=PROBLEM,
    )


def _oauth_error(status: int, error: str) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Basic realm="pole-emploi"'} if status == 401 else None
    return JSONResponse({"error": error}, status_code=status, headers=headers)


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    if not header or not header.startswith("Basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:], validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, sep, client_secret = decoded.partition(":")
    return (client_id, client_secret) if sep else None


def create_app(
    *,
    client_id: str | None = None,
    client_secret: str | None = None,
    token_ttl_seconds: int | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> FastAPI:
    """The mock API; arguments left out are read from the environment, then the defaults."""
    expected_id = client_id or os.environ.get("POLE_EMPLOI_MOCK_CLIENT_ID", DEFAULT_CLIENT_ID)
    expected_secret = client_secret or os.environ.get(
        "POLE_EMPLOI_MOCK_CLIENT_SECRET", DEFAULT_CLIENT_SECRET
    )
    ttl = token_ttl_seconds or int(os.environ.get("POLE_EMPLOI_MOCK_TOKEN_TTL", DEFAULT_TOKEN_TTL))
    tokens: dict[str, float] = {}

    app = FastAPI(
        title="Pôle emploi job-seeker status API (mock)",
        version="1.0.0",
        description=__doc__,
    )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's default body echoes the input, which may be a NIR.
        return _problem(422, "request.invalid", "Invalid request", "The body is not as documented.")

    @app.post("/oauth/token")
    async def issue_token(request: Request) -> JSONResponse:
        form = await request.form()
        credentials = _basic_credentials(request.headers.get("authorization"))
        if credentials is None:
            form_id, form_secret = form.get("client_id"), form.get("client_secret")
            if isinstance(form_id, str) and isinstance(form_secret, str):
                credentials = (form_id, form_secret)
        if credentials is None:
            return _oauth_error(401, "invalid_client")
        given_id, given_secret = credentials
        id_ok = secrets.compare_digest(given_id.encode(), expected_id.encode())
        secret_ok = secrets.compare_digest(given_secret.encode(), expected_secret.encode())
        if not (id_ok and secret_ok):
            return _oauth_error(401, "invalid_client")
        grant_type = form.get("grant_type")
        if grant_type is None:
            return _oauth_error(400, "invalid_request")
        if grant_type != "client_credentials":
            return _oauth_error(400, "unsupported_grant_type")
        now = clock()
        for stale in [token for token, expiry in tokens.items() if expiry <= now]:
            del tokens[stale]
        token = secrets.token_urlsafe(32)
        tokens[token] = now + ttl
        return JSONResponse(
            {"access_token": token, "token_type": "Bearer", "expires_in": ttl},
            headers={"Cache-Control": "no-store"},
        )

    # The body is read by hand rather than declared as a parameter: FastAPI would validate it
    # before the handler runs, answering 422 to callers that have no valid token.
    @app.post(
        "/api/v1/job-seekers/status",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": StatusQuestion.model_json_schema()}},
            }
        },
    )
    async def job_seeker_status(request: Request) -> JSONResponse:
        match = _BEARER.fullmatch(request.headers.get("authorization", ""))
        expiry = tokens.get(match.group(1)) if match else None
        if expiry is None or expiry <= clock():
            return JSONResponse(
                {"error": "invalid_token"},
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        try:
            question = StatusQuestion.model_validate_json(await request.body())
        except ValidationError:
            return _problem(
                422, "request.invalid", "Invalid request", "The body is not as documented."
            )
        if not nir_is_valid(question.nir):
            return _problem(422, "nir.invalid", "Invalid NIR", "The NIR layout or key is wrong.")
        today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        answer = job_seeker_answer(question.nir, question.situation_date, today)
        if not answer:
            return _problem(
                404, "job_seeker.unknown", "Unknown job seeker", "No file for this person."
            )
        return JSONResponse(answer)

    return app
