"""How fresh an answer is: when the datasets it reads were last loaded."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ScalarSelect, func, or_, select

from gateway.reference.models import IngestionRun

__all__ = ["loaded_at"]


def loaded_at(*datasets: str) -> ScalarSelect[dt.datetime]:
    """The end of the latest load of any of ``datasets``, as a column of an answer's query.

    Riding along as a scalar subquery costs no round trip and is never stale, unlike a cache.
    """
    if not datasets:
        raise ValueError("name at least one dataset")
    # ``dataset = :a OR dataset = :b`` rather than ``IN``: an IN list would be an expanding
    # parameter, rendered into the SQL again at every execution.
    return (
        select(func.max(IngestionRun.finished_at))
        .where(or_(*(IngestionRun.dataset == dataset for dataset in datasets)))
        .scalar_subquery()
    )
