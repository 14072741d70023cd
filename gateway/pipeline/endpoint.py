"""Turns a connector operation into a FastAPI endpoint with the operation's own parameters.

The endpoint's signature is the operation's (so OpenAPI documents its real parameters and
FastAPI validates them) plus the pipeline's access dependency; the connector's ``ctx``
parameter is filled here, never by the client.
"""

from __future__ import annotations

import inspect
import json
import typing
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import Response

from connectors.kit import ConnectorContext, ConnectorVersion, Operation
from gateway.database import utcnow
from gateway.pipeline.context import AccessContext, PipelineState
from gateway.pipeline.idempotency import idempotent_request, replay
from gateway.pipeline.minimise import minimise, withheld_fields
from gateway.pipeline.parameters import bind, bound_parameters

Authorise = Callable[..., Awaitable[AccessContext]]
Justify = Callable[[Request, AccessContext, PipelineState], Awaitable[None]]

CONTEXT_PARAMETER = "ctx"
# The endpoint's attribute holding what serves a request end to end (see ConnectorRoute).
SERVE_ATTRIBUTE = "__pipeline_serve__"
JSON_MEDIA_TYPE = "application/json"


def operation_parameters(operation: Operation) -> list[inspect.Parameter]:
    """The operation's public parameters with their annotations resolved.

    Connector modules use postponed annotations; FastAPI would resolve the strings against
    this module's globals, so they are resolved against the connector's own here.
    """
    hints = typing.get_type_hints(operation.function, include_extras=True)
    parameters = []
    for parameter in inspect.signature(operation.function).parameters.values():
        if parameter.name == CONTEXT_PARAMETER:
            continue
        parameters.append(
            parameter.replace(
                annotation=hints.get(parameter.name, parameter.annotation),
                kind=inspect.Parameter.KEYWORD_ONLY,
            )
        )
    return parameters


def make_endpoint(
    version: ConnectorVersion,
    operation: Operation,
    authorise: Authorise,
    justify: Justify,
) -> Callable[..., Awaitable[Response]]:
    withheld_cache: dict[frozenset[str] | None, frozenset[str]] = {}

    async def endpoint(request: Request, access: AccessContext, **params: Any) -> Response:
        state: PipelineState = request.state.pipeline
        db = request.app.state.db
        subject = operation.subject(params) if operation.subject else None
        if subject is not None:
            state.subjects = [subject]
        # Before any replay: a stored answer leaving again needs the consent in force now.
        await justify(request, access, state)
        if operation.method == "POST":
            wanted = await idempotent_request(request, access)
            if wanted is not None:
                replayed = await replay(db, access.client_id, wanted)
                if replayed is not None:
                    state.reason_code = "idempotency.replayed"
                    # Not a new disclosure (see gateway.pipeline.idempotency).
                    state.subjects = []
                    return replayed
                state.idempotency = wanted
        now = utcnow()
        context = ConnectorContext(
            reader=db.reader,
            open_session=db.session,
            today=now.date(),
            now=now,
            partner_kind=access.partner_kind,
            services=request.app.state.connector_services,
        )
        disclosure = await operation.function(**params, ctx=context)
        state.subjects = list(disclosure.subjects)
        withheld = withheld_cache.get(access.released_fields)
        if withheld is None:
            withheld = withheld_fields(version.releasable, access.released_fields)
            withheld_cache[access.released_fields] = withheld
        if withheld:
            data = minimise(disclosure.body.model_dump(mode="json"), withheld)
            body = Response(
                content=_dump(data), media_type=JSON_MEDIA_TYPE, headers=dict(disclosure.headers)
            )
        else:
            body = Response(
                content=disclosure.body.model_dump_json(),
                media_type=JSON_MEDIA_TYPE,
                headers=dict(disclosure.headers),
            )
        return body

    request_parameter = inspect.Parameter(
        "request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request
    )
    access_parameter = inspect.Parameter(
        "access",
        inspect.Parameter.KEYWORD_ONLY,
        annotation=Annotated[AccessContext, Depends(authorise)],
    )
    parameters = operation_parameters(operation)
    endpoint.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [request_parameter, access_parameter, *parameters]
    )
    bound = bound_parameters(operation.path, parameters)

    async def serve(request: Request) -> Response:
        # What FastAPI would do from the signature above: the access dependency, then the
        # parameters, then the endpoint.
        access = await authorise(request)
        return await endpoint(request, access, **await bind(request, bound))

    setattr(endpoint, SERVE_ATTRIBUTE, serve)
    endpoint.__name__ = f"{version.dataset}_v{version.version}_{operation.name}"
    endpoint.__doc__ = operation.description
    return endpoint


def _dump(data: dict[str, Any]) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
