"""Writing upstream files for the ingestion tests: CSV or JSON Lines, from dicts of text."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from typer.testing import Result

from gateway.reference.seed import SyntheticPerson

Row = Mapping[str, object]
RunCli = Callable[..., Result]
"""The ``run_cli`` fixture: runs ``gateway <args>`` on the test's database."""

ACCOUNT_COLUMNS = ("nir", "siren", "category", "regime", "affiliation_date")
STATUS_COLUMNS = ("siren", "event", "effective_date", "detail")
TURNOVER_COLUMNS = ("siren", "period", "sales_bic", "services_bic", "services_bnc", "declared_at")
CFP_COLUMNS = (
    "siren",
    "year",
    "base",
    "rate",
    "amount_due",
    "amount_paid",
    "paid_at",
    "fund",
)


def _text(value: object) -> str:
    return "" if value is None else str(value)


def write_csv(path: Path, columns: Sequence[str], rows: Iterable[Row]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_text(row.get(column)) for column in columns])
    return path


def write_jsonl(path: Path, rows: Iterable[Row]) -> Path:
    with path.open("w", encoding="utf-8") as file:
        for row in rows:
            file.write(json.dumps({key: _json(value) for key, value in row.items()}) + "\n")
    return path


def _json(value: object) -> object:
    if value is None or isinstance(value, str | int | bool):
        return value
    return str(value)


def read_report(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as file:
        return list(csv.DictReader(file))


# --- files describing synthetic people -------------------------------------------------------


def account_rows(persons: Iterable[SyntheticPerson]) -> list[dict[str, object]]:
    """Each person's account as first registered: first affiliation date and regime."""
    rows: list[dict[str, object]] = []
    for person in persons:
        first = person.events[0]
        rows.append(
            {
                "nir": person.nir,
                "siren": person.siren,
                "category": person.category,
                "regime": first.detail,
                "affiliation_date": first.effective_date.isoformat(),
            }
        )
    return rows


def status_rows(persons: Iterable[SyntheticPerson]) -> list[dict[str, object]]:
    return [
        {
            "siren": person.siren,
            "event": event.event,
            "effective_date": event.effective_date.isoformat(),
            "detail": event.detail,
        }
        for person in persons
        for event in person.events
    ]


def turnover_rows(persons: Iterable[SyntheticPerson]) -> list[dict[str, object]]:
    return [
        {
            "siren": person.siren,
            "period": declaration.period,
            "sales_bic": declaration.sales_bic,
            "services_bic": declaration.services_bic,
            "services_bnc": declaration.services_bnc,
            "declared_at": declaration.declared_at.isoformat(),
        }
        for person in persons
        for declaration in person.declarations
    ]


def cfp_rows(persons: Iterable[SyntheticPerson]) -> list[dict[str, object]]:
    return [
        {
            "siren": person.siren,
            "year": payment.year,
            "base": payment.base,
            "rate": payment.rate,
            "amount_due": payment.amount_due,
            "amount_paid": payment.amount_paid,
            "paid_at": payment.payment_date.isoformat() if payment.payment_date else None,
            "fund": payment.fund,
        }
        for person in persons
        for payment in person.cfp
    ]
