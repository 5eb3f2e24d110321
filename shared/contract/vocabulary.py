"""The fixed value sets of the public contract (../shared/API.md)."""

AGENCY_KINDS = ("government", "international", "ngo", "municipality", "private")
SERVICE_TYPES = (
    "housing",
    "employment",
    "health",
    "psychosocial",
    "legal",
    "education",
    "documentation",
    "financial",
)
CONTACT_LANGUAGES = ("az", "ru", "en")
CHANNELS = ("email", "sms")
KEY_ROLES = ("agency", "admin")
PRIORITIES = ("normal", "urgent")
CONSENT_METHODS = ("written", "verbal", "electronic")
SEXES = ("female", "male", "other", "unknown")
REFERRAL_STATUSES = ("sent", "accepted", "declined", "in_progress", "completed", "cancelled")
NOTIFICATION_STATUSES = ("pending", "sent", "failed")
ACTOR_TYPES = ("api_key", "coordinator", "system")
# What a webhook may subscribe to (a referral event "referral_accepted" is
# heard as "referral.accepted"); "ping" is what the test call sends.
WEBHOOK_EVENTS = (
    "referral.sent",
    "referral.accepted",
    "referral.declined",
    "referral.started",
    "referral.completed",
    "referral.cancelled",
    "referral.overdue",
    "referral.erased",
)
WEBHOOK_PING = "ping"
DELIVERY_STATUSES = ("pending", "delivered", "failed")
