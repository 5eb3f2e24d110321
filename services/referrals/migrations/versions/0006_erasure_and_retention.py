"""erasure and retention

Revision ID: 0006
Revises: 0004

A referral can be erased: its returnee, consent and free texts become null
(`erased_at` says when), its history entries' details too (the append-only
trigger now lets exactly that through), and the digest of the request that
made it. Its region is kept apart (`region`) for reports, and the time it
reached its final status (`closed_at`) starts its retention. The access log
may name no agency: the retention timer is the network itself.
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0004"
branch_labels = None
depends_on = None

FINAL = "('declined', 'completed', 'cancelled')"


def upgrade() -> None:
    op.add_column("referrals", sa.Column("region", sa.Text(), nullable=True))
    op.add_column("referrals", sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("referrals", sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True))
    op.alter_column("referrals", "returnee", nullable=True)
    op.alter_column("referrals", "consent", nullable=True)
    op.alter_column("idempotency_keys", "request_digest", nullable=True)
    op.alter_column("referral_access_log", "agency_id", nullable=True)
    # The region from the returnee where it is still JSON in clear (a
    # migration that encrypts the returnee keeps the region in clear).
    op.execute("""
        DO $$ BEGIN
            IF (SELECT data_type FROM information_schema.columns
                WHERE table_name = 'referrals' AND column_name = 'returnee') = 'jsonb' THEN
                UPDATE referrals SET region = returnee->>'region' WHERE jsonb_typeof(returnee) = 'object';
            END IF;
        END $$
    """)
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
    # History stays append-only, but for erasure: an update that sets the
    # detail to null and changes nothing else.
    op.execute("""
        CREATE FUNCTION refuse_history_change_but_erasure() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'UPDATE' AND NEW.detail IS NULL
                    AND to_jsonb(NEW) - 'detail' = to_jsonb(OLD) - 'detail' THEN
                RETURN NEW;
            END IF;
            RAISE EXCEPTION '% is append-only (but for erasing details)', TG_TABLE_NAME;
        END;
        $$
    """)
    op.execute("DROP TRIGGER referral_history_append_only ON referral_history")
    op.execute("CREATE TRIGGER referral_history_append_only BEFORE UPDATE OR DELETE ON referral_history "
               "FOR EACH ROW EXECUTE FUNCTION refuse_history_change_but_erasure()")


def downgrade() -> None:
    op.execute("DROP TRIGGER referral_history_append_only ON referral_history")
    op.execute("CREATE TRIGGER referral_history_append_only BEFORE UPDATE OR DELETE ON referral_history "
               "FOR EACH ROW EXECUTE FUNCTION refuse_audit_change()")
    op.execute("DROP FUNCTION refuse_history_change_but_erasure()")
    op.drop_index("ix_idempotency_keys_created_at", table_name="idempotency_keys")
    op.drop_index("ix_referrals_closed_unerased", table_name="referrals")
    # The columns stay nullable: erased rows (and the access log's entries
    # of the timer, append-only) cannot take the old NOT NULLs back.
    op.drop_column("referrals", "erased_at")
    op.drop_column("referrals", "closed_at")
    op.drop_column("referrals", "region")
