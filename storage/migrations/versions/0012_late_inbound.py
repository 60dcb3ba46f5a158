"""late_inbound: messages answered `success` at the reply deadline before their handler finished,
kept until their reply is pushed (WeChat does not send them again)

Revision ID: 0012_late_inbound
Revises: 0011_live
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_late_inbound"
down_revision: str | None = "0011_live"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "late_inbound",
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("inbound", sa.Text(), nullable=False),
        sa.Column("kept_at", sa.DateTime(), nullable=False),
        sa.Column("next_try_at", sa.DateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_late_inbound")),
    )
    op.create_index(op.f("ix_late_inbound_next_try_at"), "late_inbound", ["next_try_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_late_inbound_next_try_at"), table_name="late_inbound")
    op.drop_table("late_inbound")
