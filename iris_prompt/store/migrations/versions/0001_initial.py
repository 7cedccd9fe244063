"""The store: audit_event, feedback, call_log, issued_card (docs/store.md).

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_event",
        sa.Column("card_uuid", sa.String(length=64), nullable=False),
        sa.Column("recorded", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("service_id", sa.String(length=128), nullable=False),
        sa.Column("hook", sa.String(length=64), nullable=False),
        sa.Column("hook_instance", sa.String(length=128), nullable=False),
        sa.Column("issuer", sa.String(length=512), nullable=True),
        sa.Column("tenant", sa.String(length=256), nullable=True),
        sa.Column("user_id", sa.String(length=256), nullable=False),
        sa.Column("fhir_server", sa.String(length=1024), nullable=True),
        sa.Column("patient", sa.String(length=256), nullable=False),
        sa.Column("entities", sa.JSON(), nullable=False),
        sa.Column("relationship", sa.String(length=64), nullable=True),
        sa.Column("via", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("card_uuid", name=op.f("pk_audit_event")),
    )
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_event_patient"), ["patient"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_event_recorded"), ["recorded"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_event_user_id"), ["user_id"], unique=False)

    op.create_table(
        "call_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("call_uid", sa.String(length=32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("service_id", sa.String(length=128), nullable=False),
        sa.Column("hook", sa.String(length=64), nullable=False),
        sa.Column("practice", sa.String(length=512), nullable=True),
        sa.Column("codeset_versions", sa.String(length=256), nullable=False),
        sa.Column("patient_key", sa.String(length=64), nullable=False),
        sa.Column("cards", sa.JSON(), nullable=False),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.Column("codes", sa.JSON(), nullable=False),
        sa.Column("suppressed", sa.Boolean(), nullable=False),
        sa.Column("household_checked", sa.Boolean(), nullable=False),
        sa.Column("withheld", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_log")),
        sa.UniqueConstraint("call_uid", name=op.f("uq_call_log_call_uid")),
    )
    with op.batch_alter_table("call_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_call_log_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_call_log_patient_key"), ["patient_key"], unique=False)
        batch_op.create_index("ix_call_log_practice_at", ["practice", "at"], unique=False)

    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("item_key", sa.String(length=64), nullable=False),
        sa.Column("received", sa.DateTime(timezone=True), nullable=False),
        sa.Column("service_id", sa.String(length=128), nullable=False),
        sa.Column("client", sa.String(length=512), nullable=True),
        sa.Column("card_uuid", sa.String(length=256), nullable=False),
        sa.Column("matched", sa.Boolean(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("outcome_timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accepted_suggestions", sa.JSON(), nullable=False),
        sa.Column("override_system", sa.String(length=256), nullable=True),
        sa.Column("override_code", sa.String(length=128), nullable=True),
        sa.Column("override_comment", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback")),
        sa.UniqueConstraint("item_key", name=op.f("uq_feedback_item_key")),
    )
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_feedback_card_uuid"), ["card_uuid"], unique=False)
        batch_op.create_index(batch_op.f("ix_feedback_received"), ["received"], unique=False)

    op.create_table(
        "issued_card",
        sa.Column("card_uuid", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("call_uid", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("card_uuid", name=op.f("pk_issued_card")),
    )
    with op.batch_alter_table("issued_card", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_issued_card_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_issued_card_call_uid"), ["call_uid"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("issued_card", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_issued_card_call_uid"))
        batch_op.drop_index(batch_op.f("ix_issued_card_at"))

    op.drop_table("issued_card")
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_feedback_received"))
        batch_op.drop_index(batch_op.f("ix_feedback_card_uuid"))

    op.drop_table("feedback")
    with op.batch_alter_table("call_log", schema=None) as batch_op:
        batch_op.drop_index("ix_call_log_practice_at")
        batch_op.drop_index(batch_op.f("ix_call_log_patient_key"))
        batch_op.drop_index(batch_op.f("ix_call_log_at"))

    op.drop_table("call_log")
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_event_user_id"))
        batch_op.drop_index(batch_op.f("ix_audit_event_recorded"))
        batch_op.drop_index(batch_op.f("ix_audit_event_patient"))

    op.drop_table("audit_event")
