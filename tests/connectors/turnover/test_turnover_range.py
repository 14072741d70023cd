"""The requested range: defaults, limits, and never anything but ``range.invalid`` on bad input."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.kit import InvalidRequest
from connectors.turnover.common import MAX_MONTHS, Period, resolve_range

TODAY = dt.date(2026, 7, 15)


@pytest.mark.parametrize(
    ("from_", "to", "expected"),
    [
        (None, None, ("2025-08", "2026-07")),  # the last twelve months, this one included
        (None, "2026-03", ("2025-04", "2026-03")),
        ("2026-01", None, ("2026-01", "2026-07")),
        ("2026-02", "2026-02", ("2026-02", "2026-02")),
        ("2024-12", "2026-11", ("2024-12", "2026-11")),  # 24 months, partly in the future
    ],
)
def test_defaults(from_: str | None, to: str | None, expected: tuple[str, str]) -> None:
    months = resolve_range(from_, to, TODAY)
    assert (months.from_month, months.to_month) == expected


def test_default_start_in_january_crosses_the_year() -> None:
    months = resolve_range(None, None, dt.date(2026, 1, 31))
    assert (months.from_month, months.to_month) == ("2025-02", "2026-01")


year_months = st.builds(
    lambda year, month: f"{year:04d}-{month:02d}",
    st.integers(min_value=0, max_value=9999),
    st.integers(min_value=1, max_value=12),
)


@given(from_=st.none() | year_months, to=st.none() | year_months)
def test_any_well_formed_range_is_answered_or_refused_cleanly(
    from_: str | None, to: str | None
) -> None:
    """Whatever months a partner sends, the outcome is a range or ``range.invalid``, no 500."""
    try:
        months = resolve_range(from_, to, TODAY)
    except InvalidRequest as error:
        outcome = error.code
    else:
        outcome = "resolved"
    assert outcome in {"resolved", "range.invalid"}
    if outcome != "resolved":
        return
    assert 1 <= months.last - months.first + 1 <= MAX_MONTHS
    # Every period the range can produce has real dates, even at the ends of the calendar.
    for first in (months.first - 2, months.first, months.last):
        if first >= 12:
            quarter = Period("quarterly", first - first % 3, ())
            assert quarter.start_date <= quarter.end_date


def test_period_keys_and_bounds() -> None:
    q4 = Period("quarterly", 2026 * 12 + 9, ())
    assert (q4.key, q4.start_date, q4.end_date) == (
        "2026-Q4",
        dt.date(2026, 10, 1),
        dt.date(2026, 12, 31),
    )
    february = Period("monthly", 2028 * 12 + 1, ())
    assert (february.key, february.end_date) == ("2028-02", dt.date(2028, 2, 29))
