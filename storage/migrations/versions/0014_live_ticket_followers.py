"""live_ticket_followers: the other askers of a merged live question follow its ticket

Revision ID: 0014_live_ticket_followers
Revises: 0013_broadcast_sender
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_live_ticket_followers"
# the brief said "0011_live"; main has 0012_late_inbound after it (the lead re-chains as needed)
down_revision: str | None = "0013_broadcast_sender"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "live_ticket_followers",
        sa.Column("ticket_number", sa.Integer(), nullable=False),
        sa.Column("openid", sa.String(length=128), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("ticket_number", "openid"),
    )
    op.create_index("ix_live_ticket_followers_openid", "live_ticket_followers", ["openid"])


def downgrade() -> None:
    op.drop_index("ix_live_ticket_followers_openid", table_name="live_ticket_followers")
    op.drop_table("live_ticket_followers")
