"""Client of Pôle emploi's job-seeker status API, the evidence behind ACRE decisions.

The contract is written out in ``mocks/pole_emploi_api/app.py``. In short: OAuth 2.0 client
credentials at ``POST {base}/oauth/token``, then ``POST {base}/api/v1/job-seekers/status`` with
the NIR in the JSON body (never in a URL: URLs end up in access logs on both sides).

How calls fail, and what the caller sees (all connector kit errors, never anything else):

- the last attempt allowed timed out -> :class:`UpstreamTimeout` ``upstream.timeout`` (504);
- 5xx, 429, network errors after the retries, or the gateway's credentials refused ->
  :class:`UpstreamUnavailable` ``upstream.unavailable`` (503);
- the circuit breaker is open -> :class:`UpstreamUnavailable` ``upstream.circuit_open`` (503);
- an answer outside the contract (bad JSON, wrong types, unexpected status) ->
  :class:`UpstreamBadAnswer` ``upstream.bad_answer`` (502). Such an answer is never returned,
  so it can never become stored evidence.

Retries: at most ``max_retries`` (2) more attempts, after an exponential, jittered pause, and
only for timeouts, network errors and 5xx. A 4xx is an answer, not an accident, and is never
retried. The status query only reads, so repeating the POST is safe. A 401 on the status call
means the cached token died early: the token is fetched again once within the same attempt.

The circuit breaker counts consecutive failed attempts (timeouts, network errors, 5xx, 429,
malformed bodies); an unexpected status or refused credentials say nothing of Pôle emploi's
health and leave the count alone. At ``breaker_failure_threshold`` it opens and calls fail at
once, retries included. After ``breaker_cooldown_seconds`` it lets one trial attempt through
(half-open): success closes it, failure opens it for another cool-down. Each process keeps its
own breaker: it describes how this process sees the upstream, which no other process needs.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import hashlib
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import structlog
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)

from connectors.kit import (
    ConnectorError,
    UpstreamBadAnswer,
    UpstreamTimeout,
    UpstreamUnavailable,
)

__all__ = [
    "SOURCE",
    "BreakerState",
    "CircuitBreaker",
    "JobSeekerEvidence",
    "JobSeekerStatus",
    "PoleEmploiClient",
]

log = structlog.get_logger(__name__)

SOURCE = "pole-emploi/job-seekers/status/v1"
OAUTH_ENDPOINT = "/oauth/token"
STATUS_PATH = "/api/v1/job-seekers/status"
# A status answer is a few hundred bytes; anything far larger is not an answer to trust.
MAX_ANSWER_BYTES = 64 * 1024
# Only these statuses' bodies are read: for any other, the status alone decides.
_STATUSES_WITH_BODY = frozenset({200, 404})
# A token is reused for at most a day whatever lifetime Pôle emploi announces: an absurd one
# must neither keep a token for ever nor overflow the arithmetic on it.
_MAX_TOKEN_REUSE_SECONDS = 86_400
_JSON_TYPES = frozenset({"application/json", "application/problem+json"})


class JobSeekerStatus(BaseModel):
    """Pôle emploi's answer about one person, checked strictly before anything is decided."""

    # Strict: no coercion ("true" is not a boolean, "6" is not a number). Unknown fields are
    # ignored so that Pôle emploi can add some without breaking ACRE decisions.
    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")

    reference: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-]*$")
    registered: bool
    registration_months_last_18: int = Field(ge=0, le=18)
    benefits: tuple[Literal["ARE", "ASS"], ...]
    under_review: bool
    situation_date: dt.date
    as_of: AwareDatetime

    @field_validator("benefits")
    @classmethod
    def _no_repeats(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("a benefit is listed twice")
        return value


class _UnknownPerson(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")

    code: Literal["job_seeker.unknown"]


class _TokenAnswer(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")

    access_token: str = Field(min_length=1, max_length=4096)
    token_type: str
    expires_in: int = Field(gt=0)

    @field_validator("token_type")
    @classmethod
    def _bearer(cls, value: str) -> str:
        if value.lower() != "bearer":
            raise ValueError("only bearer tokens are supported")
        return value


@dataclass(frozen=True)
class JobSeekerEvidence:
    """What Pôle emploi answered, and the proof of that answer.

    ``status`` is None when Pôle emploi said the person is unknown to it (404 with code
    ``job_seeker.unknown``): that is an answer too, and its bytes are the evidence.
    ``digest`` is ``sha256:<hex>`` of the exact body bytes received.
    """

    status: JobSeekerStatus | None
    source: str
    reference: str | None
    fetched_at: dt.datetime
    digest: str


class BreakerState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Consecutive-failure circuit breaker with a single trial call when half-open."""

    def __init__(
        self,
        failure_threshold: int = 5,
        cooldown_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1 or cooldown_seconds < 0:
            raise ValueError("the threshold must be >= 1 and the cool-down >= 0")
        self.failure_threshold = failure_threshold
        self.cooldown_seconds = cooldown_seconds
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trial_in_flight = False

    @property
    def state(self) -> BreakerState:
        if self._state is BreakerState.OPEN and self._cooled_down():
            return BreakerState.HALF_OPEN
        return self._state

    def _cooled_down(self) -> bool:
        return self._clock() - self._opened_at >= self.cooldown_seconds

    def allow(self) -> bool:
        """Whether an attempt may go now; in half-open state only one attempt at a time."""
        if self._state is BreakerState.CLOSED:
            return True
        if self._state is BreakerState.OPEN:
            if not self._cooled_down():
                return False
            self._state = BreakerState.HALF_OPEN
            self._trial_in_flight = False
        if self._trial_in_flight:
            return False
        self._trial_in_flight = True
        return True

    def record_success(self) -> None:
        if self._state is not BreakerState.CLOSED:
            log.info("pole_emploi_circuit_closed")
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._trial_in_flight = False

    def record_failure(self) -> None:
        self._failures += 1
        if self._state is BreakerState.HALF_OPEN or self._failures >= self.failure_threshold:
            if self._state is not BreakerState.OPEN:
                log.warning("pole_emploi_circuit_opened", consecutive_failures=self._failures)
            self._state = BreakerState.OPEN
            self._opened_at = self._clock()
            self._trial_in_flight = False

    def release(self) -> None:
        """An attempt ended saying nothing about upstream health (cancelled, or refused)."""
        self._trial_in_flight = False


class _Transient(Exception):  # noqa: N818 - internal outcome, never raised to callers
    """A failed attempt worth retrying."""

    def __init__(self, kind: Literal["timeout", "unavailable"], reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


class _Final(Exception):  # noqa: N818
    """An attempt that must not be retried; ``error`` is what the caller gets."""

    def __init__(self, error: ConnectorError, *, upstream_failed: bool) -> None:
        super().__init__(error.code)
        self.error = error
        self.upstream_failed = upstream_failed


def _bad_answer(reason: str, *, upstream_failed: bool = True, **context: object) -> _Final:
    """An answer outside the contract; a wrong status says nothing of upstream health."""
    log.warning("pole_emploi_bad_answer", reason=reason, **context)
    return _Final(
        UpstreamBadAnswer(
            "upstream.bad_answer", "Pôle emploi sent an answer outside its contract."
        ),
        upstream_failed=upstream_failed,
    )


def _unavailable(reason: str, *, upstream_failed: bool) -> _Final:
    log.warning("pole_emploi_refused", reason=reason)
    return _Final(
        UpstreamUnavailable("upstream.unavailable", "Pôle emploi cannot be used right now."),
        upstream_failed=upstream_failed,
    )


def _media_type(response: httpx.Response) -> str:
    content_type: str = response.headers.get("content-type", "")
    return content_type.split(";")[0].strip().lower()


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class PoleEmploiClient:
    """One per gateway process, created at startup and shared by all ACRE requests."""

    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: SecretStr | str,
        *,
        timeout_seconds: float = 3.0,
        max_retries: int = 2,
        backoff_seconds: float = 0.2,
        backoff_max_seconds: float = 2.0,
        breaker_failure_threshold: int = 5,
        breaker_cooldown_seconds: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        now: Callable[[], dt.datetime] = _utcnow,
    ) -> None:
        if timeout_seconds <= 0 or max_retries < 0 or backoff_seconds < 0:
            raise ValueError("timeout must be > 0, retries and backoff >= 0")
        self._client_id = client_id
        self._client_secret = (
            client_secret if isinstance(client_secret, SecretStr) else SecretStr(client_secret)
        )
        self._timeout = timeout_seconds
        self._max_retries = max_retries
        self._backoff = backoff_seconds
        self._backoff_max = backoff_max_seconds
        self._clock = clock
        self._sleep = sleep
        self._now = now
        self.breaker = CircuitBreaker(breaker_failure_threshold, breaker_cooldown_seconds, clock)
        self._http = httpx.AsyncClient(
            base_url=base_url,
            transport=transport,
            timeout=httpx.Timeout(timeout_seconds),
            follow_redirects=False,
            headers={"Accept": "application/json", "User-Agent": "dlnuf-gateway"},
        )
        self._token: str | None = None
        self._token_expires_at = 0.0
        self._token_lock = asyncio.Lock()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> PoleEmploiClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def job_seeker_status(self, nir: str, situation_date: dt.date) -> JobSeekerEvidence:
        """Pôle emploi's answer about the person ``nir`` at ``situation_date``, with its proof."""
        last: _Transient | None = None
        for attempt in range(self._max_retries + 1):
            if last is not None:
                delay = self._pause(attempt)
                log.warning("pole_emploi_retry", attempt=attempt, reason=last.reason, delay_s=delay)
                await self._sleep(delay)
            if not self.breaker.allow():
                raise UpstreamUnavailable(
                    "upstream.circuit_open",
                    "Pôle emploi failed repeatedly; calls are suspended for a while.",
                )
            try:
                evidence = await self._attempt(nir, situation_date)
            except _Transient as exc:
                self.breaker.record_failure()
                last = exc
                continue
            except _Final as exc:
                if exc.upstream_failed:
                    self.breaker.record_failure()
                else:
                    self.breaker.release()
                raise exc.error from None
            except BaseException:
                self.breaker.release()
                raise
            self.breaker.record_success()
            return evidence
        if last is not None and last.kind == "timeout":
            raise UpstreamTimeout("upstream.timeout", "Pôle emploi did not answer in time.")
        raise UpstreamUnavailable("upstream.unavailable", "Pôle emploi cannot be reached.")

    def _pause(self, attempt: int) -> float:
        ceiling = min(self._backoff_max, self._backoff * 2.0 ** (attempt - 1))
        # Jitter keeps the gateway's processes from retrying in lockstep.
        return round(ceiling * (0.5 + random.random() / 2), 4)  # noqa: S311 - not a secret

    async def _attempt(self, nir: str, situation_date: dt.date) -> JobSeekerEvidence:
        try:
            # httpx's timeout bounds each read; this bounds the whole exchange, so a trickling
            # upstream cannot hold a request beyond the configured time either.
            async with asyncio.timeout(self._timeout):
                response = await self._ask(nir, situation_date)
                if response.status_code == 401:
                    self._token = None
                    response = await self._ask(nir, situation_date)
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise _Transient("timeout", type(exc).__name__) from None
        except httpx.TransportError as exc:
            raise _Transient("unavailable", type(exc).__name__) from None
        return self._evidence(response)

    async def _ask(self, nir: str, situation_date: dt.date) -> httpx.Response:
        token = await self._access_token()
        return await self._post(
            STATUS_PATH,
            json={"nir": nir, "situation_date": situation_date.isoformat()},
            headers={
                "Authorization": f"Bearer {token}",
                # The digest must cover the bytes Pôle emploi sent, not a decompressed copy.
                "Accept-Encoding": "identity",
            },
        )

    async def _post(
        self, url: str, *, auth: httpx.Auth | None = None, **options: Any
    ) -> httpx.Response:
        """POST, then read at most ``MAX_ANSWER_BYTES`` of the answer: a broken or hostile
        upstream cannot make the gateway hold an answer of any size in memory."""
        request = self._http.build_request("POST", url, **options)
        response = await self._http.send(request, auth=auth, stream=True)
        body = bytearray()
        try:
            if response.status_code in _STATUSES_WITH_BODY:
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_ANSWER_BYTES:
                        raise _bad_answer("too_large")
        finally:
            await response.aclose()
        headers = {"content-type": response.headers.get("content-type", "")}
        return httpx.Response(
            response.status_code, headers=headers, content=bytes(body), request=request
        )

    async def _access_token(self) -> str:
        if self._token is not None and self._clock() < self._token_expires_at:
            return self._token
        async with self._token_lock:
            # Another request may have fetched one while this one waited for the lock.
            if self._token is not None and self._clock() < self._token_expires_at:
                return self._token
            requested_at = self._clock()
            response = await self._post(
                OAUTH_ENDPOINT,
                data={"grant_type": "client_credentials"},
                auth=httpx.BasicAuth(self._client_id, self._client_secret.get_secret_value()),
            )
            if response.status_code >= 500:
                raise _Transient("unavailable", f"token_http_{response.status_code}")
            if response.status_code == 429:
                raise _unavailable("token_http_429", upstream_failed=True)
            if response.status_code != 200:
                raise _unavailable(f"token_http_{response.status_code}", upstream_failed=False)
            try:
                answer = _TokenAnswer.model_validate_json(response.content)
            except ValidationError:
                raise _bad_answer("token_answer_invalid") from None
            lifetime = min(answer.expires_in, _MAX_TOKEN_REUSE_SECONDS)
            # Renew a little before the end so a token never expires in flight.
            margin = min(30.0, lifetime / 2)
            self._token = answer.access_token
            self._token_expires_at = requested_at + lifetime - margin
            return self._token

    def _evidence(self, response: httpx.Response) -> JobSeekerEvidence:
        status = response.status_code
        if status >= 500:
            raise _Transient("unavailable", f"http_{status}")
        if status == 429:
            raise _unavailable("http_429", upstream_failed=True)
        if status in (401, 403):
            raise _unavailable(f"http_{status}", upstream_failed=False)
        if status not in (200, 404):
            raise _bad_answer(f"http_{status}", upstream_failed=False)
        body = response.content
        if _media_type(response) not in _JSON_TYPES:
            raise _bad_answer("not_json")
        fetched_at = self._now()
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        if status == 404:
            try:
                _UnknownPerson.model_validate_json(body)
            except ValidationError:
                # A 404 without the contract's code may be a wrong URL, not an unknown person:
                # reading it as "unknown" would refuse ACRE on a configuration mistake.
                raise _bad_answer("http_404_without_code", upstream_failed=False) from None
            return JobSeekerEvidence(
                status=None, source=SOURCE, reference=None, fetched_at=fetched_at, digest=digest
            )
        try:
            answer = JobSeekerStatus.model_validate_json(body)
        except ValidationError as exc:
            # Only where the answer is wrong is logged: the values may be personal data.
            fields = sorted({".".join(map(str, err["loc"])) for err in exc.errors()})
            raise _bad_answer("schema", fields=fields) from None
        return JobSeekerEvidence(
            status=answer,
            source=SOURCE,
            reference=answer.reference,
            fetched_at=fetched_at,
            digest=digest,
        )
