"""A partner's HTTP client for the gateway: its token, its purpose, its requesting unit.

Every data request states why it is made (``Purpose``, a purpose code of the partner's
habilitation) and which of the partner's units makes it (``Recipient``, a SIRET), and may
name the partner's case file (``Case-Reference``). Answers come back typed: either the model
the partner expects, or the gateway's problem document with its stable code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from mocks.common.auth import PrivateKeyJwt, discover, load_private_key
from mocks.common.models import Problem

Model = TypeVar("Model", bound=BaseModel)

DEFAULT_TIMEOUT_SECONDS = 15.0


@dataclass(frozen=True, slots=True)
class Answer(Generic[Model]):
    """One exchange: what was asked, the status, and the typed body or the problem."""

    request: str
    status: int
    body: Model | None = None
    problem: Problem | None = None

    @property
    def ok(self) -> bool:
        return self.body is not None

    def value(self) -> Model:
        if self.body is None:
            code = self.problem.code if self.problem else "unknown"
            raise RuntimeError(f"{self.request} answered {self.status} ({code})")
        return self.body


class GatewayClient:
    """The gateway as one partner machine sees it."""

    def __init__(
        self,
        base_url: str,
        *,
        auth: httpx.Auth | None,
        purpose: str,
        recipient: str,
        user_agent: str = "mock-partner/1.0",
        transport: httpx.BaseTransport | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.purpose = purpose
        self.recipient = recipient
        self.http = httpx.Client(
            base_url=self.base_url,
            auth=auth,
            transport=transport,
            timeout=timeout,
            headers={"User-Agent": user_agent, "Accept": "application/json"},
        )

    @classmethod
    def connect(
        cls,
        gateway_url: str,
        *,
        client_id: str,
        key_path: Path,
        scopes: Sequence[str],
        purpose: str,
        recipient: str,
        user_agent: str = "mock-partner/1.0",
    ) -> GatewayClient:
        """A client that finds the token endpoint in the gateway's metadata."""
        with httpx.Client(timeout=DEFAULT_TIMEOUT_SECONDS) as http:
            metadata = discover(http, gateway_url)
        auth = PrivateKeyJwt(
            client_id=client_id,
            key=load_private_key(key_path),
            token_endpoint=metadata.token_endpoint,
            scopes=scopes,
        )
        return cls(
            gateway_url, auth=auth, purpose=purpose, recipient=recipient, user_agent=user_agent
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def call(
        self,
        method: str,
        path: str,
        model: type[Model],
        *,
        purpose: str | None = None,
        case_reference: str | None = None,
        params: Mapping[str, str | int] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        data_request: bool = True,
        anonymous: bool = False,
    ) -> Answer[Model]:
        """Send one request; ``data_request=False`` leaves out the purpose and recipient,
        ``anonymous=True`` the access token (for the gateway's public documents)."""
        sent: dict[str, str] = {}
        if data_request:
            sent["Purpose"] = purpose or self.purpose
            sent["Recipient"] = self.recipient
        if case_reference is not None:
            sent["Case-Reference"] = case_reference
        sent.update(headers or {})
        response = self.http.request(
            method,
            path,
            params=params,
            json=json,
            headers=sent,
            auth=None if anonymous else httpx.USE_CLIENT_DEFAULT,
        )
        shown = f"{method} {path}"
        if params:
            shown += "?" + "&".join(f"{name}={value}" for name, value in params.items())
        return _answer(shown, response, model)


def _answer(shown: str, response: httpx.Response, model: type[Model]) -> Answer[Model]:
    try:
        document = response.json()
    except ValueError:
        document = None
    if response.is_success:
        try:
            return Answer(shown, response.status_code, body=model.model_validate(document))
        except ValidationError:
            # An answer the partner cannot read is as good as an error to it.
            problem = Problem(
                status=response.status_code,
                title="Unreadable answer",
                detail="The answer lacks fields this partner relies on.",
                code="answer.unreadable",
            )
            return Answer(shown, response.status_code, problem=problem)
    if isinstance(document, dict) and "error" in document and "code" not in document:
        # An OAuth error (RFC 6749 §5.2), e.g. from the token endpoint.
        document = {
            "status": response.status_code,
            "title": str(document["error"]),
            "detail": str(document.get("error_description", "")),
            "code": f"oauth.{document['error']}",
        }
    try:
        problem = Problem.model_validate(document)
    except ValidationError:
        problem = Problem(status=response.status_code, title=response.reason_phrase)
    return Answer(shown, response.status_code, problem=problem)
