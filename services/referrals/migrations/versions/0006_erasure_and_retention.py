"""erasure and retention

Revision ID: 0006
Revises: 0005

A referral can be erased: its returnee, consent and free texts become null
(`erased_at` says when), its history entries' details too (0005's
append-only trigger lets an update of the detail alone through), and the
digest of the request that made it. Its region is kept apart already
(0005's `returnee_region`), and the time it reached its final status
(`closed_at`) starts its retention. The access log may name no agency: the
retention timer is the network itself.
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

FINAL = "('declined', 'completed', 'cancelled')"


def upgrade() -> None:
    op.add_column("referrals", sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("referrals", sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True))
    op.alter_column("referrals", "returnee", nullable=True)
    op.alter_column("referrals", "consent", nullable=True)
    op.alter_column("idempotency_keys", "request_digest", nullable=True)
    op.alter_column("referral_access_log", "agency_id", nullable=True)
    op.execute(f"""
        UPDATE referrals SET closed_at = coalesce(
            (SELECT max(at) FROM referral_history AS entry
             WHERE entry.referral_id = referrals.id AND entry.to_status IN {FINAL}),
            updated_at)
        WHERE status IN {FINAL}
    """)
    op.create_index("ix_referrals_closed_unerased", "referrals", ["closed_at"],
                    postgresql_where=sa.text("erased_at IS NULL AND closed_at IS NOT NULL"))
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_idempotency_keys_created_at", table_name="idempotency_keys")
    op.drop_index("ix_referrals_closed_unerased", table_name="referrals")
    # The columns stay nullable: erased rows (and the access log's entries
    # of the timer, append-only) cannot take the old NOT NULLs back.
    op.drop_column("referrals", "erased_at")
    op.drop_column("referrals", "closed_at")
