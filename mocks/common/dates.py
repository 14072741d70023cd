"""Months and days as the partners, all in France, count them."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")


def today_in_france() -> dt.date:
    return dt.datetime.now(PARIS).date()


def months_back(today: dt.date, count: int) -> tuple[str, str]:
    """The ``count`` months ending with the current one, as (from, to) in ``YYYY-MM``."""
    index = today.year * 12 + today.month - 1 - (count - 1)
    return f"{index // 12:04d}-{index % 12 + 1:02d}", f"{today:%Y-%m}"
