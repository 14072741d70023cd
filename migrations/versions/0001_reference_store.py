"""reference store

Revision ID: 0001
Revises:
Create Date: 2026-11-27 18:40:58.005620
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "account",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("nir", sa.String(length=15), nullable=False),
        sa.Column("siren", sa.String(length=9), nullable=False),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("regime", sa.String(length=16), nullable=False),
        sa.Column("affiliation_date", sa.Date(), nullable=False),
        sa.Column("radiation_date", sa.Date(), nullable=True),
        sa.Column("radiation_reason", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "category IN ('artisan', 'commercant', 'liberal')", name=op.f("ck_account_category")
        ),
        sa.CheckConstraint("regime IN ('micro', 'classique')", name=op.f("ck_account_regime")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account")),
        sa.UniqueConstraint("nir", name=op.f("uq_account_nir")),
        sa.UniqueConstraint("siren", name=op.f("uq_account_siren")),
    )
    op.create_table(
        "ingestion_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dataset", sa.String(length=32), nullable=False),
        sa.Column("source_name", sa.String(length=255), nullable=False),
        sa.Column("source_sha256", sa.String(length=64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rows_read", sa.Integer(), nullable=False),
        sa.Column("rows_added", sa.Integer(), nullable=False),
        sa.Column("rows_updated", sa.Integer(), nullable=False),
        sa.Column("rows_unchanged", sa.Integer(), nullable=False),
        sa.Column("rows_rejected", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ingestion_run")),
    )
    with op.batch_alter_table("ingestion_run", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ingestion_run_dataset"), ["dataset"], unique=False)

    op.create_table(
        "acre_decision",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("criterion", sa.String(length=64), nullable=True),
        sa.Column("exemption_start_date", sa.Date(), nullable=True),
        sa.Column("exemption_end_date", sa.Date(), nullable=True),
        sa.Column("evidence_source", sa.String(length=200), nullable=True),
        sa.Column("evidence_reference", sa.String(length=200), nullable=True),
        sa.Column("evidence_fetched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("evidence_digest", sa.String(length=71), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "decision IN ('granted', 'refused', 'pending')", name=op.f("ck_acre_decision_decision")
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["account.id"], name=op.f("fk_acre_decision_account_id_account")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_acre_decision")),
    )
    with op.batch_alter_table("acre_decision", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_acre_decision_account_id"), ["account_id"], unique=False
        )

    op.create_table(
        "cfp_payment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("base", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("rate", sa.Numeric(precision=6, scale=3), nullable=False),
        sa.Column("amount_due", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("amount_paid", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("payment_date", sa.Date(), nullable=True),
        sa.Column("fund", sa.String(length=32), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "amount_due >= 0 AND amount_paid >= 0 AND base >= 0",
            name=op.f("ck_cfp_payment_amounts"),
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["account.id"], name=op.f("fk_cfp_payment_account_id_account")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cfp_payment")),
        sa.UniqueConstraint("account_id", "year", name=op.f("uq_cfp_payment_account_id_year")),
    )
    op.create_table(
        "status_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(length=16), nullable=False),
        sa.Column("effective_date", sa.Date(), nullable=False),
        sa.Column("detail", sa.String(length=200), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "event IN ('affiliation', 'radiation', 'regime_change')",
            name=op.f("ck_status_event_event"),
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["account.id"], name=op.f("fk_status_event_account_id_account")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_status_event")),
        sa.UniqueConstraint(
            "account_id",
            "event",
            "effective_date",
            name=op.f("uq_status_event_account_id_event_effective_date"),
        ),
    )
    with op.batch_alter_table("status_event", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_status_event_account_id"), ["account_id"], unique=False
        )

    op.create_table(
        "turnover_declaration",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("periodicity", sa.String(length=16), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("sales_bic", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("services_bic", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("services_bnc", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("declared_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "periodicity IN ('monthly', 'quarterly')",
            name=op.f("ck_turnover_declaration_periodicity"),
        ),
        sa.CheckConstraint(
            "sales_bic >= 0 AND services_bic >= 0 AND services_bnc >= 0",
            name=op.f("ck_turnover_declaration_amounts"),
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["account.id"], name=op.f("fk_turnover_declaration_account_id_account")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_turnover_declaration")),
        sa.UniqueConstraint(
            "account_id",
            "period",
            "declared_at",
            name=op.f("uq_turnover_declaration_account_id_period_declared_at"),
        ),
    )
    with op.batch_alter_table("turnover_declaration", schema=None) as batch_op:
        batch_op.create_index(
            "ix_turnover_declaration_account_period", ["account_id", "period_start"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("turnover_declaration", schema=None) as batch_op:
        batch_op.drop_index("ix_turnover_declaration_account_period")

    op.drop_table("turnover_declaration")
    with op.batch_alter_table("status_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_status_event_account_id"))

    op.drop_table("status_event")
    op.drop_table("cfp_payment")
    with op.batch_alter_table("acre_decision", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_acre_decision_account_id"))

    op.drop_table("acre_decision")
    with op.batch_alter_table("ingestion_run", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ingestion_run_dataset"))

    op.drop_table("ingestion_run")
    op.drop_table("account")
