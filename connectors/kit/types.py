"""Request and response types shared by connector versions."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from gateway.identifiers import parse_nir, parse_siren

Siren = Annotated[
    str,
    AfterValidator(parse_siren),
    Field(description="SIREN: 9 digits with a valid Luhn checksum.", examples=["732829320"]),
]
Nir = Annotated[
    str,
    AfterValidator(parse_nir),
    Field(
        description="NIR: 13 characters and a 2-digit key (Corsica: 2A/2B). Only ever in a body.",
        examples=["1 80 01 99 999 001 68"],
    ),
]

YEAR_MONTH_PATTERN = r"^[0-9]{4}-(0[1-9]|1[0-2])$"

YearMonth = Annotated[
    str,
    Field(pattern=YEAR_MONTH_PATTERN, description="A month, YYYY-MM.", examples=["2026-01"]),
]


def month_start(year_month: str) -> dt.date:
    """The first day of a month already validated as ``YYYY-MM``."""
    return dt.date(int(year_month[:4]), int(year_month[5:7]), 1)


class Provenance(BaseModel):
    """Where an answer comes from and how fresh it is."""

    model_config = ConfigDict(frozen=True)

    source: str = Field(description="The system of record the data comes from.")
    as_of: dt.datetime | None = Field(
        description="When the reference data behind this answer was last loaded (UTC)."
    )
