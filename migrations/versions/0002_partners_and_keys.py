"""Partner registry, OAuth clients, habilitations and signing keys

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "partner",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("siret", sa.String(length=14), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('caf', 'pole-emploi', 'cnam', 'training-fund')",
            name=op.f("ck_partner_kind"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partner")),
        sa.UniqueConstraint("name", name=op.f("uq_partner_name")),
        sa.UniqueConstraint("siret", name=op.f("uq_partner_siret")),
    )
    op.create_table(
        "oauth_client",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("partner_id", sa.Integer(), nullable=False),
        sa.Column("auth_method", sa.String(length=32), nullable=False),
        sa.Column("jwks", sa.JSON(), nullable=True),
        sa.Column("secret_hash", sa.String(length=255), nullable=True),
        sa.Column("credential_expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "auth_method IN ('private_key_jwt', 'client_secret_basic')",
            name=op.f("ck_oauth_client_auth_method"),
        ),
        sa.CheckConstraint(
            "(auth_method = 'private_key_jwt' AND jwks IS NOT NULL AND secret_hash IS NULL)"
            " OR (auth_method = 'client_secret_basic' AND secret_hash IS NOT NULL"
            " AND jwks IS NULL)",
            name=op.f("ck_oauth_client_one_credential"),
        ),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partner.id"], name=op.f("fk_oauth_client_partner_id_partner")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oauth_client")),
        sa.UniqueConstraint("client_id", name=op.f("uq_oauth_client_client_id")),
    )
    with op.batch_alter_table("oauth_client", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_oauth_client_partner_id"), ["partner_id"], unique=False
        )

    op.create_table(
        "habilitation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("partner_id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=32), nullable=False),
        sa.Column("purposes", sa.JSON(), nullable=False),
        sa.Column("legal_basis", sa.Text(), nullable=False),
        sa.Column("consent_required", sa.Boolean(), nullable=False),
        sa.Column("valid_from_date", sa.Date(), nullable=False),
        sa.Column("valid_until_date", sa.Date(), nullable=True),
        sa.Column("rate_limit_per_minute", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "valid_until_date IS NULL OR valid_until_date >= valid_from_date",
            name=op.f("ck_habilitation_dates"),
        ),
        sa.CheckConstraint(
            "rate_limit_per_minute IS NULL OR rate_limit_per_minute > 0",
            name=op.f("ck_habilitation_rate_limit"),
        ),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partner.id"], name=op.f("fk_habilitation_partner_id_partner")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_habilitation")),
    )
    with op.batch_alter_table("habilitation", schema=None) as batch_op:
        batch_op.create_index(
            "ix_habilitation_partner_scope", ["partner_id", "scope"], unique=False
        )

    op.create_table(
        "signing_key",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kid", sa.String(length=64), nullable=False),
        sa.Column("use", sa.String(length=16), nullable=False),
        sa.Column("alg", sa.String(length=16), nullable=False),
        sa.Column("public_jwk", sa.JSON(), nullable=False),
        sa.Column("private_key_encrypted", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_signed_expiry_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "use IN ('token', 'audit', 'attestation', 'consent')", name=op.f("ck_signing_key_use")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signing_key")),
        sa.UniqueConstraint("kid", name=op.f("uq_signing_key_kid")),
    )
    with op.batch_alter_table("signing_key", schema=None) as batch_op:
        batch_op.create_index(
            "uq_signing_key_current_use",
            ["use"],
            unique=True,
            sqlite_where=sa.text("retired_at IS NULL"),
            postgresql_where=sa.text("retired_at IS NULL"),
        )

    op.create_table(
        "client_assertion_jti",
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("jti", sa.String(length=255), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("client_id", "jti", name=op.f("pk_client_assertion_jti")),
    )
    with op.batch_alter_table("client_assertion_jti", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_client_assertion_jti_expires_at"), ["expires_at"], unique=False
        )

    op.create_table(
        "token_revocation",
        sa.Column("jti", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("jti", name=op.f("pk_token_revocation")),
    )
    with op.batch_alter_table("token_revocation", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_token_revocation_expires_at"), ["expires_at"], unique=False
        )

    op.create_table(
        "rate_limit_counter",
        sa.Column("bucket", sa.String(length=200), nullable=False),
        sa.Column("window_start_epoch", sa.Integer(), nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("bucket", "window_start_epoch", name=op.f("pk_rate_limit_counter")),
    )
    with op.batch_alter_table("rate_limit_counter", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_rate_limit_counter_window_start_epoch"),
            ["window_start_epoch"],
            unique=False,
        )


def downgrade() -> None:
    for table, indexes in (
        ("rate_limit_counter", ["ix_rate_limit_counter_window_start_epoch"]),
        ("token_revocation", ["ix_token_revocation_expires_at"]),
        ("client_assertion_jti", ["ix_client_assertion_jti_expires_at"]),
        ("signing_key", ["uq_signing_key_current_use"]),
        ("habilitation", ["ix_habilitation_partner_scope"]),
        ("oauth_client", ["ix_oauth_client_partner_id"]),
    ):
        with op.batch_alter_table(table, schema=None) as batch_op:
            for index in indexes:
                batch_op.drop_index(index)
        op.drop_table(table)
    op.drop_table("partner")
