"""Hold back a card another hook has just shown: call_log.encounter_key, issued_card.content_key.

Both are keyed digests (HMAC-SHA256 under the pseudonym secret), never an encounter id or card
text: the card log still holds no identifiers. Rows written before this revision have neither,
and so never hold a card back.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("call_log", schema=None) as batch_op:
        batch_op.add_column(sa.Column("encounter_key", sa.String(length=64), nullable=True))
    with op.batch_alter_table("issued_card", schema=None) as batch_op:
        batch_op.add_column(sa.Column("content_key", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("issued_card", schema=None) as batch_op:
        batch_op.drop_column("content_key")
    with op.batch_alter_table("call_log", schema=None) as batch_op:
        batch_op.drop_column("encounter_key")
