"""Binds a connector operation's parameters from a request, with FastAPI's rules and errors.

FastAPI reads an operation's signature to document it and, by default, to validate every
request through its dependency machinery, whose cost per request matched that of the read it
wraps. Connector operations declare only path and query values and one JSON body, so the
pipeline binds them itself: each parameter is validated by a ``TypeAdapter`` of its own
annotation, built once, and a failure raises :class:`RequestValidationError` with the
locations and messages FastAPI gives (``("path", "siren")``, ``("query", "from")``,
``("body", ...)``), rendered by the same problem handler.

A parameter of any other kind (header, cookie, form, several bodies) is refused when the
routes are built, not at request time.
"""

from __future__ import annotations

import email.message
import inspect
import json
import re
import typing
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl

from fastapi import Request, params
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, TypeAdapter, ValidationError

from gateway.errors import RequestTooLargeError

Source = Literal["path", "query", "body"]

_PATH_NAMES = re.compile(r"{([^}:]+)(?::[^}]*)?}")
_MISSING: Any = object()


class UnsupportedParameterError(TypeError):
    """A connector operation declares a parameter the pipeline does not bind."""


@dataclass(frozen=True, slots=True)
class BoundParameter:
    """How one parameter of an operation is read from a request and validated."""

    name: str
    source: Source
    alias: str
    adapter: TypeAdapter[Any]
    default: Any

    @property
    def required(self) -> bool:
        return self.default is _MISSING

    @property
    def location(self) -> tuple[str, ...]:
        """Where errors about it point, as FastAPI says: ``("query", "from")``, ``("body",)``."""
        return (self.source,) if self.source == "body" else (self.source, self.alias)


def bound_parameters(path: str, parameters: list[inspect.Parameter]) -> tuple[BoundParameter, ...]:
    """The binding of each of ``parameters`` of the operation served at ``path``."""
    path_names = set(_PATH_NAMES.findall(path))
    bound = tuple(_bind(parameter, path_names) for parameter in parameters)
    if sum(1 for parameter in bound if parameter.source == "body") > 1:
        raise UnsupportedParameterError(f"{path}: an operation takes at most one body")
    return bound


def _bind(parameter: inspect.Parameter, path_names: set[str]) -> BoundParameter:
    annotation = parameter.annotation
    metadata = (
        typing.get_args(annotation)[1:] if typing.get_origin(annotation) is typing.Annotated else ()
    )
    marks = [item for item in metadata if isinstance(item, params.Param | params.Body)]
    if len(marks) > 1:
        raise UnsupportedParameterError(f"{parameter.name}: more than one FastAPI marker")
    mark = marks[0] if marks else None
    source = _source(parameter, mark, path_names)
    alias = mark.alias if mark is not None and mark.alias else parameter.name
    default = _MISSING if parameter.default is inspect.Parameter.empty else parameter.default
    if source == "path" and default is not _MISSING:
        raise UnsupportedParameterError(f"{parameter.name}: a path parameter has no default")
    return BoundParameter(
        name=parameter.name,
        source=source,
        alias=alias,
        adapter=TypeAdapter(annotation),
        default=default,
    )


def _source(
    parameter: inspect.Parameter, mark: params.Param | params.Body | None, path_names: set[str]
) -> Source:
    if isinstance(mark, params.Body):
        if isinstance(mark, params.Form | params.File):
            raise UnsupportedParameterError(f"{parameter.name}: forms and files are not bound")
        return "body"
    if isinstance(mark, params.Param):
        where = mark.in_.value
        if where not in ("path", "query"):
            raise UnsupportedParameterError(f"{parameter.name}: {where} parameters are not bound")
        if (where == "path") != (parameter.name in path_names):
            raise UnsupportedParameterError(f"{parameter.name}: not where its marker says")
        return typing.cast(Source, where)
    if parameter.name in path_names:
        return "path"
    annotation = parameter.annotation
    annotated = typing.get_origin(annotation) is typing.Annotated
    base = typing.get_args(annotation)[0] if annotated else annotation
    if inspect.isclass(base) and issubclass(base, BaseModel):
        return "body"
    return "query"


async def bind(request: Request, parameters: tuple[BoundParameter, ...]) -> dict[str, Any]:
    """The operation's keyword arguments from ``request``; raises ``RequestValidationError``."""
    query: dict[str, str] | None = None
    values: dict[str, Any] = {}
    errors: list[Any] = []
    for parameter in parameters:
        if parameter.source == "path":
            raw = request.scope["path_params"].get(parameter.alias, _MISSING)
        elif parameter.source == "query":
            if query is None:
                # The last value wins, as with FastAPI's scalar query parameters.
                query = dict(
                    parse_qsl(
                        request.scope["query_string"].decode("latin-1"), keep_blank_values=True
                    )
                )
            raw = query.get(parameter.alias, _MISSING)
        else:
            raw = await _json_body(request)
        if raw is _MISSING:
            if parameter.required:
                errors.append(
                    {
                        "type": "missing",
                        "loc": parameter.location,
                        "msg": "Field required",
                        "input": None,
                    }
                )
            else:
                values[parameter.name] = parameter.default
            continue
        try:
            values[parameter.name] = parameter.adapter.validate_python(raw, from_attributes=True)
        except ValidationError as exc:
            errors.extend(
                {**error, "loc": (*parameter.location, *error["loc"])}
                for error in exc.errors(include_url=False)
            )
    if errors:
        raise RequestValidationError(errors)
    return values


async def _json_body(request: Request) -> Any:
    """The decoded JSON body, the raw bytes when it is not declared JSON, or nothing."""
    try:
        body = await request.body()
    except RequestTooLargeError as exc:
        raise exc.error from None
    if not body:
        return _MISSING
    content_type = request.headers.get("content-type")
    if not content_type:
        return body
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    if message.get_content_maintype() != "application" or not (
        subtype == "json" or subtype.endswith("+json")
    ):
        return body
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        # Besides malformed JSON and bytes that are not UTF-8 (both ValueErrors): integers
        # longer than Python converts (ValueError) and nesting deeper than it recurses.
        position = 0
        if isinstance(exc, json.JSONDecodeError):
            position = exc.pos
        elif isinstance(exc, UnicodeDecodeError):
            position = exc.start
        raise RequestValidationError(
            [
                {
                    "type": "json_invalid",
                    "loc": ("body", position),
                    "msg": "JSON decode error",
                    "input": {},
                }
            ]
        ) from exc
