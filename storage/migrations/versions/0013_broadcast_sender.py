"""broadcasts: who sent each (the console's list of broadcasts), and an index to list them
newest first

Revision ID: 0013_broadcast_sender
Revises: 0012_late_inbound
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_broadcast_sender"
down_revision: str | None = "0012_late_inbound"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("broadcasts") as batch_op:
        batch_op.add_column(sa.Column("created_by", sa.String(length=64), nullable=False, server_default=""))
    op.create_index("ix_broadcasts_created_at", "broadcasts", ["created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_broadcasts_created_at", table_name="broadcasts")
    with op.batch_alter_table("broadcasts") as batch_op:
        batch_op.drop_column("created_by")
