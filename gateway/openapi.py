"""The OpenAPI document the gateway serves, commits (``openapi/openapi.json``) and checks.

FastAPI generates paths and schemas from the routes; :func:`complete_document` then adds what
belongs to the API as a whole, so that the served document, the committed one and the frozen
connector schemas (:mod:`gateway.contracts`) are one and the same:

- ``info`` (description, contact, licence), a relative ``servers`` entry and the description
  of every tag (connector tags from their manifests);
- the ``Problem`` schema (RFC 9457) that every error response refers to, an example problem per
  status, and problem+json in place of FastAPI's default validation error;
- the pipeline's headers as partners must send them: ``Purpose`` and ``Recipient`` required
  and ``Case-Reference`` on every connector operation (the guard reads them off the request
  and refuses one without them with a problem of its own, so FastAPI does not know them),
  ``Idempotency-Key`` on POST operations, and the response headers every answer carries;
- one example per success response, lifted from its schema so that viewers show it.

Nothing here depends on settings: the document is the same on every machine, which is what
lets CI compare it with the committed copy byte for byte (:func:`render`).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from typing import Any

from fastapi import FastAPI

from connectors.kit import ConnectorVersion
from connectors.registry import VERSIONS
from gateway.errors import PROBLEM_MEDIA_TYPE, PROBLEM_TYPE_BASE

__all__ = [
    "PROBLEM_SCHEMA",
    "complete_document",
    "install_openapi",
    "iter_operations",
    "render",
]

Document = dict[str, Any]

PROBLEM_REF = "#/components/schemas/Problem"
DESCRIPTION = """\
Through this gateway URSSAF shares what it knows about self-employed people with the public
bodies that would otherwise ask them again ("Dites-le nous une fois"): micro-entrepreneurs'
declared turnover, affiliation status and its changes, training contribution (CFP)
attestations, and ACRE exemption proofs.

**Access.** Get an access token at `/oauth/token` (OAuth 2.0 client credentials, with a
`private_key_jwt` client assertion), then call `/api/...` with `Authorization: Bearer <token>`.
Each connector version needs its own scope, and a habilitation of your organisation for it.

**Every data request states** its purpose (`Purpose`, one your habilitation allows) and the
SIRET of the requesting unit (`Recipient`); `Case-Reference` may name your case file. Where a
habilitation rests on consent, the person's active consent must be recorded first
(`/api/v1/consents`). Every request, answered or refused, leaves an audit record.

**Identifiers.** A NIR only ever travels in a request body, never in a URL.

**Errors** are `application/problem+json` (RFC 9457) with a stable `code`; the codes are listed
in each operation. **Versions** never change incompatibly once published: a breaking change is
a new version; a deprecated version answers with `Deprecation`, `Sunset` and `Link` headers,
then 410 after its sunset date.
"""
CONTACT = {"name": "URSSAF — operators of the tell-us-once gateway"}
LICENSE = {"name": "EUPL-1.2", "identifier": "EUPL-1.2"}
SERVERS = [{"url": "/", "description": "The gateway serving this document"}]
TAG_DESCRIPTIONS = {
    "operations": "Liveness and readiness probes for orchestrators and load balancers.",
    "oauth": "OAuth 2.0 authorisation server: tokens (client credentials), revocation, "
    "introspection, server metadata and the keys that sign access tokens.",
    "consents v1": "Record, read and revoke a person's consent, for habilitations whose legal "
    "basis is consent. Scope `consent:write`.",
}

PROBLEM_SCHEMA: Document = {
    "title": "Problem",
    "type": "object",
    "description": "An error, as RFC 9457 problem details, with a stable machine `code`. "
    "Some errors add members of their own (OAuth's `error`, `error_description`, `scope`).",
    "properties": {
        "type": {
            "type": "string",
            "description": f"URI of the problem type: `{PROBLEM_TYPE_BASE}<code>`.",
        },
        "title": {"type": "string", "description": "Short summary of the problem type."},
        "status": {"type": "integer", "description": "The HTTP status code."},
        "detail": {
            "type": "string",
            "description": "What went wrong, for a person; never repeats an identifier.",
        },
        "code": {
            "type": "string",
            "description": "Stable machine code (`dotted.snake_case`): act on this one.",
        },
        "instance": {
            "type": "string",
            "description": "`urn:request:<request id>`: quote it to the operators.",
        },
        "request_id": {"type": "string", "description": "The request id (`X-Request-Id`)."},
        "errors": {
            "type": "array",
            "description": "Validation failures: where, and why (the input is never echoed).",
            "items": {
                "type": "object",
                "properties": {
                    "location": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "Where: `body`, `query`, `path` or `header`, then names.",
                    },
                    "message": {"type": "string", "description": "Why it was refused."},
                },
                "required": ["location", "message"],
            },
        },
    },
    "required": ["type", "title", "status", "detail", "code"],
    "additionalProperties": True,
}

# One representative problem per status, shown as the example of that response.
_PROBLEM_EXAMPLES: dict[str, tuple[str, str, str]] = {
    "400": ("purpose.missing", "Bad request", "State the purpose of the request in `Purpose`."),
    "401": (
        "token.missing",
        "Unauthorized",
        "This route needs an access token: Authorization: Bearer <token>.",
    ),
    "403": (
        "token.insufficient_scope",
        "Forbidden",
        "This route needs the scope turnover:read.",
    ),
    "404": ("subject.unknown", "Not found", "No account is known for this identifier."),
    "409": ("request.conflict", "Conflict", "The request conflicts with the current state."),
    "410": ("version.sunset", "Gone", "Version 1 of turnover was withdrawn; use /api/v2."),
    "413": ("batch.too_many_items", "Payload too large", "A batch holds 10000 items at most."),
    "422": (
        "request.invalid",
        "Unprocessable content",
        "The request does not match the documented schema.",
    ),
    "429": ("rate_limit.exceeded", "Too many requests", "More than 600 requests this minute."),
    "502": ("upstream.bad_answer", "Bad gateway", "The upstream answered outside its contract."),
    "503": (
        "audit.unavailable",
        "Service unavailable",
        "The request could not be recorded in the audit trail, so no data was sent. Retry later.",
    ),
    "504": ("upstream.timeout", "Gateway timeout", "The upstream did not answer in time."),
}
_EXAMPLE_REQUEST_ID = "4f1c9a7e2b8d4c6f9e0a1b2c3d4e5f60"

# Response headers, described once under components.headers and referred to by name.
RESPONSE_HEADERS: dict[str, Document] = {
    "X-Request-Id": {
        "description": "The request id: the one sent when acceptable, else a new one. "
        "Quote it to the operators.",
        "required": True,
    },
    "RateLimit-Limit": {
        "description": "Requests allowed in the current window for this client and scope."
    },
    "RateLimit-Remaining": {"description": "Requests left in the current window."},
    "RateLimit-Reset": {"description": "Seconds until the window resets."},
    "RateLimit-Policy": {"description": "The policy: `<limit>;w=<window seconds>`."},
    "Deprecation": {"description": "When this version was deprecated (RFC 9745, `@<unix time>`)."},
    "Sunset": {
        "description": "When this version stops answering (RFC 8594, an HTTP date); 410 after it."
    },
    "Link": {"description": 'The version replacing this one: `<...>; rel="successor-version"`.'},
    "Idempotent-Replayed": {
        "description": "`true` when this answer is the replay of an earlier request with the "
        "same `Idempotency-Key`."
    },
    "WWW-Authenticate": {
        "description": "The Bearer challenge (RFC 6750): `error`, `error_description`, and "
        "`scope` when a scope is missing."
    },
    "Retry-After": {"description": "Seconds to wait before retrying."},
}
RATE_LIMIT_HEADERS = (
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "RateLimit-Policy",
)
DEPRECATION_HEADERS = ("Deprecation", "Sunset", "Link")
IDEMPOTENCY_KEY_PARAMETER: Document = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Optional: 1 to 255 visible ASCII characters. A retry of the same request "
    "(path, query, `Purpose`, `Recipient`, `Case-Reference` and body) with the same key gets "
    "the first answer again (`Idempotent-Replayed: true`), kept one day, once the token, "
    "habilitation and consent checks pass again; the same key with any of these changed, or "
    "after the habilitation changed, is refused (422 `idempotency.key_reused`).",
    "schema": {"type": "string", "pattern": "^[!-~]{1,255}$", "examples": ["b7d1f0c2-batch-17"]},
}
# The headers every connector operation reads (gateway.pipeline.guard reads them off the request
# itself, so FastAPI does not see them as parameters).
PIPELINE_HEADER_PARAMETERS: tuple[Document, ...] = tuple(
    {
        "description": description,
        "in": "header",
        "name": name,
        "required": required,
        "schema": {
            "description": description,
            "examples": [example],
            "title": name,
            "type": "string",
        },
    }
    for name, required, description, example in (
        (
            "Purpose",
            True,
            "The purpose code of this request; one the partner's habilitation allows.",
            "rsa-instruction",
        ),
        (
            "Recipient",
            True,
            "SIRET of the partner's unit making the request (14 digits).",
            "53482012700028",
        ),
        (
            "Case-Reference",
            False,
            "Optional: the partner's case file that caused the request (100 characters).",
            "DOSSIER-2026-000123",
        ),
    )
)
HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


def render(document: Mapping[str, Any]) -> str:
    """The stable text of a document: sorted keys, two-space indent, one final newline."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def install_openapi(app: FastAPI) -> None:
    """Serve the completed document at ``app.openapi_url`` (and from ``app.openapi()``)."""
    generate = FastAPI.openapi
    cache: dict[str, Any] = {}

    def openapi() -> Document:
        # FastAPI caches its own document until routes change; complete each new one once.
        raw = generate(app)
        if cache.get("raw") is not raw:
            cache["raw"] = raw
            cache["done"] = complete_document(copy.deepcopy(raw), VERSIONS)
        done: Document = cache["done"]
        return done

    app.openapi = openapi  # type: ignore[method-assign]


def complete_document(document: Document, versions: tuple[ConnectorVersion, ...]) -> Document:
    """Add to FastAPI's document what the API as a whole promises (see the module docstring)."""
    by_key = {version.key: version for version in versions}
    info = document.setdefault("info", {})
    info["description"] = DESCRIPTION
    info["contact"] = CONTACT
    info["license"] = LICENSE
    document["servers"] = SERVERS
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    components["headers"] = {
        name: {**header, "schema": {"type": "string"}} for name, header in RESPONSE_HEADERS.items()
    }
    for path, method, operation in iter_operations(document):
        _dedupe_security(operation)
        _complete_parameters(operation, method)
        version = by_key.get(operation.get("x-connector", ""))
        _complete_responses(operation, schemas, path, method, version)
    _drop_unused_schemas(document, ("HTTPValidationError", "ValidationError"))
    document["tags"] = _tags(document, by_key)
    return document


def iter_operations(document: Mapping[str, Any]) -> Iterator[tuple[str, str, Document]]:
    """Every (path, method, operation) of a document, in document order."""
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield path, method, operation


def _dedupe_security(operation: Document) -> None:
    # A route declaring its scope in openapi_extra and through its dependency gets it twice.
    requirements = operation.get("security")
    if not requirements:
        return
    unique: list[Any] = []
    for requirement in requirements:
        if requirement not in unique:
            unique.append(requirement)
    operation["security"] = unique


def _complete_parameters(operation: Document, method: str) -> None:
    parameters: list[Document] = operation.get("parameters", [])
    for parameter in parameters:
        # A parameter is absent or a string on the wire, never JSON null: "optional" is said
        # by `required`, and the null alternative would only invite clients to send "null".
        parameter["schema"] = _without_null(parameter.get("schema", {}))
    if "x-connector" in operation:
        parameters.extend(copy.deepcopy(list(PIPELINE_HEADER_PARAMETERS)))
    if "x-connector" in operation and method == "post":
        names = {parameter["name"].lower() for parameter in parameters}
        if IDEMPOTENCY_KEY_PARAMETER["name"].lower() not in names:
            parameters.append(copy.deepcopy(IDEMPOTENCY_KEY_PARAMETER))
    if parameters:
        operation["parameters"] = parameters


def _without_null(schema: Document) -> Document:
    alternatives = schema.get("anyOf")
    if not isinstance(alternatives, list):
        return schema
    kept = [alternative for alternative in alternatives if alternative != {"type": "null"}]
    if len(kept) != 1 or len(kept) == len(alternatives):
        return schema
    merged = {key: value for key, value in schema.items() if key != "anyOf"}
    return {**kept[0], **merged}


def _complete_responses(
    operation: Document,
    schemas: Mapping[str, Any],
    path: str,
    method: str,
    version: ConnectorVersion | None,
) -> None:
    protected = bool(operation.get("security"))
    responses = operation.setdefault("responses", {})
    if "requestBody" in operation and "400" not in responses:
        # The framework refuses a body it cannot even parse (not JSON, not UTF-8) with a 400.
        responses["400"] = {
            "description": "The body cannot be read: not JSON, or not UTF-8",
            "content": {PROBLEM_MEDIA_TYPE: {}},
        }
    for status, response in responses.items():
        content = response.get("content")
        if status == "422" and content is not None and PROBLEM_MEDIA_TYPE not in content:
            # FastAPI's default validation answer: the gateway renders it as a problem.
            response["content"] = content = {PROBLEM_MEDIA_TYPE: {}}
        headers = response.setdefault("headers", {})
        _add_headers(headers, "X-Request-Id")
        if content is None:
            continue
        if PROBLEM_MEDIA_TYPE in content:
            media = content[PROBLEM_MEDIA_TYPE]
            if not media.get("schema"):
                media["schema"] = {"$ref": PROBLEM_REF}
            media.setdefault("example", _problem_example(status))
            _problem_headers(status, headers)
        elif status.startswith("2"):
            for media in content.values():
                if "example" not in media and "examples" not in media:
                    example = _schema_example(media.get("schema", {}), schemas)
                    if example is not None:
                        media["example"] = example
        if protected and path.startswith("/api/"):
            _add_headers(headers, *RATE_LIMIT_HEADERS)
        if version is not None and version.deprecation is not None:
            _add_headers(headers, *DEPRECATION_HEADERS)
        if "x-connector" in operation and method == "post" and status.startswith("2"):
            _add_headers(headers, "Idempotent-Replayed")


def _add_headers(headers: Document, *names: str) -> None:
    for name in names:
        headers.setdefault(name, {"$ref": f"#/components/headers/{name}"})


def _problem_headers(status: str, headers: Document) -> None:
    if status in {"401", "403"}:
        _add_headers(headers, "WWW-Authenticate")
    if status in {"429", "503"}:
        _add_headers(headers, "Retry-After")


def _problem_example(status: str) -> Document:
    code, title, detail = _PROBLEM_EXAMPLES.get(
        status, (f"http.{status}", "Error", "The request failed.")
    )
    example: Document = {
        "type": PROBLEM_TYPE_BASE + code,
        "title": title,
        "status": int(status) if status.isdigit() else 500,
        "detail": detail,
        "code": code,
        "instance": f"urn:request:{_EXAMPLE_REQUEST_ID}",
        "request_id": _EXAMPLE_REQUEST_ID,
    }
    if code == "request.invalid":
        example["errors"] = [{"location": ["query", "from"], "message": "String should match"}]
    return example


def _schema_example(schema: Mapping[str, Any], schemas: Mapping[str, Any]) -> Any:
    """The first example a (referenced) schema gives, or None."""
    seen: set[str] = set()
    while True:
        examples = schema.get("examples")
        if isinstance(examples, list) and examples:
            return examples[0]
        if "example" in schema:
            return schema["example"]
        reference = schema.get("$ref")
        if not isinstance(reference, str) or reference in seen:
            return None
        seen.add(reference)
        schema = schemas.get(reference.rsplit("/", 1)[-1], {})


def _drop_unused_schemas(document: Document, names: tuple[str, ...]) -> None:
    schemas = document.get("components", {}).get("schemas", {})
    for name in names:
        if name not in schemas:
            continue
        text = json.dumps({key: value for key, value in document.items() if key != "components"})
        others = json.dumps({key: value for key, value in schemas.items() if key not in names})
        if f"#/components/schemas/{name}" not in text + others:
            del schemas[name]


def _tags(document: Document, by_key: Mapping[str, ConnectorVersion]) -> list[Document]:
    descriptions = dict(TAG_DESCRIPTIONS)
    order: list[str] = []
    for _, _, operation in iter_operations(document):
        for tag in operation.get("tags", []):
            if tag not in order:
                order.append(tag)
            version = by_key.get(operation.get("x-connector", ""))
            if version is not None:
                descriptions.setdefault(tag, _version_description(version))
    return [
        {"name": tag, **({"description": descriptions[tag]} if tag in descriptions else {})}
        for tag in order
    ]


def _version_description(version: ConnectorVersion) -> str:
    text = f"{version.title}. Scope `{version.scope}`. For: {', '.join(version.consumers)}."
    if version.releasable:
        fields = ", ".join(f"`{name}`" for name in sorted(version.releasable))
        text += f" Fields a habilitation may withhold (then absent from the answer): {fields}."
    deprecation = version.deprecation
    if deprecation is not None:
        text += (
            f" **Deprecated** since {deprecation.deprecated_on.isoformat()}: answers 410 after "
            f"{deprecation.sunset_on.isoformat()}; use `{deprecation.successor}`."
        )
    return text
