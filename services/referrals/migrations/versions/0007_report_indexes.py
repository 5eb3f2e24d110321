"""indexes for reports

Revision ID: 0007
Revises: 0004

The reports (services/referrals/reports.py) pick referrals by the day they
were created and join each to its answer and its completion in the history.
`ix_referrals_created_at` serves the network-wide period (an agency's is
served by the sender and receiver indexes); it carries the columns the
counts read, so that the period is read from the index alone. The two
partial history indexes hold only the rows the joins look for: answers
(accept, decline) and completions, with their times.
"""
from alembic import op

revision = "0007"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE INDEX ix_referrals_created_at ON referrals (created_at) "
               "INCLUDE (status, overdue_announced_at, service_type, sending_agency_id, receiving_agency_id)")
    op.execute("CREATE INDEX ix_referral_history_answers ON referral_history (referral_id) INCLUDE (event, at) "
               "WHERE event IN ('accept', 'decline')")
    op.execute("CREATE INDEX ix_referral_history_completions ON referral_history (referral_id) INCLUDE (at) "
               "WHERE event = 'complete'")


def downgrade() -> None:
    op.drop_index("ix_referral_history_completions", table_name="referral_history")
    op.drop_index("ix_referral_history_answers", table_name="referral_history")
    op.drop_index("ix_referrals_created_at", table_name="referrals")
