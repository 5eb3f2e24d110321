"""recipients masked after their retention

Revision ID: 0004
Revises: 0003

A notification record's recipient is masked NOTIFICATION_RETENTION_DAYS
after it was made (`recipient_masked_at` says when). Masked addresses may
look alike (a.one@x.org and a.two@x.org are both a***@x.org), so the one
message per event, channel and address rule holds for unmasked ones.
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("notifications", sa.Column("recipient_masked_at", sa.DateTime(timezone=True), nullable=True))
    op.drop_constraint("uq_notifications_event_id_channel_recipient", "notifications", type_="unique")
    op.create_index("uq_notifications_event_id_channel_recipient", "notifications",
                    ["event_id", "channel", "recipient"], unique=True,
                    postgresql_where=sa.text("recipient_masked_at IS NULL"))
    op.create_index("ix_notifications_unmasked_created", "notifications", ["created_at"],
                    postgresql_where=sa.text("recipient_masked_at IS NULL"))


def downgrade() -> None:
    op.drop_index("ix_notifications_unmasked_created", table_name="notifications")
    op.drop_index("uq_notifications_event_id_channel_recipient", table_name="notifications")
    op.create_unique_constraint("uq_notifications_event_id_channel_recipient", "notifications",
                                ["event_id", "channel", "recipient"])
    op.drop_column("notifications", "recipient_masked_at")
