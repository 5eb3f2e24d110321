"""a version on each referral, grown by every change

Revision ID: 0004
Revises: 0003

Events carry it, so that a partner's system that hears of changes out of
order can tell a late one. Existing referrals start at their number of
history entries (one per change so far).
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("referrals", sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
    op.execute("""
        UPDATE referrals SET version = counted.n
        FROM (SELECT referral_id, count(*) AS n FROM referral_history GROUP BY referral_id) AS counted
        WHERE counted.referral_id = referrals.id
    """)


def downgrade() -> None:
    op.drop_column("referrals", "version")
