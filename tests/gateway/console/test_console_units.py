"""The console's small pure pieces: cursors, dates in legal time, form parsing, CSV cells."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.console.routes import _safe_next
from gateway.console.schemas import AuditFilters, Cursor
from gateway.console.service import _cell, connector_choices, filters_from_form

PARIS = ZoneInfo("Europe/Paris")


@given(
    st.datetimes(
        min_value=dt.datetime(1971, 1, 1),  # noqa: DTZ001 - hypothesis takes naive bounds
        max_value=dt.datetime(2999, 12, 31),  # noqa: DTZ001
        timezones=st.just(dt.UTC),
    ),
    st.integers(min_value=1, max_value=2**62),
)
def test_a_cursor_survives_its_round_trip(moment: dt.datetime, record_id: int) -> None:
    cursor = Cursor(moment, record_id)
    assert Cursor.decode(cursor.encode()) == cursor


@pytest.mark.parametrize(
    "value", [None, "", "abc", "1.2.3", "12", ".5", "1e3.4", "99999999999999999999.1", "1.-2"]
)
def test_a_malformed_cursor_means_the_first_page(value: str | None) -> None:
    assert Cursor.decode(value) is None


def test_days_are_read_in_legal_time_across_the_clock_change() -> None:
    filters = AuditFilters(date_from=dt.date(2026, 3, 1), date_to=dt.date(2026, 3, 31))
    since, until = filters.bounds(PARIS)
    assert since == dt.datetime(2026, 2, 28, 23, tzinfo=dt.UTC)
    # Summer time started on 29 March: midnight on 1 April is 22:00 UTC.
    assert until == dt.datetime(2026, 3, 31, 22, tzinfo=dt.UTC)


def test_the_form_is_turned_into_filters() -> None:
    filters, errors = filters_from_form(
        {
            "date_from": "2026-03-01",
            "partner_id": "7",
            "connector": "turnover.v2",
            "outcome": "refused",
            "purpose": " RSA_INSTRUCTION ",
            "client_id": "",
        },
        None,
    )
    assert errors == {}
    assert filters == AuditFilters(
        date_from=dt.date(2026, 3, 1),
        partner_id=7,
        connector="turnover",
        connector_version=2,
        outcome="refused",
        purpose="RSA_INSTRUCTION",
    )
    assert filters_from_form({"connector": "turnover"}, None)[0] == AuditFilters(
        connector="turnover"
    )


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"partner_id": "-1"}, "partner_id"),
        ({"partner_id": "١٢"}, "partner_id"),  # Arabic-Indic digits are digits to str.isdigit
        ({"connector": "turnover.vx"}, "connector"),
        ({"connector_version": "99999999999"}, "connector_version"),
        ({"purpose": "p" * 65}, "purpose"),
        ({"reason": "dossier 1 85 05 78 006 084 36"}, "reason"),
        ({"date_to": "2026-02-30"}, "date_to"),
    ],
)
def test_a_bad_field_is_named(form: dict[str, str], field: str) -> None:
    filters, errors = filters_from_form(form, None)
    assert filters is None
    assert field in errors


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=1+1", "'=1+1"),
        ("+33 1 23", "'+33 1 23"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("RSA-2026", "RSA-2026"),
        (-2, -2),
        (None, None),
    ],
)
def test_csv_cells_cannot_run_as_formulas(value: object, cell: object) -> None:
    assert _cell(value) == cell


@pytest.mark.parametrize(
    ("wanted", "target"),
    [
        ("/console/audit?q=abc", "/console/audit?q=abc"),
        ("/console/login?next=/console/x", "/console/audit"),
        ("https://evil.example", "/console/audit"),
        ("//evil.example", "/console/audit"),
        ("/api/v1/consents", "/console/audit"),
        (None, "/console/audit"),
    ],
)
def test_only_console_paths_are_followed_after_login(wanted: object, target: str) -> None:
    assert _safe_next(wanted) == target


def test_the_connector_filter_lists_datasets_then_versions() -> None:
    class Version:
        def __init__(self, dataset: str, version: int) -> None:
            self.dataset, self.version = dataset, version

    choices = connector_choices([Version("turnover", 2), Version("turnover", 1), Version("cfp", 1)])
    assert [value for value, _ in choices] == [
        "cfp",
        "cfp.v1",
        "turnover",
        "turnover.v1",
        "turnover.v2",
        "console",
    ]
