"""directory_version: one number that changes whenever stations, deputies or duty shifts do

Each process keeps these three tables as one snapshot (storage/sql_directory.py) and reads this
number instead of the tables; triggers set it, so a change made anywhere (another worker, a
console import, plain SQL) is seen by every process at its next unit of work. The number is the
writing transaction's id on PostgreSQL and a random 64-bit one on SQLite: a rolled-back write
leaves no number that a later state could share.

Revision ID: 0015_directory_version
Revises: 0014_live_ticket_followers
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_directory_version"
down_revision: str | None = "0014_live_ticket_followers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("stations", "deputies", "duty_shifts")


def upgrade() -> None:
    op.create_table(
        "directory_version",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_directory_version"),
    )
    op.execute("INSERT INTO directory_version (id, version) VALUES (1, 0)")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION bump_directory_version() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN UPDATE directory_version SET version = txid_current() WHERE id = 1; RETURN NULL; END $$"
        )
        for table in TABLES:
            op.execute(f"CREATE TRIGGER {table}_directory_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
                       f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION bump_directory_version()")
    else:
        for table in TABLES:
            for action in ("INSERT", "UPDATE", "DELETE"):
                op.execute(f"CREATE TRIGGER {table}_directory_{action.lower()} AFTER {action} ON {table} "
                           f"BEGIN UPDATE directory_version SET version = random() WHERE id = 1; END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f"DROP TRIGGER {table}_directory_version ON {table}")
        op.execute("DROP FUNCTION bump_directory_version()")
    else:
        for table in TABLES:
            for action in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER {table}_directory_{action}")
    op.drop_table("directory_version")
