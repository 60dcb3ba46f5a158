"""exactly-once inbound effects and failed pushes that reach a person

- processed_inbound: the record that an inbound message (its dedupe key) had its effect, written
  in the effect's transaction, with the passive reply;
- push_failures: pushes that failed for good, per station, and whether a deputy was told;
- outbox.ticket_number: the ticket a push is about;
- citizens.scene / scene_started_at: the chat scene last entered (tells a state lost with Redis).

Revision ID: 0004
Revises: 0003
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "processed_inbound",
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("handled_at", sa.DateTime(), nullable=False),
        sa.Column("ticket_number", sa.Integer(), nullable=True),
        sa.Column("reply", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_processed_inbound")),
    )
    op.create_index(op.f("ix_processed_inbound_handled_at"), "processed_inbound", ["handled_at"])
    op.create_table(
        "push_failures",
        sa.Column("message_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("station_code", sa.String(length=64), nullable=False),
        sa.Column("ticket_number", sa.Integer(), nullable=True),
        sa.Column("recipient_openid", sa.String(length=128), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("failed_at", sa.DateTime(), nullable=False),
        sa.Column("told_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_push_failures")),
    )
    op.create_index(op.f("ix_push_failures_station_code"), "push_failures", ["station_code"])
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ticket_number", sa.Integer(), nullable=True))
    with op.batch_alter_table("citizens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("scene", sa.String(length=64), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("scene_started_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("citizens", schema=None) as batch_op:
        batch_op.drop_column("scene_started_at")
        batch_op.drop_column("scene")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("ticket_number")
    op.drop_index(op.f("ix_push_failures_station_code"), table_name="push_failures")
    op.drop_table("push_failures")
    op.drop_index(op.f("ix_processed_inbound_handled_at"), table_name="processed_inbound")
    op.drop_table("processed_inbound")
