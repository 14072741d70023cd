"""The consent API: record, read and revoke a person's consent (scope ``consent:write``).

These routes run under the same route class as the connectors, so each call leaves an audit
record before its answer does, naming the person by pseudonym.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Request, Response

from connectors.kit import ConnectorVersion, Operation
from gateway.consent.schemas import ConsentIn, ConsentOut, ConsentRevokeIn
from gateway.consent.service import ConsentService
from gateway.keys.store import KeyStore
from gateway.oauth.resource import TokenClaims, habilitations_for, require_scope
from gateway.oauth.status import HabilitationGrant
from gateway.pipeline.context import PipelineState
from gateway.pipeline.route import PIPELINE_ATTRIBUTE, PipelineRoute
from gateway.pipeline.routes import PROBLEM

CONSENTS = ConnectorVersion(
    dataset="consents",
    version=1,
    scope="consent:write",
    title="Consents",
    consumers=("caf", "pole-emploi", "cnam", "training-fund"),
)

router = APIRouter(prefix="/api/v1/consents", tags=["consents v1"], route_class=PipelineRoute)
ConsentId = Annotated[str, Path(min_length=36, max_length=36, description="The consent's id.")]
Claims = Annotated[TokenClaims, Depends(require_scope("consent:write"))]
RESPONSES: dict[int | str, Any] = {
    status: {"description": description, "content": PROBLEM}
    for status, description in {
        401: "Missing, invalid, expired or revoked access token",
        403: "Scope or habilitation does not allow this consent",
        404: "No consent of this partner has this id",
        422: "Invalid body or identifier",
        503: "The audit trail cannot record the request",
    }.items()
}


def _service(request: Request) -> ConsentService:
    service = getattr(request.app.state, "consent_service", None)
    if service is None:
        state = request.app.state
        service = ConsentService(
            state.db, state.settings, state.audit.pseudonymiser, KeyStore(state.settings)
        )
        state.consent_service = service
    return service


def _label(function: Any, method: str, path: str) -> Any:
    operation = Operation(
        name=function.__name__,
        method=method,  # type: ignore[arg-type]
        path=path,
        function=function,
        response_model=ConsentOut,
        summary="",
        description="",
        subject=None,
        bulk=False,
    )
    setattr(function, PIPELINE_ATTRIBUTE, (CONSENTS, operation))
    return function


def _who(request: Request, claims: TokenClaims) -> PipelineState:
    state: PipelineState = request.state.pipeline
    state.client_id = claims.client_id
    state.partner_id = claims.partner_id
    return state


async def grant_consent(
    request: Request, claims: Claims, body: Annotated[ConsentIn, Body()]
) -> Response:
    """Record a person's consent; answers with its id and a signed receipt for the person."""
    state = _who(request, claims)
    state.purpose = body.purpose
    grants: list[HabilitationGrant] = []
    for scope in body.scopes:
        grants.extend(await habilitations_for(request, claims, scope))
    consent, subjects = await asyncio.to_thread(
        _service(request).grant,
        client_id=claims.client_id,
        partner_id=claims.partner_id,
        grants=grants,
        body=body,
    )
    state.subjects = subjects
    state.consent_id = consent.id
    return _created(consent)


def _created(consent: ConsentOut) -> Response:
    return Response(
        content=consent.model_dump_json(),
        status_code=201,
        media_type="application/json",
        headers={"Location": f"/api/v1/consents/{consent.id}"},
    )


async def read_consent(request: Request, claims: Claims, consent_id: ConsentId) -> ConsentOut:
    """The consent, its current state and its ledger."""
    state = _who(request, claims)
    state.consent_id = consent_id
    return await asyncio.to_thread(
        _service(request).get, consent_id=consent_id, partner_id=claims.partner_id
    )


async def revoke_consent(
    request: Request,
    claims: Claims,
    consent_id: ConsentId,
    body: Annotated[ConsentRevokeIn | None, Body()] = None,
) -> ConsentOut:
    """Withdraw the consent at the person's request; data requests under it stop at once."""
    state = _who(request, claims)
    state.consent_id = consent_id
    return await asyncio.to_thread(
        _service(request).revoke,
        consent_id=consent_id,
        partner_id=claims.partner_id,
        client_id=claims.client_id,
        reason=body.reason if body else None,
    )


router.add_api_route(
    "",
    _label(grant_consent, "POST", "/consents"),
    methods=["POST"],
    status_code=201,
    response_model=ConsentOut,
    responses=RESPONSES,
    summary="Record a consent",
)
router.add_api_route(
    "/{consent_id}",
    _label(read_consent, "GET", "/consents/{consent_id}"),
    methods=["GET"],
    response_model=ConsentOut,
    responses=RESPONSES,
    summary="Read a consent",
)
router.add_api_route(
    "/{consent_id}/revoke",
    _label(revoke_consent, "POST", "/consents/{consent_id}/revoke"),
    methods=["POST"],
    response_model=ConsentOut,
    responses=RESPONSES,
    summary="Revoke a consent",
)

__all__ = ["CONSENTS", "router"]
