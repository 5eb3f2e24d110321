"""The notifications service's own metrics (shared.plumbing.metrics has those of
every service): each try of a message or a webhook delivery, counted where
its outcome is recorded, and the rows by status, read when scraped."""

from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select

from services.notifications.models import Notification, WebhookDelivery

CHANNELS = ("email", "sms")
NOTIFICATION_STATUSES = ("pending", "sent", "failed")
DELIVERY_STATUSES = ("pending", "delivered", "failed")

# sent; retry (the try failed, another is due later); failed (for good)
NOTIFICATION_SENDS = Counter(
    "notification_sends_total",
    "Tries at sending an e-mail or SMS, by outcome: "
    "sent, retry (another try follows) or failed (no more tries)",
    ["channel", "outcome"],
)
# delivered; retry; failed (refused, a 4xx, or its day of tries over)
WEBHOOK_ATTEMPTS = Counter(
    "webhook_attempts_total",
    "Tries at delivering to a partner's webhook, by outcome: delivered, retry or failed",
    ["outcome"],
)
for _channel in CHANNELS:
    for _outcome in ("sent", "retry", "failed"):
        NOTIFICATION_SENDS.labels(_channel, _outcome)
for _outcome in ("delivered", "retry", "failed"):
    WEBHOOK_ATTEMPTS.labels(_outcome)


def counted_by(rows, known):
    """{labels: count} from GROUP BY rows, every known combination there (0 if none)."""
    counts = dict.fromkeys(known, 0)
    for *labels, count in rows:
        counts[tuple(labels)] = count
    return counts


def notification_gauges(service, sessions):
    """Messages by channel and status: one GROUP BY over the table."""
    with sessions.single() as session:
        rows = session.execute(
            select(Notification.channel, Notification.status, func.count()).group_by(
                Notification.channel, Notification.status
            )
        ).all()
    gauge = GaugeMetricFamily(
        "notifications", "E-mails and SMS recorded, by channel and status", labels=["channel", "status"]
    )
    known = [(channel, status) for channel in CHANNELS for status in NOTIFICATION_STATUSES]
    for labels, count in counted_by(rows, known).items():
        gauge.add_metric(list(labels), count)
    return [gauge]


def webhook_delivery_gauges(service, sessions):
    """Webhook deliveries by status: one GROUP BY over the table."""
    with sessions.single() as session:
        rows = session.execute(
            select(WebhookDelivery.status, func.count()).group_by(WebhookDelivery.status)
        ).all()
    gauge = GaugeMetricFamily(
        "webhook_deliveries", "Deliveries owed to partners' webhooks, by status", labels=["status"]
    )
    for labels, count in counted_by(rows, [(status,) for status in DELIVERY_STATUSES]).items():
        gauge.add_metric(list(labels), count)
    return [gauge]
