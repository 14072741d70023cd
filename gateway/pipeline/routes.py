"""Mounts every connector version's operations as pipeline routes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import APIRouter, FastAPI

from connectors.kit import ConnectorVersion, Operation
from gateway.pipeline.endpoint import Authorise, Justify, make_endpoint
from gateway.pipeline.route import PIPELINE_ATTRIBUTE, ConnectorRoute

PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


def _problem_responses(version: ConnectorVersion, operation: Operation) -> dict[int | str, Any]:
    responses: dict[int | str, Any] = {
        400: {
            "description": "Missing or malformed Purpose or Recipient header",
            "content": PROBLEM,
        },
        401: {
            "description": "Missing, invalid, expired or revoked access token",
            "content": PROBLEM,
        },
        403: {
            "description": "Scope, habilitation, purpose or consent does not allow this request",
            "content": PROBLEM,
        },
        422: {"description": "Invalid identifier or parameter", "content": PROBLEM},
        429: {"description": "Rate limit exceeded; see Retry-After", "content": PROBLEM},
        503: {
            "description": "The audit trail cannot record the request: no data sent",
            "content": PROBLEM,
        },
    }
    if operation.subject is not None:
        responses[404] = {"description": "Nothing to disclose; `code` says why", "content": PROBLEM}
    if version.upstream is not None:
        upstream = version.upstream
        responses[502] = {"description": f"{upstream} gave an invalid answer", "content": PROBLEM}
        responses[503]["description"] += f", or {upstream} is unavailable"
        responses[504] = {"description": f"{upstream} did not answer in time", "content": PROBLEM}
    if operation.bulk:
        responses[413] = {"description": "Too many items in one request", "content": PROBLEM}
    if version.deprecation is not None:
        responses[410] = {
            "description": "This version was withdrawn after its sunset date",
            "content": PROBLEM,
        }
    return responses


def sunset_dates(
    versions: Sequence[ConnectorVersion], overrides: Mapping[str, dt.date]
) -> dict[str, dt.date]:
    """Each deprecated version's sunset date, where settings may move the manifest's date."""
    return {
        version.key: overrides.get(version.key, version.deprecation.sunset_on)
        for version in versions
        if version.deprecation is not None
    }


def add_connector_routes(
    app: FastAPI,
    versions: Sequence[ConnectorVersion],
    *,
    authorise_for: Any,
    justify: Justify,
) -> list[ConnectorRoute]:
    """Mount every operation of ``versions``; returns their routes, in matching order."""
    routes: list[ConnectorRoute] = []
    for version in versions:
        router = APIRouter(prefix=version.prefix, route_class=ConnectorRoute)
        authorise: Authorise = authorise_for(version)
        for operation in version.operations:
            endpoint = make_endpoint(version, operation, authorise, justify)
            setattr(endpoint, PIPELINE_ATTRIBUTE, (version, operation))
            router.add_api_route(
                operation.path,
                endpoint,
                methods=[operation.method],
                response_model=operation.response_model,
                summary=operation.summary,
                description=operation.description,
                responses=_problem_responses(version, operation),
                tags=[f"{version.dataset} v{version.version}"],
                deprecated=version.deprecation is not None,
                name=f"{version.key}.{operation.name}",
                openapi_extra={
                    "security": [{"oauth2": [version.scope]}],
                    "x-scope": version.scope,
                    "x-connector": version.key,
                },
            )
        routes.extend(route for route in router.routes if isinstance(route, ConnectorRoute))
        app.include_router(router)
    return routes
