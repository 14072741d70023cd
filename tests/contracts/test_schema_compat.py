"""Invariant 4: a published connector version's schema never changes incompatibly.

Unit tests of the checker on synthetic contracts, an end-to-end check on connector versions
built from pydantic models, the CLI, and the committed frozen schemas against the code.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Query
from pydantic import BaseModel, Field
from typer.testing import CliRunner

from connectors.kit import ConnectorContext, ConnectorVersion, Disclosure, Siren, Subject
from connectors.registry import VERSIONS
from gateway.cli.app import app as cli
from gateway.contracts import (
    compare_all,
    compare_contracts,
    compare_schemas,
    current_contracts,
    read_frozen,
    version_contract,
)
from gateway.contracts.cli import stale_contracts
from gateway.openapi import install_openapi, render
from gateway.pipeline.guard import authorise_for, justify
from gateway.pipeline.routes import add_connector_routes

ROOT = Path(__file__).resolve().parents[2]
FROZEN = ROOT / "contracts" / "schemas"

Contract = dict[str, Any]


def _contract(
    response: dict[str, Any],
    *,
    parameters: list[dict[str, Any]] | None = None,
    body: dict[str, Any] | None = None,
    defs: dict[str, Any] | None = None,
) -> Contract:
    return {
        "connector": "demo.v1",
        "scope": "demo:read",
        "operations": {
            "lookup": {
                "method": "POST" if body is not None else "GET",
                "path": "/api/v1/demo/{siren}",
                "parameters": parameters
                or [
                    {"name": "siren", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "request_body": body,
                "response": {"status": "200", "media_type": "application/json", "schema": response},
            }
        },
        "$defs": defs or {},
    }


def _object(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": required if required is not None else list(properties),
    }


ANSWER = _object(
    {
        "siren": {"type": "string", "description": "SIREN."},
        "total": {"type": "string"},
        "status": {"type": "string", "enum": ["active", "radiated"]},
        "as_of": {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]},
    }
)


def _kinds(old: Contract, new: Contract) -> list[tuple[str, bool]]:
    return [(change.kind, change.breaking) for change in compare_contracts(old, new).changes]


def _edited(contract: Contract, edit: Callable[[Contract], None]) -> Contract:
    changed = copy.deepcopy(contract)
    edit(changed)
    return changed


def _response(contract: Contract) -> dict[str, Any]:
    schema: dict[str, Any] = contract["operations"]["lookup"]["response"]["schema"]
    return schema


# The rules, one at a time ---------------------------------------------------------------------


def test_an_identical_contract_has_no_change() -> None:
    assert compare_contracts(_contract(ANSWER), _contract(ANSWER)).changes == ()


def test_annotations_never_count() -> None:
    def reword(contract: Contract) -> None:
        _response(contract)["properties"]["siren"]["description"] = "Another wording."
        _response(contract)["examples"] = [{"siren": "732829320"}]
        _response(contract)["title"] = "Renamed"

    assert compare_contracts(_contract(ANSWER), _edited(_contract(ANSWER), reword)).ok


def test_a_removed_response_field_is_breaking() -> None:
    after = _edited(_contract(ANSWER), lambda c: _response(c)["properties"].pop("total"))
    report = compare_contracts(_contract(ANSWER), after)
    assert not report.ok
    assert [(c.location, c.kind) for c in report.breaking] == [("response.total", "field_removed")]


def test_a_retyped_response_field_is_breaking() -> None:
    after = _edited(
        _contract(ANSWER), lambda c: _response(c)["properties"].update(total={"type": "number"})
    )
    assert _kinds(_contract(ANSWER), after) == [("type_changed", True)]


def test_a_response_field_that_may_now_be_null_is_breaking() -> None:
    nullable = {"anyOf": [{"type": "string"}, {"type": "null"}]}
    after = _edited(_contract(ANSWER), lambda c: _response(c)["properties"].update(total=nullable))
    report = compare_contracts(_contract(ANSWER), after)
    assert [c.detail for c in report.breaking] == ["may now be null (was string)"]


def test_a_response_field_no_longer_null_is_compatible() -> None:
    after = _edited(
        _contract(ANSWER),
        lambda c: _response(c)["properties"].update(
            as_of={"type": "string", "format": "date-time"}
        ),
    )
    assert compare_contracts(_contract(ANSWER), after).changes == ()


def test_a_required_response_field_made_optional_is_breaking() -> None:
    after = _edited(_contract(ANSWER), lambda c: _response(c)["required"].remove("total"))
    assert _kinds(_contract(ANSWER), after) == [("field_became_optional", True)]


def test_an_added_optional_response_field_is_compatible() -> None:
    def add(contract: Contract) -> None:
        _response(contract)["properties"]["category"] = {"type": "string"}

    report = compare_contracts(_contract(ANSWER), _edited(_contract(ANSWER), add))
    assert report.ok
    assert [(c.location, c.kind) for c in report.compatible] == [
        ("response.category", "field_added")
    ]


def test_a_new_enum_value_in_a_response_is_breaking_and_a_dropped_one_is_not() -> None:
    def add_value(contract: Contract) -> None:
        _response(contract)["properties"]["status"]["enum"].append("suspended")

    def drop_value(contract: Contract) -> None:
        _response(contract)["properties"]["status"]["enum"].remove("radiated")

    assert _kinds(_contract(ANSWER), _edited(_contract(ANSWER), add_value)) == [
        ("enum_value_added", True)
    ]
    assert compare_contracts(_contract(ANSWER), _edited(_contract(ANSWER), drop_value)).ok


def test_a_loosened_response_constraint_is_breaking() -> None:
    before = _edited(
        _contract(ANSWER), lambda c: _response(c)["properties"]["siren"].update(maxLength=9)
    )
    after = _edited(before, lambda c: _response(c)["properties"]["siren"].update(maxLength=14))
    assert _kinds(before, after) == [("constraint_loosened", True)]
    assert compare_contracts(after, before).ok


PARAMETERS = [
    {"name": "siren", "in": "path", "required": True, "schema": {"type": "string"}},
    {"name": "from", "in": "query", "required": False, "schema": {"type": "string"}},
]


def test_a_new_required_parameter_is_breaking_and_an_optional_one_is_not() -> None:
    before = _contract(ANSWER, parameters=PARAMETERS)
    required = _contract(
        ANSWER,
        parameters=[*PARAMETERS, {"name": "to", "in": "query", "required": True, "schema": {}}],
    )
    optional = _contract(
        ANSWER,
        parameters=[*PARAMETERS, {"name": "to", "in": "query", "required": False, "schema": {}}],
    )
    assert _kinds(before, required) == [("required_input_added", True)]
    assert _kinds(before, optional) == [("input_added", False)]


def test_an_optional_parameter_made_required_or_removed_is_breaking() -> None:
    before = _contract(ANSWER, parameters=PARAMETERS)
    made_required = _edited(
        before, lambda c: c["operations"]["lookup"]["parameters"][1].update(required=True)
    )
    removed = _edited(before, lambda c: c["operations"]["lookup"]["parameters"].pop(1))
    assert _kinds(before, made_required) == [("input_became_required", True)]
    assert _kinds(before, removed) == [("input_removed", True)]


def test_header_names_compare_without_case() -> None:
    header = {"name": "Purpose", "in": "header", "required": True, "schema": {"type": "string"}}
    before = _contract(ANSWER, parameters=[*PARAMETERS, header])
    after = _contract(ANSWER, parameters=[*PARAMETERS, {**header, "name": "purpose"}])
    assert compare_contracts(before, after).changes == ()


SEARCH = {
    "required": True,
    "media_type": "application/json",
    "schema": {"$ref": "#/$defs/Search"},
}
SEARCH_DEFS = {
    "Search": {
        "type": "object",
        "properties": {
            "nir": {"type": "string"},
            "from": {
                "anyOf": [{"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}$"}, {"type": "null"}]
            },
            "kind": {"type": "string", "enum": ["monthly", "quarterly"]},
        },
        "required": ["nir"],
        "additionalProperties": False,
    }
}


def _search(edit: Callable[[dict[str, Any]], None] | None = None) -> Contract:
    defs = copy.deepcopy(SEARCH_DEFS)
    if edit is not None:
        edit(defs["Search"])
    return _contract(ANSWER, body=SEARCH, defs=defs)


def test_a_new_required_body_field_is_breaking_and_an_optional_one_is_not() -> None:
    def required(search: dict[str, Any]) -> None:
        search["properties"]["reason"] = {"type": "string"}
        search["required"].append("reason")

    def optional(search: dict[str, Any]) -> None:
        search["properties"]["reason"] = {"type": "string"}

    report = compare_contracts(_search(), _search(required))
    assert [(c.location, c.kind) for c in report.breaking] == [
        ("body.reason", "required_input_added")
    ]
    assert _kinds(_search(), _search(optional)) == [("input_added", False)]


def test_a_narrowed_request_type_is_breaking_and_a_widened_one_is_not() -> None:
    def not_null(search: dict[str, Any]) -> None:
        search["properties"]["from"] = {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}$"}

    report = compare_contracts(_search(), _search(not_null))
    assert [(c.location, c.detail) for c in report.breaking] == [
        ("body.from", "no longer accepts null (now string)")
    ]
    assert compare_contracts(_search(not_null), _search()).ok


def test_request_enum_values_may_be_added_not_removed() -> None:
    def more(search: dict[str, Any]) -> None:
        search["properties"]["kind"]["enum"].append("yearly")

    def fewer(search: dict[str, Any]) -> None:
        search["properties"]["kind"]["enum"].remove("quarterly")

    assert _kinds(_search(), _search(more)) == [("enum_value_added", False)]
    assert _kinds(_search(), _search(fewer)) == [("enum_value_removed", True)]


def test_a_tightened_request_constraint_is_breaking_and_a_loosened_one_is_not() -> None:
    def other_pattern(search: dict[str, Any]) -> None:
        search["properties"]["from"]["anyOf"][0]["pattern"] = "^[0-9]{4}-(0[1-9]|1[0-2])$"

    def limited(search: dict[str, Any]) -> None:
        search["properties"]["nir"]["maxLength"] = 15

    assert _kinds(_search(), _search(other_pattern)) == [("constraint_tightened", True)]
    assert _kinds(_search(), _search(limited)) == [("constraint_tightened", True)]
    assert compare_contracts(_search(limited), _search()).ok


def test_closing_a_request_object_to_extra_fields_is_breaking() -> None:
    def opened(search: dict[str, Any]) -> None:
        del search["additionalProperties"]

    assert _kinds(_search(opened), _search()) == [("extra_fields_refused", True)]
    assert compare_contracts(_search(), _search(opened)).ok


def test_changes_behind_references_and_unions_are_found_with_their_location() -> None:
    defs = {
        "Answer": _object({"periods": {"type": "array", "items": {"$ref": "#/$defs/Period"}}}),
        "Period": _object(
            {"amounts": {"anyOf": [{"$ref": "#/$defs/Amounts"}, {"type": "null"}]}}, []
        ),
        "Amounts": _object({"sales": {"type": "string"}, "services": {"type": "string"}}),
    }
    before = _contract({"$ref": "#/$defs/Answer"}, defs=defs)
    after = _edited(before, lambda c: c["$defs"]["Amounts"]["properties"].pop("services"))
    report = compare_contracts(before, after)
    assert [(c.location, c.kind) for c in report.breaking] == [
        ("response.periods[].amounts.services", "field_removed")
    ]


def test_all_of_parts_are_merged() -> None:
    defs = {"Base": _object({"source": {"type": "string"}})}
    before = _contract(
        {"allOf": [{"$ref": "#/$defs/Base"}, _object({"siren": {"type": "string"}})]}, defs=defs
    )
    after = _edited(before, lambda c: c["$defs"]["Base"]["required"].clear())
    assert _kinds(before, after) == [("field_became_optional", True)]


def test_a_recursive_schema_is_compared_without_looping() -> None:
    node = _object(
        {
            "name": {"type": "string"},
            "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}},
        }
    )
    before = {"$defs": {"Node": node}}
    after = copy.deepcopy(before)
    after["$defs"]["Node"]["properties"]["name"] = {"type": "integer"}
    report = compare_schemas(
        {"$ref": "#/$defs/Node"},
        {"$ref": "#/$defs/Node"},
        "response",
        old_root=before,
        new_root=after,
    )
    assert [(c.location, c.kind) for c in report.breaking] == [("response.name", "type_changed")]


def test_an_integer_may_widen_to_a_number_in_a_request_only() -> None:
    integer, number = {"type": "integer"}, {"type": "number"}
    assert compare_schemas(integer, number, "request").ok
    assert not compare_schemas(integer, number, "response").ok
    assert compare_schemas(number, integer, "response").ok


def test_operations_and_versions_removed_are_breaking_and_added_are_not() -> None:
    before = _contract(ANSWER)
    moved = _edited(
        before, lambda c: c["operations"]["lookup"].update(path="/api/v1/other/{siren}")
    )
    assert sorted(_kinds(before, moved)) == [
        ("operation_added", False),
        ("operation_removed", True),
    ]
    report = compare_all({"demo.v1": before}, {"demo.v2": before})
    assert [(c.connector, c.kind, c.breaking) for c in report.changes] == [
        ("demo.v1", "version_removed", True),
        ("demo.v2", "version_not_frozen", False),
    ]


def test_a_changed_scope_is_breaking() -> None:
    after = _edited(_contract(ANSWER), lambda c: c.update(scope="demo:read-all"))
    assert _kinds(_contract(ANSWER), after) == [("scope_changed", True)]


# From connector code to verdict ---------------------------------------------------------------


class AmountsBefore(BaseModel):
    sales: Decimal = Field(description="Sales.")
    services: Decimal = Field(description="Services.")


class AnswerBefore(BaseModel):
    siren: str = Field(description="SIREN.")
    amounts: AmountsBefore = Field(description="Amounts.")


class AmountsRemoved(BaseModel):
    sales: Decimal = Field(description="Sales.")


class AnswerRemoved(BaseModel):
    siren: str = Field(description="SIREN.")
    amounts: AmountsRemoved = Field(description="Amounts.")


class AnswerAdded(AnswerBefore):
    category: str | None = Field(default=None, description="A new optional field.")


def _demo_contract(response_model: type[BaseModel], *, required_query: bool = False) -> Contract:
    version = ConnectorVersion(
        dataset="demo", version=9, scope="turnover:read", title="Demo", consumers=["CAF"]
    )

    if required_query:

        async def lookup_required(
            *, siren: Siren, year: int = Query(description="Year."), ctx: ConnectorContext
        ) -> Disclosure[Any]:
            raise NotImplementedError

        function: Any = lookup_required
    else:

        async def lookup(*, siren: Siren, ctx: ConnectorContext) -> Disclosure[Any]:
            raise NotImplementedError

        function = lookup
    function.__name__ = "lookup"
    version.operation(
        "GET",
        "/demo/{siren}",
        response_model=response_model,
        summary="Demo",
        subject=lambda params: Subject("siren", params["siren"]),
    )(function)
    app = FastAPI()
    add_connector_routes(app, [version], authorise_for=authorise_for, justify=justify)
    install_openapi(app)
    return version_contract(app.openapi(), version)


def test_a_field_removed_from_a_connector_model_fails_the_check() -> None:
    report = compare_contracts(_demo_contract(AnswerBefore), _demo_contract(AnswerRemoved))
    assert [(c.location, c.kind) for c in report.breaking] == [
        ("response.amounts.services", "field_removed")
    ]


def test_an_optional_field_added_to_a_connector_model_passes_the_check() -> None:
    report = compare_contracts(_demo_contract(AnswerBefore), _demo_contract(AnswerAdded))
    assert report.ok
    assert [(c.location, c.kind) for c in report.changes] == [("response.category", "field_added")]


def test_a_required_parameter_added_to_a_connector_operation_fails_the_check() -> None:
    before = _demo_contract(AnswerBefore)
    after = _demo_contract(AnswerBefore, required_query=True)
    assert [(c.location, c.kind) for c in compare_contracts(before, after).breaking] == [
        ("query parameter `year`", "required_input_added")
    ]


# The command line -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def generated() -> dict[str, Contract]:
    return current_contracts(VERSIONS)


def _invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args))


def _frozen_with(directory: Path, key: str, edit: Callable[[Contract], None]) -> None:
    path = directory / f"{key}.json"
    contract = json.loads(path.read_text(encoding="utf-8"))
    edit(contract)
    path.write_text(render(contract), encoding="utf-8")


def test_freeze_then_check_passes(tmp_path: Path, generated: dict[str, Contract]) -> None:
    frozen = tmp_path / "schemas"
    result = _invoke("contracts", "freeze", "--dir", str(frozen), "--json")
    assert result.exit_code == 0, result.output
    assert sorted(json.loads(result.output)["written"]) == sorted(generated)
    result = _invoke("contracts", "check", "--dir", str(frozen), "--strict")
    assert result.exit_code == 0, result.output


def test_check_fails_listing_a_breaking_change_and_freeze_refuses_it(tmp_path: Path) -> None:
    frozen = tmp_path / "schemas"
    assert _invoke("contracts", "freeze", "--dir", str(frozen)).exit_code == 0

    # The frozen turnover v2 promised a field the code no longer sends: as if it were removed.
    def promise_more(contract: Contract) -> None:
        amounts = contract["$defs"]["TurnoverAmountsV2"]
        amounts["properties"]["services_other"] = {"type": "string"}
        amounts["required"].append("services_other")

    _frozen_with(frozen, "turnover.v2", promise_more)
    before = (frozen / "turnover.v2.json").read_text(encoding="utf-8")

    check = _invoke("contracts", "check", "--dir", str(frozen), "--json")
    assert check.exit_code == 1
    breaking = json.loads(check.output)["breaking"]
    assert {(c["connector"], c["location"], c["kind"]) for c in breaking} == {
        ("turnover.v2", "response.periods[].amounts.services_other", "field_removed"),
        (
            "turnover.v2",
            "response.periods[].rectifications[].amounts.services_other",
            "field_removed",
        ),
    }
    assert {c["operation"] for c in breaking} == {
        "GET /api/v2/turnover/{siren}",
        "POST /api/v2/turnover/search",
    }

    refused = _invoke("contracts", "freeze", "--dir", str(frozen))
    assert refused.exit_code == 1
    assert "turnover.v2" in refused.output
    assert (frozen / "turnover.v2.json").read_text(encoding="utf-8") == before

    forced = _invoke("contracts", "freeze", "--dir", str(frozen), "--force")
    assert forced.exit_code == 0, forced.output
    assert _invoke("contracts", "check", "--dir", str(frozen), "--strict").exit_code == 0


def test_check_passes_on_an_added_optional_field_and_freeze_records_it(tmp_path: Path) -> None:
    frozen = tmp_path / "schemas"
    assert _invoke("contracts", "freeze", "--dir", str(frozen)).exit_code == 0

    # The frozen copy predates an optional field the code now sends: an additive change.
    def before_rectifications(contract: Contract) -> None:
        del contract["$defs"]["TurnoverPeriodV2"]["properties"]["rectifications"]

    _frozen_with(frozen, "turnover.v2", before_rectifications)
    check = _invoke("contracts", "check", "--dir", str(frozen), "--json")
    assert check.exit_code == 0, check.output
    verdict = json.loads(check.output)
    assert verdict["breaking"] == []
    assert {c["kind"] for c in verdict["compatible"]} == {"field_added"}
    assert verdict["not_frozen"] == ["turnover.v2"]
    assert _invoke("contracts", "check", "--dir", str(frozen), "--strict").exit_code == 1

    assert _invoke("contracts", "freeze", "--dir", str(frozen)).exit_code == 0
    assert _invoke("contracts", "check", "--dir", str(frozen), "--strict").exit_code == 0


def test_a_frozen_version_no_longer_served_fails_the_check(tmp_path: Path) -> None:
    frozen = tmp_path / "schemas"
    assert _invoke("contracts", "freeze", "--dir", str(frozen)).exit_code == 0
    (frozen / "turnover.v0.json").write_text(
        (frozen / "turnover.v1.json").read_text(encoding="utf-8"), encoding="utf-8"
    )
    check = _invoke("contracts", "check", "--dir", str(frozen))
    assert check.exit_code == 1
    assert "turnover.v0" in check.output


# The committed files --------------------------------------------------------------------------


def test_every_published_version_has_a_frozen_schema_matching_the_code(
    generated: dict[str, Contract],
) -> None:
    stale = stale_contracts(FROZEN, generated)
    assert not stale, (
        f"contracts/schemas is not what the code generates for {', '.join(stale)}: if the "
        "change is intended and compatible, run `gateway contracts freeze` (make contracts) "
        "and commit the files"
    )


def test_the_code_is_compatible_with_every_frozen_schema(generated: dict[str, Contract]) -> None:
    report = compare_all(read_frozen(FROZEN), generated)
    assert report.ok, (
        "breaking changes to published connector versions (publish a new version instead):\n"
        + "\n".join(f"  - {change}" for change in report.breaking)
    )
