"""The contract of each published connector version, cut out of the gateway's OpenAPI document.

A contract is what a partner's code relies on: for every operation of the version, its method
and path, its inputs (path, query and header parameters, request body) and the schema of its
success response, with every schema it refers to copied under ``$defs`` so that one file stands
alone. Schemas are JSON Schema 2020-12, exactly as the served document has them (descriptions
and examples included, for the reader; the compatibility check ignores them).

The frozen copies live in ``contracts/schemas/<dataset>.v<N>.json``, one per version, written
by ``gateway contracts freeze`` and compared by ``gateway contracts check``
(:mod:`gateway.contracts.compat`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from connectors.kit import ConnectorVersion
from gateway.app import create_app
from gateway.openapi import render
from gateway.settings import Settings

__all__ = [
    "CONTRACTS_DIRECTORY",
    "Contract",
    "contract_path",
    "current_contracts",
    "generate_document",
    "read_frozen",
    "version_contract",
]

Contract = dict[str, Any]
CONTRACTS_DIRECTORY = Path("contracts/schemas")
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
COMPONENT_PREFIX = "#/components/schemas/"
DEFS_PREFIX = "#/$defs/"


def generate_document(app: FastAPI | None = None) -> dict[str, Any]:
    """The gateway's OpenAPI document as the code generates it, whatever the environment.

    The app is built on throwaway settings: nothing in the document depends on them, and no
    database is touched to build it.
    """
    if app is None:
        app = create_app(Settings(database_url="sqlite://", log_format="json"))
    document: dict[str, Any] = app.openapi()
    return document


def contract_path(directory: Path, key: str) -> Path:
    return directory / f"{key}.json"


def version_contract(document: Mapping[str, Any], version: ConnectorVersion) -> Contract:
    """The contract of one version, from the gateway's OpenAPI document."""
    components = document.get("components", {}).get("schemas", {})
    operations: dict[str, Any] = {}
    for operation in version.operations:
        path = version.prefix + operation.path
        entry = document["paths"][path][operation.method.lower()]
        operations[operation.name] = {
            "method": operation.method,
            "path": path,
            "summary": entry.get("summary", ""),
            "parameters": _parameters(entry.get("parameters", [])),
            "request_body": _request_body(entry.get("requestBody")),
            "response": _success_response(entry.get("responses", {})),
        }
    contract: Contract = {
        "connector": version.key,
        "dataset": version.dataset,
        "version": version.version,
        "scope": version.scope,
        "title": version.title,
        "json_schema_dialect": JSON_SCHEMA_DIALECT,
        "operations": operations,
    }
    contract = _relocate_references(contract)
    contract["$defs"] = _referenced_definitions(contract, components)
    return contract


def current_contracts(
    versions: Iterable[ConnectorVersion], document: Mapping[str, Any] | None = None
) -> dict[str, Contract]:
    """The contract of every version, keyed ``<dataset>.v<N>``, as the code defines them now."""
    document = document if document is not None else generate_document()
    return {version.key: version_contract(document, version) for version in versions}


def read_frozen(directory: Path) -> dict[str, Contract]:
    """The frozen contracts found in ``directory``, keyed by file name without ``.json``."""
    if not directory.is_dir():
        return {}
    return {
        path.name.removesuffix(".json"): json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(directory.glob("*.json"))
    }


def render_contract(contract: Contract) -> str:
    return render(contract)


def _parameters(parameters: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    kept = [
        {
            "name": parameter["name"],
            "in": parameter["in"],
            "required": bool(parameter.get("required", False)),
            "description": parameter.get("description", ""),
            "schema": parameter.get("schema", {}),
        }
        for parameter in parameters
    ]
    return sorted(kept, key=lambda parameter: (parameter["in"], parameter["name"].lower()))


def _request_body(body: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not body:
        return None
    content = body.get("content", {})
    media_type = "application/json" if "application/json" in content else next(iter(content), "")
    return {
        "required": bool(body.get("required", False)),
        "media_type": media_type,
        "schema": content.get(media_type, {}).get("schema", {}),
    }


def _success_response(responses: Mapping[str, Any]) -> dict[str, Any]:
    status = min((code for code in responses if code.startswith("2")), default="200")
    content = responses.get(status, {}).get("content", {})
    media_type = "application/json" if "application/json" in content else next(iter(content), "")
    return {
        "status": status,
        "media_type": media_type,
        "schema": content.get(media_type, {}).get("schema", {}),
    }


def _relocate_references(node: Any) -> Any:
    if isinstance(node, dict):
        relocated = {key: _relocate_references(value) for key, value in node.items()}
        reference = relocated.get("$ref")
        if isinstance(reference, str) and reference.startswith(COMPONENT_PREFIX):
            relocated["$ref"] = DEFS_PREFIX + reference.removeprefix(COMPONENT_PREFIX)
        return relocated
    if isinstance(node, list):
        return [_relocate_references(item) for item in node]
    return node


def _references(node: Any) -> Iterable[str]:
    if isinstance(node, dict):
        reference = node.get("$ref")
        if isinstance(reference, str) and reference.startswith(DEFS_PREFIX):
            yield reference.removeprefix(DEFS_PREFIX)
        for value in node.values():
            yield from _references(value)
    elif isinstance(node, list):
        for item in node:
            yield from _references(item)


def _referenced_definitions(contract: Contract, components: Mapping[str, Any]) -> dict[str, Any]:
    definitions: dict[str, Any] = {}
    pending = list(_references(contract))
    while pending:
        name = pending.pop()
        if name in definitions:
            continue
        definition = _relocate_references(components[name])
        definitions[name] = definition
        pending.extend(_references(definition))
    return definitions
