"""The pipeline's audit step: one record per request, with every subject whose data left."""

from __future__ import annotations

from fastapi import Request

from gateway.audit.errors import AuditUnavailableError
from gateway.audit.runtime import AuditRuntime
from gateway.audit.schemas import AuditEntry, AuditSubject
from gateway.identifiers import InvalidIdentifierError
from gateway.pipeline.context import PipelineState

__all__ = ["AuditUnavailableError", "record_request"]


async def _subjects(runtime: AuditRuntime, state: PipelineState) -> list[AuditSubject]:
    subjects = []
    for subject in state.subjects:
        try:
            subjects.append(await runtime.pseudonymiser.subject(subject.kind, subject.identifier))
        except InvalidIdentifierError as exc:
            # Subjects come from validated input or the reference store: an invalid one is a
            # defect, and data about an unrecordable subject must not leave.
            raise AuditUnavailableError("a disclosed subject could not be pseudonymised") from exc
    return subjects


async def record_request(
    request: Request,
    state: PipelineState,
    *,
    status: int,
    response_sha256: str,
    latency_ms: float,
) -> None:
    """Commit the request's audit record; raises ``AuditUnavailableError`` when it cannot."""
    runtime: AuditRuntime = request.app.state.audit
    subjects = await _subjects(runtime, state)
    try:
        entry = _entry(state, status, response_sha256, latency_ms, subjects)
    except (TypeError, ValueError) as exc:
        raise AuditUnavailableError("the audit entry could not be built") from exc
    await runtime.writer.write(entry)


def _entry(
    state: PipelineState,
    status: int,
    response_sha256: str,
    latency_ms: float,
    subjects: list[AuditSubject],
) -> AuditEntry:
    access = state.access
    return AuditEntry(
        request_id=state.request_id or "unknown",
        operation=state.operation.name,
        outcome=state.outcome,  # type: ignore[arg-type]
        http_status=status,
        client_id=state.client_id,
        partner_id=state.partner_id,
        connector=state.version.dataset,
        connector_version=state.version.version,
        purpose=state.purpose,
        recipient=state.recipient,
        legal_basis=access.legal_basis if access else None,
        consent_id=state.consent_id,
        case_reference=state.case_reference,
        reason_code=state.reason_code,
        response_sha256=response_sha256,
        latency_us=int(latency_ms * 1000),
        subjects=subjects,
    )
