"""the messaging window moves to the key-value store

WeChat's 48 h customer-service window is short-lived state written on every message; it now
lives in Redis (or the in-process store) with its own expiry, not in the citizens table.

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
    with op.batch_alter_table("citizens", schema=None) as batch_op:
        batch_op.drop_column("cs_sent_since_inbound")
        batch_op.drop_column("last_inbound_at")


def downgrade() -> None:
    with op.batch_alter_table("citizens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_inbound_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("cs_sent_since_inbound", sa.Integer(), nullable=False, server_default="0"))
