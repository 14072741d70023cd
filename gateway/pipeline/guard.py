"""Authorise and justify: who asks, under which habilitation, for what, and with whose consent.

``authorise_for(version)`` is the dependency of every connector route: the token and its
scope (``gateway.oauth.resource.check_token``), then the ``Purpose``, ``Recipient`` and
``Case-Reference`` headers against the partner's habilitations in force. ``justify`` runs once
the subject is known: where the habilitation's legal basis is consent, an active consent of
that person must exist.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from fastapi import Request

from connectors.kit import ConnectorVersion
from gateway.consent.service import find_active_consent
from gateway.errors import BadRequestError, ForbiddenError
from gateway.identifiers import InvalidIdentifierError, parse_siret
from gateway.oauth.resource import check_token, checks_token_for, habilitations_for
from gateway.pipeline.context import AccessContext, PipelineState

PURPOSE_CODE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
CASE_REFERENCE = re.compile(r"^[\x20-\x7e\u00a0-\u017f]{1,100}$")


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


def authorise_for(version: ConnectorVersion) -> Callable[[Request], Awaitable[AccessContext]]:
    """The access dependency of ``version``'s routes: one dependency reading its headers itself.

    One level of FastAPI dependency instead of three (token, scheme, headers) is measurably
    cheaper on every request; the headers are documented by :mod:`gateway.openapi`.
    """
    scope = version.scope

    async def authorise(request: Request) -> AccessContext:
        state: PipelineState = request.state.pipeline
        headers = request.headers
        claims = await check_token(request, headers.get("authorization"), scope)
        state.client_id = claims.client_id
        state.partner_id = claims.partner_id
        state.case_reference = _case_reference(headers.get("case-reference"))
        state.purpose = _purpose(headers.get("purpose"))
        state.recipient = _recipient(headers.get("recipient"))
        grants = await habilitations_for(request, claims, scope)
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
            scope=scope,
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
    return checks_token_for(scope, authorise)


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
