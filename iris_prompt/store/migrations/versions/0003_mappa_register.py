"""The shared MAPPA flag register (issue 13): current flags, every version, API reads.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "register_flag",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("nhs_number", sa.String(length=10), nullable=False),
        sa.Column("author", sa.String(length=16), nullable=False),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("period_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_updated", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resource", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_register_flag")),
    )
    op.create_index(op.f("ix_register_flag_nhs_number"), "register_flag", ["nhs_number"])
    op.create_index(op.f("ix_register_flag_author"), "register_flag", ["author"])
    op.create_index(op.f("ix_register_flag_period_end"), "register_flag", ["period_end"])
    op.create_index(op.f("ix_register_flag_last_updated"), "register_flag", ["last_updated"])
    op.create_index("ix_register_flag_author_period_end", "register_flag", ["author", "period_end"])
    op.create_table(
        "register_flag_version",
        sa.Column("flag_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("last_updated", sa.DateTime(timezone=True), nullable=False),
        sa.Column("client_id", sa.String(length=256), nullable=False),
        sa.Column("resource", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["flag_id"],
            ["register_flag.id"],
            name=op.f("fk_register_flag_version_flag_id_register_flag"),
        ),
        sa.PrimaryKeyConstraint("flag_id", "version", name=op.f("pk_register_flag_version")),
    )
    op.create_table(
        "register_access",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("flag_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("interaction", sa.String(length=16), nullable=False),
        sa.Column("client_id", sa.String(length=256), nullable=False),
        sa.Column("organisation", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_register_access")),
    )
    op.create_index(op.f("ix_register_access_flag_id"), "register_access", ["flag_id"])
    op.create_index(op.f("ix_register_access_at"), "register_access", ["at"])


def downgrade() -> None:
    op.drop_table("register_access")
    op.drop_table("register_flag_version")
    op.drop_table("register_flag")
