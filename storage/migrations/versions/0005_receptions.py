"""reception days, the citizens who follow a station's receptions (and the towns' WeChat tags), broadcasts and their sends,
each user's monthly mass-message budget, and the reminders done

Revision ID: 0005
Revises: 0004
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "receptions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("station_code", sa.String(length=64), nullable=False),
        sa.Column("deputy_codes", sa.JSON(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("start", sa.Time(), nullable=False),
        sa.Column("end", sa.Time(), nullable=False),
        sa.Column("topic", sa.String(length=200), nullable=False),
        sa.Column("place", sa.String(length=500), nullable=False),
        sa.Column("live_url", sa.String(length=500), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("follow_up", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_receptions")),
        sa.UniqueConstraint("station_code", "day", "start", name="uq_receptions_key"),
    )
    op.create_index("ix_receptions_day_start", "receptions", ["day", "start"], unique=False)
    op.create_index(op.f("ix_receptions_station_code"), "receptions", ["station_code"], unique=False)
    op.create_table(
        "follows",
        sa.Column("openid", sa.String(length=128), nullable=False),
        sa.Column("station_code", sa.String(length=64), nullable=False),
        sa.Column("since", sa.DateTime(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("tagged", sa.Boolean(), nullable=False),
        sa.Column("morning_reminder", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("openid", "station_code", name=op.f("pk_follows")),
    )
    op.create_index("ix_follows_station_active", "follows", ["station_code", "active"], unique=False)
    op.create_index(op.f("ix_follows_tagged"), "follows", ["tagged"], unique=False)
    op.create_table(
        "town_tags",
        sa.Column("town", sa.String(length=100), nullable=False),
        sa.Column("tag_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("town", name=op.f("pk_town_tags")),
    )
    op.create_table(
        "reception_reminders",
        sa.Column("reception_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("openids", sa.JSON(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("reception_id", "kind", name=op.f("pk_reception_reminders")),
    )
    op.create_table(
        "broadcasts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("audience_kind", sa.String(length=16), nullable=False),
        sa.Column("audience", sa.String(length=100), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("reception_id", sa.Integer(), nullable=True),
        sa.Column("plan", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_broadcasts")),
    )
    op.create_table(
        "broadcast_sends",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("broadcast_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("tag_id", sa.Integer(), nullable=True),
        sa.Column("openids", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("claimed_until", sa.DateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("msg_id", sa.String(length=64), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["broadcast_id"], ["broadcasts.id"], name=op.f("fk_broadcast_sends_broadcast_id_broadcasts"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_broadcast_sends")),
        sa.UniqueConstraint("broadcast_id", "seq", name="uq_broadcast_sends_seq"),
    )
    op.create_index("ix_broadcast_sends_broadcast_status", "broadcast_sends", ["broadcast_id", "status"], unique=False)
    op.create_table(
        "mass_budget",
        sa.Column("openid", sa.String(length=128), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("used", sa.SmallInteger(), nullable=False),
        sa.PrimaryKeyConstraint("openid", "month", name=op.f("pk_mass_budget")),
    )


def downgrade() -> None:
    op.drop_table("mass_budget")
    op.drop_index("ix_broadcast_sends_broadcast_status", table_name="broadcast_sends")
    op.drop_table("broadcast_sends")
    op.drop_table("broadcasts")
    op.drop_table("reception_reminders")
    op.drop_table("town_tags")
    op.drop_index(op.f("ix_follows_tagged"), table_name="follows")
    op.drop_index("ix_follows_station_active", table_name="follows")
    op.drop_table("follows")
    op.drop_index(op.f("ix_receptions_station_code"), table_name="receptions")
    op.drop_index("ix_receptions_day_start", table_name="receptions")
    op.drop_table("receptions")
