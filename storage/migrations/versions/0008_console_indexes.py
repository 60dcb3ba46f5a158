"""the console at district size: when each ticket was first accepted and resolved and last
assigned, stored on the ticket (the dashboard's rates and the "not accepted after N hours" tab
read them instead of scanning timelines), and indexes for the filters

Revision ID: 0008_console_indexes
Revises: 0005
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_console_indexes"
down_revision: str | None = "0007_staff_actions"  # the file 0005_receptions.py
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = ("assigned_at", "accepted_at", "resolved_at")
_RATES = ("created_at", "accepted_at", "resolved_at", "rating")  # what the rates read, after the group
# the same rules as storage/sql_mapping.py timeline_times: first accepted, first resolved, last (re)assigned
_BACKFILL = """
UPDATE tickets SET
  accepted_at = (SELECT min(e.at) FROM ticket_events e WHERE e.ticket_number = tickets.number AND e.kind = 'accepted'),
  resolved_at = (SELECT min(e.at) FROM ticket_events e WHERE e.ticket_number = tickets.number AND e.kind = 'resolved'),
  assigned_at = (SELECT max(e.at) FROM ticket_events e
                 WHERE e.ticket_number = tickets.number AND e.kind IN ('assigned', 'transferred'))
"""


def upgrade() -> None:
    with op.batch_alter_table("tickets") as batch_op:
        for name in _COLUMNS:
            batch_op.add_column(sa.Column(name, sa.DateTime(), nullable=True))
    op.execute(_BACKFILL)
    op.create_index("ix_tickets_status_created", "tickets", ["status", "created_at"], unique=False)
    op.create_index("ix_tickets_status_assigned", "tickets", ["status", "assigned_at"], unique=False)
    op.create_index("ix_tickets_rating", "tickets", ["rating"], unique=False)
    for by in ("station", "deputy"):
        op.create_index(f"ix_tickets_{by}_rates", "tickets", [f"{by}_code", *_RATES], unique=False)


def downgrade() -> None:
    for by in ("deputy", "station"):
        op.drop_index(f"ix_tickets_{by}_rates", table_name="tickets")
    op.drop_index("ix_tickets_rating", table_name="tickets")
    op.drop_index("ix_tickets_status_assigned", table_name="tickets")
    op.drop_index("ix_tickets_status_created", table_name="tickets")
    with op.batch_alter_table("tickets") as batch_op:
        for name in reversed(_COLUMNS):
            batch_op.drop_column(name)
