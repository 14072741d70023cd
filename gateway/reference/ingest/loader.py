"""Batched writes of validated rows, one function per dataset.

Each ``load_*`` function takes one batch of ``(line, row)`` pairs and writes it inside the
caller's transaction with a fixed number of statements whatever the batch size: one ``IN``
query maps SIRENs to accounts, one finds the rows already stored, one multi-row ``INSERT``
(and, for CFP, one ``UPDATE`` executemany) writes the rest. It returns the counts and the
rejections of the batch, which the caller keeps only once the transaction has committed.

Re-ingesting rows already stored is a no-op by design: every dataset has a natural key (see each
function) and a row whose key exists either matches (unchanged), updates it (CFP only), or
conflicts with it (rejected as ``row.conflict``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol, TypeVar

from sqlalchemy import Connection, bindparam, insert, select, tuple_, update

from gateway.reference.ingest.report import Rejection
from gateway.reference.ingest.rows import (
    AccountRow,
    CfpRow,
    Dataset,
    RowModel,
    StatusEventRow,
    TurnoverRow,
    period_facts,
)
from gateway.reference.models import (
    Account,
    CfpPayment,
    StatusEvent,
    StatusEventKind,
    TurnoverDeclaration,
)
from gateway.reference.status import apply_derived_status

__all__ = [
    "LOADERS",
    "BatchOutcome",
    "Loader",
    "load_accounts",
    "load_cfp",
    "load_status_events",
    "load_turnover",
]


class _HasSiren(Protocol):
    @property
    def siren(self) -> str: ...


RowT = TypeVar("RowT", bound=RowModel)
SirenRowT = TypeVar("SirenRowT", bound=_HasSiren)
Numbered = tuple[int, RowT]


@dataclass
class BatchOutcome:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    rejections: list[Rejection] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return len({rejection.line for rejection in self.rejections})

    def reject(self, line: int, field_name: str, code: str, reason: str) -> None:
        self.rejections.append(Rejection(line, field_name, code, reason))


Loader = Callable[[Connection, Sequence[tuple[int, Any]], dt.datetime], BatchOutcome]


def _account_ids(connection: Connection, sirens: Iterable[str]) -> dict[str, int]:
    wanted = sorted(set(sirens))
    if not wanted:
        return {}
    rows = connection.execute(select(Account.siren, Account.id).where(Account.siren.in_(wanted)))
    return {siren: account_id for siren, account_id in rows}


def _known_rows(
    connection: Connection, rows: Sequence[tuple[int, SirenRowT]], outcome: BatchOutcome
) -> list[tuple[int, SirenRowT, int]]:
    """The rows whose SIREN has an account, with its id; the others are rejected."""
    ids = _account_ids(connection, (row.siren for _, row in rows))
    known = []
    for line, row in rows:
        account_id = ids.get(row.siren)
        if account_id is None:
            outcome.reject(line, "siren", "siren.unknown", "no account has this SIREN")
        else:
            known.append((line, row, account_id))
    return known


# --- accounts --------------------------------------------------------------------------------


def load_accounts(
    connection: Connection, rows: Sequence[Numbered[AccountRow]], now: dt.datetime
) -> BatchOutcome:
    """Create new accounts, each with its ``affiliation`` event; key: the (NIR, SIREN) pair.

    A person has one account and an account one person: a row pairing a known NIR with another
    SIREN, or a known SIREN with another NIR, is rejected rather than re-pointing either.
    """
    outcome = BatchOutcome()
    nirs = sorted({row.nir for _, row in rows})
    sirens = sorted({row.siren for _, row in rows})
    siren_of_nir = dict(
        connection.execute(select(Account.nir, Account.siren).where(Account.nir.in_(nirs))).all()
    )
    nir_of_siren = dict(
        connection.execute(
            select(Account.siren, Account.nir).where(Account.siren.in_(sirens))
        ).all()
    )
    new_rows = []
    for line, row in rows:
        held_siren = siren_of_nir.get(row.nir)
        if held_siren == row.siren:
            outcome.unchanged += 1
        elif held_siren is not None:
            outcome.reject(
                line, "nir", "nir.conflict", "this NIR already has an account with another SIREN"
            )
        elif row.siren in nir_of_siren:
            outcome.reject(
                line, "siren", "siren.conflict", "this SIREN already belongs to another person"
            )
        else:
            # Later rows of the batch must see this one as existing.
            siren_of_nir[row.nir] = row.siren
            nir_of_siren[row.siren] = row.nir
            new_rows.append(row)
            outcome.added += 1
    if not new_rows:
        return outcome

    connection.execute(
        insert(Account),
        [
            {
                "nir": row.nir,
                "siren": row.siren,
                "category": row.category,
                "regime": row.regime,
                "affiliation_date": row.affiliation_date,
                "radiation_date": None,
                "radiation_reason": None,
                "created_at": now,
                "updated_at": now,
            }
            for row in new_rows
        ],
    )
    # One lookup for the new ids: cheaper than RETURNING, which SQLite answers row by row
    # when the ids must come back in the order of the rows.
    created = _account_ids(connection, (row.siren for row in new_rows))
    connection.execute(
        insert(StatusEvent),
        [
            {
                "account_id": created[row.siren],
                "event": StatusEventKind.AFFILIATION.value,
                "effective_date": row.affiliation_date,
                "detail": row.regime,
                "recorded_at": now,
            }
            for row in new_rows
        ],
    )
    return outcome


# --- status events ---------------------------------------------------------------------------


def load_status_events(
    connection: Connection, rows: Sequence[Numbered[StatusEventRow]], now: dt.datetime
) -> BatchOutcome:
    """Add status events, then re-derive the status of the accounts that got one.

    Key: (account, event, effective_date). The same key with another detail is a conflict:
    an event is history and is never rewritten.
    """
    outcome = BatchOutcome()
    known = _known_rows(connection, rows, outcome)
    account_ids = sorted({account_id for _, _, account_id in known})
    stored: dict[tuple[int, str, dt.date], str | None] = {}
    if account_ids:
        for event in connection.execute(
            select(
                StatusEvent.account_id,
                StatusEvent.event,
                StatusEvent.effective_date,
                StatusEvent.detail,
            ).where(StatusEvent.account_id.in_(account_ids))
        ):
            stored[(event.account_id, event.event, event.effective_date)] = event.detail

    new_events = []
    touched: set[int] = set()
    for line, row, account_id in known:
        key = (account_id, row.event, row.effective_date)
        if key not in stored:
            stored[key] = row.detail
            new_events.append(
                {
                    "account_id": account_id,
                    "event": row.event,
                    "effective_date": row.effective_date,
                    "detail": row.detail,
                    "recorded_at": now,
                }
            )
            touched.add(account_id)
            outcome.added += 1
        elif stored[key] == row.detail:
            outcome.unchanged += 1
        else:
            outcome.reject(
                line,
                "detail",
                "row.conflict",
                "this account already has this event on this date with another detail",
            )
    if new_events:
        connection.execute(insert(StatusEvent), new_events)
        apply_derived_status(connection, touched, now)
    return outcome


# --- turnover --------------------------------------------------------------------------------

# Files sorted by period or by SIREN keep the cross product of a batch's accounts and periods
# near the batch size; beyond this factor the lookup switches to exact keys.
_EXACT_LOOKUP_ABOVE = 4


def load_turnover(
    connection: Connection, rows: Sequence[Numbered[TurnoverRow]], now: dt.datetime
) -> BatchOutcome:
    """Add turnover declarations; key: (account, period, declared_at).

    A later ``declared_at`` for a period is a rectification and is stored beside the earlier
    declaration, never over it. The same key with other amounts is a conflict.
    """
    outcome = BatchOutcome()
    known = _known_rows(connection, rows, outcome)
    account_ids = sorted({account_id for _, _, account_id in known})
    periods = sorted({row.period for _, row, _ in known})
    stored: dict[tuple[int, str, dt.datetime], tuple[Decimal, Decimal, Decimal]] = {}
    if account_ids:
        query = select(
            TurnoverDeclaration.account_id,
            TurnoverDeclaration.period,
            TurnoverDeclaration.declared_at,
            TurnoverDeclaration.sales_bic,
            TurnoverDeclaration.services_bic,
            TurnoverDeclaration.services_bnc,
        ).where(
            # Both lists probe the unique index (account_id, period, declared_at).
            TurnoverDeclaration.account_id.in_(account_ids),
            TurnoverDeclaration.period.in_(periods),
        )
        if len(account_ids) * len(periods) > _EXACT_LOOKUP_ABOVE * max(len(known), 1):
            # A file in no useful order: the account x period cross product would fetch
            # whole histories, so match the exact keys (dearer per batch, bounded result).
            query = query.where(
                tuple_(
                    TurnoverDeclaration.account_id,
                    TurnoverDeclaration.period,
                    TurnoverDeclaration.declared_at,
                ).in_(sorted({(a, row.period, row.declared_at) for _, row, a in known}))
            )
        for declaration in connection.execute(query):
            stored[(declaration.account_id, declaration.period, declaration.declared_at)] = (
                declaration.sales_bic,
                declaration.services_bic,
                declaration.services_bnc,
            )

    new_declarations = []
    for line, row, account_id in known:
        key = (account_id, row.period, row.declared_at)
        amounts = (row.sales_bic, row.services_bic, row.services_bnc)
        existing = stored.get(key)
        if existing is None:
            stored[key] = amounts
            periodicity, period_start = period_facts(row.period)
            new_declarations.append(
                {
                    "account_id": account_id,
                    "period": row.period,
                    "periodicity": periodicity,
                    "period_start": period_start,
                    "sales_bic": row.sales_bic,
                    "services_bic": row.services_bic,
                    "services_bnc": row.services_bnc,
                    "declared_at": row.declared_at,
                    "recorded_at": now,
                }
            )
            outcome.added += 1
        elif existing == amounts:
            outcome.unchanged += 1
        else:
            outcome.reject(
                line,
                "declared_at",
                "row.conflict",
                "a declaration for this period with this declared_at has other amounts",
            )
    if new_declarations:
        connection.execute(insert(TurnoverDeclaration), new_declarations)
    return outcome


# --- CFP -------------------------------------------------------------------------------------

_CFP_FIELDS = ("base", "rate", "amount_due", "amount_paid", "payment_date", "fund")


def _cfp_values(row: CfpRow) -> dict[str, Any]:
    return {
        "base": row.base,
        "rate": row.rate,
        "amount_due": row.amount_due,
        "amount_paid": row.amount_paid,
        "payment_date": row.paid_at,
        "fund": row.fund,
    }


def load_cfp(
    connection: Connection, rows: Sequence[Numbered[CfpRow]], now: dt.datetime
) -> BatchOutcome:
    """Add or update CFP payments; key: (account, year).

    Payments arrive after the amount due, so a row with other values for a stored year
    replaces them (counted as updated) instead of conflicting.
    """
    outcome = BatchOutcome()
    known = _known_rows(connection, rows, outcome)
    account_ids = sorted({account_id for _, _, account_id in known})
    years = sorted({row.year for _, row, _ in known})
    stored: dict[tuple[int, int], tuple[int | None, dict[str, Any]]] = {}
    if account_ids:
        for payment in connection.execute(
            select(CfpPayment.id, CfpPayment.account_id, CfpPayment.year, *_cfp_columns()).where(
                CfpPayment.account_id.in_(account_ids), CfpPayment.year.in_(years)
            )
        ):
            values = {name: getattr(payment, name) for name in _CFP_FIELDS}
            stored[(payment.account_id, payment.year)] = (payment.id, values)

    inserts: dict[tuple[int, int], dict[str, Any]] = {}
    updates: dict[int, dict[str, Any]] = {}
    for _line, row, account_id in known:
        key = (account_id, row.year)
        values = _cfp_values(row)
        existing = stored.get(key)
        if existing is None:
            inserts[key] = {"account_id": account_id, "year": row.year, **values}
            stored[key] = (None, values)
            outcome.added += 1
        elif existing[1] == values:
            outcome.unchanged += 1
        else:
            payment_id, _ = existing
            if payment_id is None:
                # The same year twice in one batch: the later row wins before the insert.
                inserts[key].update(values)
            else:
                updates[payment_id] = values
            stored[key] = (payment_id, values)
            outcome.updated += 1
    if inserts:
        connection.execute(
            insert(CfpPayment),
            [{**values, "recorded_at": now, "updated_at": now} for values in inserts.values()],
        )
    if updates:
        connection.execute(
            update(CfpPayment).where(CfpPayment.id == bindparam("b_id")),
            [
                {"b_id": payment_id, **values, "updated_at": now}
                for payment_id, values in updates.items()
            ],
        )
    return outcome


def _cfp_columns() -> list[Any]:
    return [getattr(CfpPayment, name) for name in _CFP_FIELDS]


LOADERS: dict[Dataset, Loader] = {
    Dataset.ACCOUNTS: load_accounts,
    Dataset.STATUS_EVENTS: load_status_events,
    Dataset.TURNOVER: load_turnover,
    Dataset.CFP: load_cfp,
}
