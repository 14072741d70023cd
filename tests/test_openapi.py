"""The OpenAPI document: committed as generated, complete for partners, and served with its docs.

A partner builds its client from this document alone, so each /api operation must say which
scope it needs, which headers it takes, which problems it may answer and what an answer looks
like; and the committed copy must be exactly what the code serves.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from typer.testing import CliRunner

from gateway.cli.app import app as cli
from gateway.contracts import generate_document
from gateway.docs import DOCS_PATH, REDOC_PATH, STATIC_PATH
from gateway.errors import PROBLEM_MEDIA_TYPE
from gateway.oauth.resource import route_scopes, served_routes
from gateway.openapi import iter_operations, render

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "openapi" / "openapi.json"
PROBLEM_REF = "#/components/schemas/Problem"

Document = dict[str, Any]


@pytest.fixture(scope="module")
def document() -> Document:
    return generate_document()


def _api_operations(document: Document) -> list[tuple[str, str, Document]]:
    return [entry for entry in iter_operations(document) if entry[0].startswith("/api/")]


def _label(path: str, method: str) -> str:
    return f"{method.upper()} {path}"


def test_the_committed_document_is_what_the_code_generates(document: Document) -> None:
    committed = COMMITTED.read_text(encoding="utf-8") if COMMITTED.is_file() else ""
    assert committed == render(document), (
        "openapi/openapi.json differs from what the code generates: run `gateway openapi` "
        "(make openapi) and commit the file"
    )


def test_openapi_check_fails_on_a_stale_file_and_names_the_command(tmp_path: Path) -> None:
    target = tmp_path / "openapi.json"
    runner = CliRunner()
    written = runner.invoke(cli, ["openapi", "--output", str(target)])
    assert written.exit_code == 0, written.output
    assert runner.invoke(cli, ["openapi", "--output", str(target), "--check"]).exit_code == 0

    stale = json.loads(target.read_text(encoding="utf-8"))
    stale["info"]["version"] = "0.0.0"
    target.write_text(render(stale), encoding="utf-8")
    checked = runner.invoke(cli, ["openapi", "--output", str(target), "--check"])
    assert checked.exit_code == 1
    assert "gateway openapi" in checked.output


def test_the_document_is_stable_json(document: Document) -> None:
    text = render(document)
    assert text.endswith("}\n")
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


async def test_the_served_document_is_the_generated_one(
    client: httpx.AsyncClient, document: Document
) -> None:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    assert response.json() == document


def test_every_reference_resolves(document: Document) -> None:
    references = set(re.findall(r'"\$ref": "([^"]+)"', json.dumps(document)))
    assert PROBLEM_REF in references
    dangling = set()
    for reference in references:
        node: Any = document
        for token in reference.removeprefix("#/").split("/"):
            node = node.get(token) if isinstance(node, dict) else None
        if not reference.startswith("#/") or node is None:
            dangling.add(reference)
    assert not dangling


def test_info_servers_and_tags_are_documented(document: Document) -> None:
    info = document["info"]
    assert info["description"].strip()
    assert info["contact"]["name"]
    assert info["license"]["identifier"] == "EUPL-1.2"
    assert document["servers"] == [
        {"url": "/", "description": document["servers"][0]["description"]}
    ]
    described = {tag["name"]: tag.get("description", "") for tag in document["tags"]}
    used = {tag for _, _, operation in iter_operations(document) for tag in operation["tags"]}
    assert used <= described.keys()
    assert all(described[tag].strip() for tag in used), "a tag without description"


def test_every_api_operation_documents_the_scope_it_enforces(
    document: Document, app: FastAPI
) -> None:
    documented = {
        _label(path, method): operation for path, method, operation in _api_operations(document)
    }
    assert documented
    schemes = document["components"]["securitySchemes"]["oauth2"]["flows"]["clientCredentials"]
    enforced: dict[str, set[str]] = {}
    for path, original, served in served_routes(app):
        if isinstance(original, APIRoute) and path.startswith("/api/"):
            for method in original.methods or ():
                enforced[_label(path, method)] = route_scopes(served)
    assert enforced.keys() == documented.keys()
    for label, operation in documented.items():
        security = operation.get("security")
        assert security, f"{label}: no security requirement"
        scopes = {scope for requirement in security for scope in requirement["oauth2"]}
        assert scopes == enforced[label], f"{label}: documents {scopes}, enforces {enforced[label]}"
        assert scopes <= schemes["scopes"].keys()
        if "x-scope" in operation:
            assert security == [{"oauth2": [operation["x-scope"]]}]


def test_every_connector_operation_documents_the_pipeline_headers(document: Document) -> None:
    connector_operations = [
        entry for entry in _api_operations(document) if "x-connector" in entry[2]
    ]
    assert len(connector_operations) >= 10
    for path, method, operation in connector_operations:
        headers = {
            parameter["name"]: parameter
            for parameter in operation["parameters"]
            if parameter["in"] == "header"
        }
        label = _label(path, method)
        assert headers["Purpose"]["required"] is True, label
        assert headers["Recipient"]["required"] is True, label
        assert headers["Case-Reference"]["required"] is False, label
        assert all(headers[name].get("description") for name in headers), label
        if method == "post":
            assert headers["Idempotency-Key"]["required"] is False, label
        for parameter in operation["parameters"]:
            assert "null" not in json.dumps(parameter["schema"]), f"{label}: {parameter['name']}"


def test_every_api_operation_documents_its_problems(document: Document) -> None:
    for path, method, operation in _api_operations(document):
        label = _label(path, method)
        responses = operation["responses"]
        for status in ("401", "403", "422"):
            assert status in responses, f"{label}: no {status}"
        if "x-connector" in operation:
            assert {"400", "429", "503"} <= responses.keys(), label
        for status, response in responses.items():
            if status[0] not in "45":
                continue
            media = response["content"][PROBLEM_MEDIA_TYPE]
            assert media["schema"] == {"$ref": PROBLEM_REF}, f"{label} {status}"
            assert media["example"]["status"] == int(status), f"{label} {status}"
            assert response["description"].strip(), f"{label} {status}"


def test_errors_are_problems_outside_the_oauth_endpoints(document: Document) -> None:
    # RFC 6749 fixes the OAuth endpoints' error bodies (application/json with `error`).
    for path, method, operation in iter_operations(document):
        if path.startswith("/oauth/"):
            continue
        for status, response in operation["responses"].items():
            if status[0] in "45" and "content" in response:
                assert list(response["content"]) == [PROBLEM_MEDIA_TYPE], (
                    f"{_label(path, method)} {status}"
                )


# Answers whose model gives no example yet, named so that the gap stays visible; an entry
# that gets its example must leave this set (the test says so).
AWAITING_EXAMPLES: frozenset[str] = frozenset()


def test_every_api_answer_has_an_example_and_its_headers(document: Document) -> None:
    for path, method, operation in _api_operations(document):
        label = _label(path, method)
        successes = {s: r for s, r in operation["responses"].items() if s.startswith("2")}
        assert successes, label
        for status, response in successes.items():
            for media_type, media in response["content"].items():
                model = media.get("schema", {}).get("$ref", "").rsplit("/", 1)[-1]
                if "example" in media or "examples" in media:
                    assert model not in AWAITING_EXAMPLES, f"{model} has an example now"
                    continue
                assert model in AWAITING_EXAMPLES, f"{label} {status} {media_type}: no example"
            headers = response["headers"]
            request_id = headers["X-Request-Id"]["$ref"].rsplit("/", 1)[-1]
            assert document["components"]["headers"][request_id]["required"] is True
            assert "RateLimit-Remaining" in headers, label
            if operation.get("deprecated"):
                assert {"Deprecation", "Sunset", "Link"} <= headers.keys(), label


def test_operation_descriptions_are_not_indented(document: Document) -> None:
    for path, method, operation in iter_operations(document):
        description = operation.get("description", "")
        assert "\n    " not in description, _label(path, method)


def _local_assets(html: str) -> list[str]:
    return re.findall(r'(?:src|href)\s*=\s*["\']([^"\']+)["\']', html) + re.findall(
        r"url:\s*'([^']+)'", html
    )


@pytest.mark.parametrize("page", [DOCS_PATH, REDOC_PATH])
async def test_the_docs_load_nothing_from_outside(client: httpx.AsyncClient, page: str) -> None:
    response = await client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert not re.search(r"https?://", html), "the docs page refers to an outside address"
    assets = [url for url in _local_assets(html) if url.startswith(STATIC_PATH)]
    assert len(assets) >= 2
    for url in assets:
        asset = await client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 1000, url
    assert "/openapi.json" in html


async def test_swagger_ui_is_version_5_and_its_validator_is_off(client: httpx.AsyncClient) -> None:
    html = (await client.get(DOCS_PATH)).text
    assert '"validatorUrl": null' in html
    bundle = await client.get(f"{STATIC_PATH}/swagger-ui-bundle.js")
    assert bundle.headers["content-type"].startswith(("application/javascript", "text/javascript"))
    # Swagger UI 4 cannot show an OpenAPI 3.1 document; 5 can.
    assert b"SwaggerUIBundle" in bundle.content
    assert re.search(rb'"5\.[0-9]+\.[0-9]+"', bundle.content)
