"""reception days and the citizens who follow a station's receptions

Revision ID: 0007
Revises: 0002 (the lead re-chains it after 0004–0006 of the other branches)
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0002"
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


def downgrade() -> None:
    op.drop_index(op.f("ix_follows_tagged"), table_name="follows")
    op.drop_index("ix_follows_station_active", table_name="follows")
    op.drop_table("follows")
    op.drop_index(op.f("ix_receptions_station_code"), table_name="receptions")
    op.drop_index("ix_receptions_day_start", table_name="receptions")
    op.drop_table("receptions")
