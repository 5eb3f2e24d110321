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
