"""Notification records keep their recipient's address for
NOTIFICATION_RETENTION_DAYS, then show it masked (the record stays: what
was sent, when, and how it went)."""

import datetime
import re

from sqlalchemy import func, select

from services.notifications.models import Notification

BATCH = 500


def mask(recipient):
    """`a***@example.org` for an e-mail address, `+99450*****67` for a
    phone number: enough to tell which contact it was, not to reach them.
    Masking a masked address gives it back unchanged."""
    if "@" in recipient:
        local, _, domain = recipient.rpartition("@")
        return f"{local[:1]}***@{domain}"
    if len(recipient) <= 8:
        return "*" * len(recipient)
    return recipient[:6] + "*" * (len(recipient) - 8) + recipient[-2:]


def mask_expired(session, retention_days, batch=BATCH):
    """Mask the recipients of up to `batch` records older than
    `retention_days` that are no longer being sent; returns how many. The
    address goes from the last error too (an SMTP refusal may quote it).
    Replicas share the work (FOR UPDATE SKIP LOCKED)."""
    cutoff = session.scalar(select(func.now())) - datetime.timedelta(days=retention_days)
    due = session.scalars(
        select(Notification)
        .where(
            Notification.recipient_masked_at.is_(None),
            Notification.created_at < cutoff,
            Notification.status != "pending",
        )
        .order_by(Notification.created_at)
        .limit(batch)
        .with_for_update(skip_locked=True)
    ).all()
    now = session.scalar(select(func.now()))
    for row in due:
        masked = mask(row.recipient)
        if row.last_error:  # as the server quoted it: in any case, or only its local part
            quoted = [(row.recipient, masked)]
            if "@" in row.recipient and len(row.recipient.split("@", 1)[0]) >= 3:
                quoted.append((row.recipient.split("@", 1)[0], masked.split("@", 1)[0]))
            for said, shown in quoted:
                row.last_error = re.sub(re.escape(said), shown, row.last_error, flags=re.IGNORECASE)
        row.recipient, row.recipient_masked_at = masked, now
    return len(due)
