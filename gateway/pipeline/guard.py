"""Authorise and justify: who asks, under which habilitation, for what, and with whose consent.

``authorise_for(version)`` is the dependency of every connector route: the token and its
scope (``gateway.oauth.resource.require_scope``), then the ``Purpose``, ``Recipient`` and
``Case-Reference`` headers against the partner's habilitations in force. ``justify`` runs once
the subject is known: where the habilitation's legal basis is consent, an active consent of
that person must exist.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the dependency's annotations at
# run time, and ``Depends(token)`` names a closure variable that a string could not resolve.
import re
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Header, Request

from connectors.kit import ConnectorVersion
from gateway.consent.service import find_active_consent
from gateway.errors import BadRequestError, ForbiddenError
from gateway.identifiers import InvalidIdentifierError, parse_siret
from gateway.oauth.resource import TokenClaims, habilitations_for, require_scope
from gateway.pipeline.context import AccessContext, PipelineState

PURPOSE_CODE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
CASE_REFERENCE = re.compile(r"^[\x20-\x7e\u00a0-\u017f]{1,100}$")

PurposeHeader = Annotated[
    str | None,
    Header(
        alias="Purpose",
        description="The purpose code of this request; one the partner's habilitation allows.",
        examples=["rsa-instruction"],
    ),
]
RecipientHeader = Annotated[
    str | None,
    Header(
        alias="Recipient",
        description="SIRET of the partner's unit making the request (14 digits).",
        examples=["53482012700028"],
    ),
]
CaseReferenceHeader = Annotated[
    str | None,
    Header(
        alias="Case-Reference",
        description="Optional: the partner's case file that caused the request (100 characters).",
        examples=["DOSSIER-2026-000123"],
    ),
]


def _purpose(value: str | None) -> str:
    if value is None or not value.strip():
        raise BadRequestError("purpose.missing", "State the purpose of the request in `Purpose`.")
    value = value.strip()
    if not PURPOSE_CODE.match(value):
        raise BadRequestError(
            "purpose.malformed", "`Purpose` is a purpose code: letters, digits, _ . : -"
        )
    return value


def _recipient(value: str | None) -> str:
    if value is None or not value.strip():
        raise BadRequestError(
            "recipient.missing", "State the SIRET of the requesting unit in `Recipient`."
        )
    try:
        return parse_siret(value)
    except InvalidIdentifierError as exc:
        raise BadRequestError("recipient.invalid", f"`Recipient`: {exc.reason}.") from exc


def _case_reference(value: str | None) -> str | None:
    if value is None:
        return None
    if not CASE_REFERENCE.match(value):
        raise BadRequestError(
            "case_reference.invalid",
            "`Case-Reference` is up to 100 printable characters.",
        )
    return value


def authorise_for(version: ConnectorVersion) -> Callable[..., Awaitable[AccessContext]]:
    token = require_scope(version.scope)

    async def authorise(
        request: Request,
        claims: Annotated[TokenClaims, Depends(token)],
        purpose: PurposeHeader = None,
        recipient: RecipientHeader = None,
        case_reference: CaseReferenceHeader = None,
    ) -> AccessContext:
        state: PipelineState = request.state.pipeline
        state.client_id = claims.client_id
        state.partner_id = claims.partner_id
        state.case_reference = _case_reference(case_reference)
        state.purpose = _purpose(purpose)
        state.recipient = _recipient(recipient)
        grants = await habilitations_for(request, claims, version.scope)
        grant = next((g for g in grants if state.purpose in g.purposes), None)
        if grant is None:
            raise ForbiddenError(
                "purpose.not_allowed",
                "No habilitation of this partner in force for this scope allows this purpose.",
            )
        access = AccessContext(
            client_id=claims.client_id,
            partner_id=claims.partner_id,
            partner_name=grant.partner_name,
            partner_kind=grant.partner_kind,
            habilitation_id=grant.id,
            scope=version.scope,
            purpose=state.purpose,
            recipient=state.recipient,
            legal_basis=grant.legal_basis,
            consent_required=grant.consent_required,
            released_fields=grant.released_fields,
            case_reference=state.case_reference,
        )
        state.access = access
        return access

    authorise.__name__ = f"authorise_{version.key.replace('.', '_').replace('-', '_')}"
    return authorise


async def justify(request: Request, access: AccessContext, state: PipelineState) -> None:
    """Where the legal basis is consent, find the subject's active consent or refuse."""
    if not access.consent_required:
        return
    if not state.subjects or state.operation.bulk:
        raise ForbiddenError(
            "consent.bulk_not_supported",
            "This habilitation rests on individual consent: ask for one person at a time.",
        )
    consent_id = await find_active_consent(
        request.app.state.db,
        request.app.state.audit.pseudonymiser,
        partner_id=access.partner_id,
        subject=state.subjects[0],
        scope=access.scope,
        purpose=access.purpose,
    )
    if consent_id is None:
        raise ForbiddenError(
            "consent.missing",
            "This habilitation rests on individual consent and no active consent of this "
            "person covers this scope and purpose.",
        )
    state.consent_id = consent_id
