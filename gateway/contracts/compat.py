"""Whether a connector version's contract changed compatibly (invariant 4).

Published versions never change incompatibly: a partner's code written against a version must
keep working. The check compares the frozen contract of each version with the one the code
defines now, from the consumer's side: what the gateway *sends* may narrow but never widen, what
it *accepts* may widen but never narrow.

Responses. Breaking: a field removed; a field's type changed or widened (a field that may now be
null counts); a required field made optional (consumers rely on its presence); a new enum value;
a new alternative in a union; a constraint loosened or changed (pattern, format, longer
``maxLength``, lower ``minimum``...). Compatible: a new field; a type narrowed; an optional field
made required; an enum value no longer sent; a constraint tightened.

New enum values in a response are breaking on purpose: partners map enums to closed types
(generated clients, database enums, switch statements) that reject a value they do not know, and
nothing in a response tells them a value is new. A new value therefore means a new version.

Requests. Breaking: a new required input (parameter, body field, or a required body where there
was none); an optional input made required; an input removed; a type narrowed; an enum value
removed; a constraint tightened or changed; an object closed to extra fields. Compatible: a new
optional input; a type widened; an enum value added; a constraint loosened.

Operations and versions. Breaking: an operation removed or moved (its method and path are its
identity), its success status or media type changed, the version's scope changed, a frozen
version no longer served (once a version is past its sunset, deleting its frozen file is the
deliberate, reviewed act that retires it). Compatible: a new operation, a version not yet
frozen.

Annotations (``title``, ``description``, ``examples``, ``default``...) never count. ``$ref``
(JSON pointers into the contract's ``$defs``), ``anyOf``/``oneOf`` and ``allOf`` are resolved;
recursive schemas are compared once per cycle.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["Change", "Report", "compare_all", "compare_contracts", "compare_schemas"]

Direction = Literal["request", "response"]
Schema = Mapping[str, Any]

ANY = "any"
_BOUNDS: dict[str, tuple[tuple[str, str], ...]] = {
    "string": (("minLength", "lower"), ("maxLength", "upper"), ("pattern", "exact")),
    "number": (
        ("minimum", "lower"),
        ("exclusiveMinimum", "lower"),
        ("maximum", "upper"),
        ("exclusiveMaximum", "upper"),
        ("multipleOf", "exact"),
    ),
    "array": (("minItems", "lower"), ("maxItems", "upper"), ("uniqueItems", "flag")),
    "object": (("minProperties", "lower"), ("maxProperties", "upper")),
}
# ``format`` applies to strings in practice but may sit on any type.
_ANY_TYPE_BOUNDS = (("format", "exact"),)


@dataclass(frozen=True)
class Change:
    """One difference between a frozen contract and the current one."""

    connector: str
    operation: str
    """``METHOD /path`` of the operation, or empty for a change of the whole version."""
    location: str
    """Where: ``response.periods[].amounts``, ``body.nir``, ``query parameter `from```..."""
    kind: str
    breaking: bool
    detail: str

    def __str__(self) -> str:
        where = " ".join(part for part in (self.connector, self.operation, self.location) if part)
        return f"{where}: {self.detail} [{self.kind}]"

    def as_dict(self) -> dict[str, Any]:
        return {
            "connector": self.connector,
            "operation": self.operation,
            "location": self.location,
            "kind": self.kind,
            "breaking": self.breaking,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Report:
    changes: tuple[Change, ...]

    @property
    def breaking(self) -> list[Change]:
        return [change for change in self.changes if change.breaking]

    @property
    def compatible(self) -> list[Change]:
        return [change for change in self.changes if not change.breaking]

    @property
    def ok(self) -> bool:
        return not self.breaking


def compare_all(frozen: Mapping[str, Any], current: Mapping[str, Any]) -> Report:
    """Compare every frozen contract with the current one of the same version."""
    changes: list[Change] = []
    for key in sorted(frozen.keys() - current.keys()):
        changes.append(
            Change(
                key,
                "",
                "",
                "version_removed",
                True,
                "this published version is no longer served; a version past its sunset is "
                "retired by deleting its frozen file",
            )
        )
    for key in sorted(current.keys() - frozen.keys()):
        changes.append(
            Change(key, "", "", "version_not_frozen", False, "new version, not frozen yet")
        )
    for key in sorted(frozen.keys() & current.keys()):
        changes.extend(compare_contracts(frozen[key], current[key], connector=key).changes)
    return Report(tuple(changes))


def compare_contracts(old: Schema, new: Schema, *, connector: str = "") -> Report:
    """Compare two contracts of one version (see the module docstring for the rules)."""
    connector = connector or str(new.get("connector", old.get("connector", "")))
    changes: list[Change] = []
    if old.get("scope") != new.get("scope"):
        changes.append(
            Change(
                connector,
                "",
                "scope",
                "scope_changed",
                True,
                f"scope changed from {old.get('scope')} to {new.get('scope')}",
            )
        )
    old_operations = _operations_by_route(old)
    new_operations = _operations_by_route(new)
    for route in sorted(old_operations.keys() - new_operations.keys()):
        changes.append(
            Change(connector, route, "", "operation_removed", True, "operation removed or moved")
        )
    for route in sorted(new_operations.keys() - old_operations.keys()):
        changes.append(Change(connector, route, "", "operation_added", False, "new operation"))
    for route in sorted(old_operations.keys() & new_operations.keys()):
        comparer = _Comparer(connector, route, old, new)
        comparer.operation(old_operations[route], new_operations[route])
        changes.extend(comparer.changes)
    return Report(tuple(changes))


def compare_schemas(
    old: Schema,
    new: Schema,
    direction: Direction,
    *,
    old_root: Schema | None = None,
    new_root: Schema | None = None,
    location: str = "",
) -> Report:
    """Compare two schemas, as a request input or as a response; roots hold their ``$defs``."""
    comparer = _Comparer("", "", old_root or old, new_root or new)
    comparer.schema(old, new, location or direction, direction, ())
    return Report(tuple(comparer.changes))


def _operations_by_route(contract: Schema) -> dict[str, Schema]:
    operations = contract.get("operations", {})
    return {f"{entry['method']} {entry['path']}": entry for entry in operations.values()}


class _Comparer:
    def __init__(self, connector: str, operation: str, old_root: Schema, new_root: Schema):
        self.connector = connector
        self.route = operation
        self.old_root = old_root
        self.new_root = new_root
        self.changes: list[Change] = []

    def add(self, location: str, kind: str, breaking: bool, detail: str) -> None:
        self.changes.append(Change(self.connector, self.route, location, kind, breaking, detail))

    # Operations -------------------------------------------------------------------------

    def operation(self, old: Schema, new: Schema) -> None:
        self.parameters(old.get("parameters", []), new.get("parameters", []))
        self.body(old.get("request_body"), new.get("request_body"))
        self.response(old.get("response", {}), new.get("response", {}))

    def parameters(self, old: Sequence[Schema], new: Sequence[Schema]) -> None:
        old_by_key = {_parameter_key(parameter): parameter for parameter in old}
        new_by_key = {_parameter_key(parameter): parameter for parameter in new}
        for key in sorted(new_by_key.keys() - old_by_key.keys()):
            parameter = new_by_key[key]
            where = _parameter_location(parameter)
            if parameter.get("required"):
                self.add(where, "required_input_added", True, "new required input")
            else:
                self.add(where, "input_added", False, "new optional input")
        for key in sorted(old_by_key.keys() - new_by_key.keys()):
            self.add(_parameter_location(old_by_key[key]), "input_removed", True, "input removed")
        for key in sorted(old_by_key.keys() & new_by_key.keys()):
            before, after = old_by_key[key], new_by_key[key]
            where = _parameter_location(after)
            if after.get("required") and not before.get("required"):
                self.add(where, "input_became_required", True, "optional input made required")
            self.schema(before.get("schema", {}), after.get("schema", {}), where, "request", ())

    def body(self, old: Schema | None, new: Schema | None) -> None:
        if new is None:
            if old is not None:
                self.add("body", "input_removed", True, "the request body is no longer accepted")
            return
        if old is None:
            if new.get("required"):
                self.add("body", "required_input_added", True, "a request body is now required")
            else:
                self.add("body", "input_added", False, "new optional request body")
            return
        if old.get("media_type") != new.get("media_type"):
            self.add(
                "body",
                "media_type_changed",
                True,
                f"body media type changed from {old.get('media_type')} to {new.get('media_type')}",
            )
        if new.get("required") and not old.get("required"):
            self.add("body", "input_became_required", True, "the request body is now required")
        self.schema(old.get("schema", {}), new.get("schema", {}), "body", "request", ())

    def response(self, old: Schema, new: Schema) -> None:
        for field, kind in (("status", "status_changed"), ("media_type", "media_type_changed")):
            if old.get(field) != new.get(field):
                self.add(
                    "response",
                    kind,
                    True,
                    f"success {field} changed from {old.get(field)} to {new.get(field)}",
                )
        self.schema(old.get("schema", {}), new.get("schema", {}), "response", "response", ())

    # Schemas ----------------------------------------------------------------------------

    def schema(
        self,
        old: Schema,
        new: Schema,
        where: str,
        direction: Direction,
        stack: tuple[tuple[str, str], ...],
    ) -> None:
        old_alternatives, old_ref = _alternatives(old, self.old_root)
        new_alternatives, new_ref = _alternatives(new, self.new_root)
        if old_ref or new_ref:
            pair = (old_ref, new_ref)
            if pair in stack:
                return  # a recursive schema: this pair is being compared further up
            stack = (*stack, pair)
        old_types = set().union(*(_types(alternative) for alternative in old_alternatives))
        new_types = set().union(*(_types(alternative) for alternative in new_alternatives))
        if direction == "response":
            for kind in sorted(new_types):
                if not _covers(old_types, kind):
                    detail = "may now be null" if kind == "null" else f"may now be of type {kind}"
                    self.add(where, "type_changed", True, f"{detail} (was {_names(old_types)})")
        else:
            for kind in sorted(old_types):
                if not _covers(new_types, kind):
                    detail = (
                        "no longer accepts null" if kind == "null" else f"no longer accepts {kind}"
                    )
                    self.add(where, "type_changed", True, f"{detail} (now {_names(new_types)})")
        for group in sorted({_group(kind) for kind in old_types} & {_group(k) for k in new_types}):
            for before, after in _pairs(old_alternatives, new_alternatives, group):
                self.alternative(before, after, group, where, direction, stack)
        if direction == "response":
            self.union_growth(old_alternatives, new_alternatives, where)

    def union_growth(self, old: Sequence[Schema], new: Sequence[Schema], where: str) -> None:
        # Several object alternatives (a tagged union): one more is a shape consumers never saw.
        old_titles = {alt.get("title") for alt in old if _group_of(alt) == "object"}
        new_titles = {alt.get("title") for alt in new if _group_of(alt) == "object"}
        if len(old_titles) > 1 or len(new_titles) > 1:
            for title in sorted(str(title) for title in new_titles - old_titles):
                self.add(where, "alternative_added", True, f"new alternative {title}")

    def alternative(
        self,
        old: Schema,
        new: Schema,
        group: str,
        where: str,
        direction: Direction,
        stack: tuple[tuple[str, str], ...],
    ) -> None:
        self.enum(old, new, where, direction)
        for keyword, bound in (*_BOUNDS.get(group, ()), *_ANY_TYPE_BOUNDS):
            self.bound(old.get(keyword), new.get(keyword), keyword, bound, where, direction)
        if group == "object":
            self.object(old, new, where, direction, stack)
        elif group == "array":
            self.schema(
                _as_schema(old.get("items")),
                _as_schema(new.get("items")),
                f"{where}[]",
                direction,
                stack,
            )

    def enum(self, old: Schema, new: Schema, where: str, direction: Direction) -> None:
        before, after = _enum(old), _enum(new)
        if before == after:
            return
        if direction == "response":
            if before is not None and after is None:
                self.add(where, "enum_widened", True, "no longer restricted to a list of values")
            elif before is not None and after is not None:
                for value in sorted(after - before):
                    self.add(where, "enum_value_added", True, f"new value {value}")
        else:
            if before is None and after is not None:
                self.add(where, "enum_restricted", True, "now restricted to a list of values")
            elif before is not None and after is not None:
                for value in sorted(before - after):
                    self.add(where, "enum_value_removed", True, f"value {value} no longer accepted")
                for value in sorted(after - before):
                    self.add(where, "enum_value_added", False, f"value {value} now accepted")

    def bound(
        self, old: Any, new: Any, keyword: str, bound: str, where: str, direction: Direction
    ) -> None:
        tightened, loosened = _moved(old, new, bound)
        if direction == "request" and tightened:
            self.add(where, "constraint_tightened", True, f"{keyword} {old!r} -> {new!r}")
        if direction == "response" and loosened:
            self.add(where, "constraint_loosened", True, f"{keyword} {old!r} -> {new!r}")

    def object(
        self,
        old: Schema,
        new: Schema,
        where: str,
        direction: Direction,
        stack: tuple[tuple[str, str], ...],
    ) -> None:
        old_properties: Mapping[str, Any] = old.get("properties", {})
        new_properties: Mapping[str, Any] = new.get("properties", {})
        old_required = set(old.get("required", []))
        new_required = set(new.get("required", []))
        for name in sorted(new_properties.keys() - old_properties.keys()):
            field = f"{where}.{name}"
            if direction == "response":
                self.add(field, "field_added", False, "new field")
            elif name in new_required:
                self.add(field, "required_input_added", True, "new required input")
            else:
                self.add(field, "input_added", False, "new optional input")
        for name in sorted(old_properties.keys() - new_properties.keys()):
            if direction == "response":
                self.add(f"{where}.{name}", "field_removed", True, "field removed")
            else:
                self.add(f"{where}.{name}", "input_removed", True, "input removed")
        for name in sorted(old_properties.keys() & new_properties.keys()):
            field = f"{where}.{name}"
            if direction == "response" and name in old_required and name not in new_required:
                self.add(field, "field_became_optional", True, "required field made optional")
            if direction == "request" and name in new_required and name not in old_required:
                self.add(field, "input_became_required", True, "optional input made required")
            self.schema(
                _as_schema(old_properties[name]),
                _as_schema(new_properties[name]),
                field,
                direction,
                stack,
            )
        self.extra_fields(old, new, where, direction, stack)

    def extra_fields(
        self,
        old: Schema,
        new: Schema,
        where: str,
        direction: Direction,
        stack: tuple[tuple[str, str], ...],
    ) -> None:
        before = old.get("additionalProperties", True)
        after = new.get("additionalProperties", True)
        if direction == "request" and before is not False and after is False:
            self.add(where, "extra_fields_refused", True, "fields not listed are now refused")
        if direction == "response" and before is False and after is not False:
            self.add(where, "extra_fields_allowed", True, "may now carry unlisted fields")
        if isinstance(before, Mapping) and isinstance(after, Mapping):
            self.schema(before, after, f"{where}.*", direction, stack)


# Helpers ------------------------------------------------------------------------------------


def _parameter_key(parameter: Schema) -> tuple[str, str]:
    location = str(parameter.get("in", ""))
    name = str(parameter.get("name", ""))
    # Header names are case-insensitive (RFC 9110).
    return location, name.lower() if location == "header" else name


def _parameter_location(parameter: Schema) -> str:
    return f"{parameter.get('in')} parameter `{parameter.get('name')}`"


def _as_schema(value: Any) -> Schema:
    if value is True or value is None:
        return {}
    if value is False:
        return {"not": {}}
    return value if isinstance(value, Mapping) else {}


def _lookup(root: Schema, reference: str) -> Schema:
    if not reference.startswith("#/"):
        raise ValueError(f"only local references are supported: {reference}")
    node: Any = root
    for token in reference[2:].split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, Mapping) or token not in node:
            raise ValueError(f"dangling reference: {reference}")
        node = node[token]
    return _as_schema(node)


def _resolve(schema: Schema, root: Schema) -> tuple[Schema, str]:
    """Follow ``$ref`` (keywords beside it win over the target's); return the last reference."""
    followed: list[str] = []
    while isinstance(schema.get("$ref"), str):
        reference = schema["$ref"]
        if reference in followed:
            break
        followed.append(reference)
        siblings = {key: value for key, value in schema.items() if key != "$ref"}
        schema = {**_lookup(root, reference), **siblings}
    return schema, followed[-1] if followed else ""


def _merge_all_of(schema: Schema, root: Schema) -> Schema:
    merged: dict[str, Any] = {key: value for key, value in schema.items() if key != "allOf"}
    for part in schema.get("allOf", []):
        resolved, _ = _resolve(_as_schema(part), root)
        if "allOf" in resolved:
            resolved = _merge_all_of(resolved, root)
        properties = {**resolved.get("properties", {}), **merged.get("properties", {})}
        required = sorted(set(resolved.get("required", [])) | set(merged.get("required", [])))
        merged = {**resolved, **merged}
        if properties:
            merged["properties"] = properties
        if required:
            merged["required"] = required
    return merged


def _alternatives(schema: Schema, root: Schema, depth: int = 0) -> tuple[list[Schema], str]:
    """The plain alternatives a schema allows (``anyOf``/``oneOf`` flattened, ``$ref`` followed)."""
    resolved, reference = _resolve(schema, root)
    if "allOf" in resolved:
        resolved = _merge_all_of(resolved, root)
    union = resolved.get("anyOf") or resolved.get("oneOf")
    if not isinstance(union, list) or depth > 16:
        return [resolved], reference
    flattened: list[Schema] = []
    for alternative in union:
        found, _ = _alternatives(_as_schema(alternative), root, depth + 1)
        flattened.extend(found)
    return flattened, reference


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _types(schema: Schema) -> set[str]:
    declared = schema.get("type")
    if isinstance(declared, str):
        return {declared}
    if isinstance(declared, list):
        return {str(kind) for kind in declared}
    if "const" in schema:
        return {_json_type(schema["const"])}
    if isinstance(schema.get("enum"), list):
        return {_json_type(value) for value in schema["enum"]}
    if "not" in schema and not schema["not"]:
        return set()  # false: nothing is valid
    if {"properties", "additionalProperties", "required"} & schema.keys():
        return {"object"}
    if {"items", "prefixItems"} & schema.keys():
        return {"array"}
    return {ANY}


def _covers(kinds: set[str], kind: str) -> bool:
    return ANY in kinds or kind in kinds or (kind == "integer" and "number" in kinds)


def _names(kinds: set[str]) -> str:
    return "|".join(sorted(kinds)) or "nothing"


def _group(kind: str) -> str:
    return "number" if kind == "integer" else kind


def _group_of(schema: Schema) -> str:
    kinds = _types(schema)
    return _group(next(iter(kinds))) if len(kinds) == 1 else ""


def _pairs(
    old: Sequence[Schema], new: Sequence[Schema], group: str
) -> Iterable[tuple[Schema, Schema]]:
    """Alternatives of one type group, paired: alone with alone, else by title."""
    before = [alt for alt in old if group in {_group(kind) for kind in _types(alt)}]
    after = [alt for alt in new if group in {_group(kind) for kind in _types(alt)}]
    if len(before) == 1 and len(after) == 1:
        yield before[0], after[0]
        return
    titled = {alt.get("title"): alt for alt in after if alt.get("title")}
    for alternative in before:
        match = titled.get(alternative.get("title"))
        if match is not None:
            yield alternative, match


def _enum(schema: Schema) -> set[str] | None:
    if "const" in schema:
        return {json.dumps(schema["const"], sort_keys=True)}
    values = schema.get("enum")
    if isinstance(values, list):
        return {json.dumps(value, sort_keys=True) for value in values}
    return None


def _moved(old: Any, new: Any, bound: str) -> tuple[bool, bool]:
    """(tightened, loosened) for one constraint keyword going from ``old`` to ``new``."""
    if old == new:
        return False, False
    if bound == "flag":
        return bool(new) and not old, bool(old) and not new
    if bound == "exact":
        return new is not None, old is not None
    if bound == "lower":
        return (
            new is not None and (old is None or new > old),
            old is not None and (new is None or new < old),
        )
    return (
        new is not None and (old is None or new < old),
        old is not None and (new is None or new > old),
    )
