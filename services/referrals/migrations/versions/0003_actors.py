"""who did it: the actor of each history entry and access

Revision ID: 0003
Revises: 0002

An entry names its actor: the API key (id and prefix), the coordinator
(contact id and name) or the system (a timer). Entries written before this
have none (null).
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TABLES = ("referral_history", "referral_access_log")


def upgrade() -> None:
    for table in TABLES:
        op.add_column(table, sa.Column("actor_type", sa.Text(), nullable=True))
        op.add_column(table, sa.Column("actor_id", sa.Uuid(), nullable=True))
        op.add_column(table, sa.Column("actor_name", sa.Text(), nullable=True))


def downgrade() -> None:
    for table in TABLES:
        for column in ("actor_name", "actor_id", "actor_type"):
            op.drop_column(table, column)
