"""The pipeline binds an operation's parameters as FastAPI would: same values, same errors."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Body, FastAPI, Form, Header, Path, Query
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.requests import Request

from connectors.kit import Siren, YearMonth
from connectors.registry import VERSIONS
from gateway.pipeline.endpoint import operation_parameters
from gateway.pipeline.parameters import UnsupportedParameterError, bind, bound_parameters


class Search(BaseModel):
    siren: Siren
    months: int = Field(ge=1, le=12)


async def lookup(
    *,
    siren: Siren,
    year: Annotated[int, Path()],
    from_: Annotated[YearMonth | None, Query(alias="from")] = None,
    limit: Annotated[int, Query()] = 100,
) -> None:
    """A lookup declared as connector operations declare theirs."""


async def search(*, body: Search) -> None:
    """A search by body."""


LOOKUP_PATH = "/things/{siren}/{year}"


def _parameters(function: Callable[..., Any]) -> list[inspect.Parameter]:
    return list(inspect.signature(function, eval_str=True).parameters.values())


def _request(
    path_params: dict[str, str],
    query: str = "",
    body: bytes = b"",
    content_type: str | None = "application/json",
) -> Request:
    headers = [(b"content-type", content_type.encode())] if content_type else []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    scope = {
        "type": "http",
        "method": "POST" if body else "GET",
        "path": "/",
        "path_params": path_params,
        "query_string": query.encode(),
        "headers": headers,
    }
    return Request(scope, receive)


async def _errors(request: Request, function: Callable[..., Any], path: str) -> list[Any]:
    with pytest.raises(RequestValidationError) as raised:
        await bind(request, bound_parameters(path, _parameters(function)))
    return [(tuple(error["loc"]), error["msg"]) for error in raised.value.errors()]


async def test_values_are_validated_with_aliases_and_defaults() -> None:
    bound = bound_parameters(LOOKUP_PATH, _parameters(lookup))
    values = await bind(_request({"siren": "732829320", "year": "2025"}, "from=2026-01"), bound)
    assert values == {"siren": "732829320", "year": 2025, "from_": "2026-01", "limit": 100}


async def test_the_last_of_repeated_query_values_wins() -> None:
    bound = bound_parameters(LOOKUP_PATH, _parameters(lookup))
    values = await bind(_request({"siren": "732829320", "year": "1"}, "limit=5&limit=7"), bound)
    assert values["limit"] == 7


async def test_every_invalid_parameter_is_reported_at_its_location() -> None:
    errors = await _errors(
        _request({"siren": "732829321", "year": "soon"}, "from=2026-13&limit=x"),
        lookup,
        LOOKUP_PATH,
    )
    assert [location for location, _ in errors] == [
        ("path", "siren"),
        ("path", "year"),
        ("query", "from"),
        ("query", "limit"),
    ]


async def test_a_missing_body_is_required() -> None:
    errors = await _errors(_request({}, body=b""), search, "/search")
    assert errors == [(("body",), "Field required")]


async def test_a_body_that_is_not_json_is_a_json_error_at_its_position() -> None:
    errors = await _errors(_request({}, body=b'{"siren": '), search, "/search")
    assert errors == [(("body", 10), "JSON decode error")]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"siren": ' + b"9" * 5000 + b"}", id="an-integer-of-5000-digits"),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, id="nesting-100000-deep"),
        pytest.param(b'{"siren": "\xff"}', id="bytes-that-are-not-utf-8"),
    ],
)
async def test_a_body_python_cannot_decode_is_a_json_error_too(body: bytes) -> None:
    errors = await _errors(_request({}, body=body), search, "/search")
    assert [message for _, message in errors] == ["JSON decode error"]


async def test_a_body_not_declared_json_is_not_parsed() -> None:
    body = json.dumps({"siren": "732829320", "months": 3}).encode()
    errors = await _errors(_request({}, body=body, content_type="text/plain"), search, "/search")
    assert [location for location, _ in errors] == [("body",)]


async def test_a_json_body_is_validated_into_the_model_with_field_locations() -> None:
    bound = bound_parameters("/search", _parameters(search))
    body = json.dumps({"siren": "732829320", "months": 3}).encode()
    values = await bind(_request({}, body=body, content_type="application/merge+json"), bound)
    assert values == {"body": Search(siren="732829320", months=3)}
    bad = json.dumps({"siren": "732829320", "months": 13}).encode()
    assert [loc for loc, _ in await _errors(_request({}, body=bad), search, "/s")] == [
        ("body", "months")
    ]


async def _header(*, key: Annotated[str, Header()]) -> None: ...


async def _two_bodies(*, a: Search, b: Search) -> None: ...


async def _form(*, name: Annotated[str, Form()]) -> None: ...


async def _path_default(*, siren: Siren = "732829320") -> None: ...


async def _misplaced_path(*, year: Annotated[int, Path()]) -> None: ...


@pytest.mark.parametrize(
    "function",
    [_header, _two_bodies, _form, _path_default, _misplaced_path],
    ids=lambda f: f.__name__,
)
def test_a_parameter_the_pipeline_cannot_bind_fails_at_build_time(
    function: Callable[..., Any],
) -> None:
    with pytest.raises(UnsupportedParameterError):
        bound_parameters("/things/{siren}", _parameters(function))


def test_every_connector_operation_binds() -> None:
    for version in VERSIONS:
        for operation in version.operations:
            bound = bound_parameters(operation.path, operation_parameters(operation))
            assert [parameter.name for parameter in bound] == [
                parameter.name for parameter in operation_parameters(operation)
            ]


# The same inputs through FastAPI itself: the locations and messages must be the same.
FASTAPI_CASES = [
    ("GET", "/things/732829320/2025?from=2026-01&limit=5", None),
    ("GET", "/things/732829321/soon?from=2026-13&limit=x", None),
    ("GET", "/things/12/2025?from=", None),
    ("POST", "/search", b""),
    ("POST", "/search", b'{"siren": '),
    ("POST", "/search", b'{"siren": "732829320", "months": 13}'),
    ("POST", "/search", b'{"months": "x"}'),
    ("POST", "/search", b"[1, 2]"),
]


def _fastapi_app() -> FastAPI:
    app = FastAPI()

    @app.get(LOOKUP_PATH)
    async def fastapi_lookup(
        siren: Siren,
        year: Annotated[int, Path()],
        from_: Annotated[YearMonth | None, Query(alias="from")] = None,
        limit: Annotated[int, Query()] = 100,
    ) -> dict[str, Any]:
        return {"siren": siren, "year": year, "from_": from_, "limit": limit}

    @app.post("/search")
    async def fastapi_search(body: Annotated[Search, Body()]) -> dict[str, Any]:
        return {"body": body.model_dump()}

    return app


@pytest.mark.parametrize(("method", "target", "body"), FASTAPI_CASES)
async def test_errors_match_fastapis_own(method: str, target: str, body: bytes | None) -> None:
    transport = httpx.ASGITransport(app=_fastapi_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        headers = {"content-type": "application/json"} if body is not None else {}
        answer = await client.request(method, target, content=body, headers=headers)
    expected = [(tuple(e["loc"]), e["msg"]) for e in answer.json().get("detail", [])]

    path, _, query = target.partition("?")
    function: Callable[..., Any]
    if method == "GET":
        siren, year = path.split("/")[2:4]
        request = _request({"siren": siren, "year": year}, query)
        function, declared = lookup, LOOKUP_PATH
    else:
        request = _request({}, body=body or b"")
        function, declared = search, "/search"
    try:
        await bind(request, bound_parameters(declared, _parameters(function)))
        found: list[Any] = []
    except RequestValidationError as exc:
        found = [(tuple(error["loc"]), error["msg"]) for error in exc.errors()]
    assert found == expected
    assert (answer.status_code == 200) == (not found)
