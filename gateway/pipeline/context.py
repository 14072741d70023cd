"""The typed facts the pipeline establishes about a request before any data is read."""

from __future__ import annotations

from dataclasses import dataclass, field

from connectors.kit import ConnectorVersion, Operation, Subject
from gateway.pipeline.idempotency import IdempotentRequest


@dataclass(frozen=True, slots=True)
class AccessContext:
    """Who asks, under which habilitation, for what purpose: established once per request."""

    client_id: str
    partner_id: int
    partner_name: str
    partner_kind: str
    habilitation_id: int
    scope: str
    purpose: str
    recipient: str
    legal_basis: str
    consent_required: bool
    released_fields: frozenset[str] | None
    case_reference: str | None = None


@dataclass(slots=True)
class PipelineState:
    """What the pipeline learns as a request goes through it; the audit record is made of it."""

    version: ConnectorVersion
    operation: Operation
    request_id: str
    client_id: str | None = None
    partner_id: int | None = None
    purpose: str | None = None
    recipient: str | None = None
    case_reference: str | None = None
    legal_basis: str | None = None
    consent_id: str | None = None
    access: AccessContext | None = None
    subjects: list[Subject] = field(default_factory=list)
    outcome: str = "granted"
    reason_code: str | None = None
    extra_headers: dict[str, str] = field(default_factory=dict)
    idempotency: IdempotentRequest | None = None
