"""Process settings, read from the environment (../shared/API.md lists them).

Every process builds one plain dict of settings with `load()`; nameko services
get that dict as their container config, so a test can hand a container its
own databases and broker without touching the environment.
"""

import os

from shared.plumbing import amqp_uri

DEFAULTS = {
    # one RabbitMQ node, or a cluster's nodes separated by `;` (shared.plumbing.amqp_uri)
    "AMQP_URI": "amqp://guest:guest@localhost:5672/",
    "REFERRALS_DATABASE_URL": "postgresql://postgres@localhost:5432/referrals",
    "AGENCIES_DATABASE_URL": "postgresql://postgres@localhost:5432/agencies",
    "NOTIFICATIONS_DATABASE_URL": "postgresql://postgres@localhost:5432/notifications",
    "GATEWAY_PORT": "8000",
    # a service process serves Prometheus metrics on this port (empty: none; the gateway
    # serves its own on GATEWAY_PORT at /metrics); <SERVICE>_METRICS_PORT, where given,
    # for that service alone (bin/run gives each its own: 9101, 9102, 9103)
    "METRICS_PORT": "",
    "AGENCIES_METRICS_PORT": "",
    "REFERRALS_METRICS_PORT": "",
    "NOTIFICATIONS_METRICS_PORT": "",
    # how every process writes its log: "text" lines, or "json" lines (shared/plumbing/json_logs.py)
    "LOG_FORMAT": "text",
    # how much every process logs; each call answered and each message sent is a DEBUG line
    # (their counts and times are in /metrics)
    "LOG_LEVEL": "INFO",
    # where coordinators reach the gateway: links in e-mails, and whether cookies are Secure
    "PUBLIC_URL": "http://localhost:8000",
    # signs the coordinator pages' cookies and CSRF tokens (`make run` makes and keeps one)
    "SESSION_SECRET": "",
    # referrals: comma-separated base64 AES keys of 32 bytes that seal returnees' personal data;
    # the first seals, all open (rotate with `python -m services.referrals.rekey`); the service
    # does not start without one (`make run` makes and keeps a local one)
    "DATA_ENCRYPTION_KEYS": "",
    "WEBHOOK_SECRET_KEYS": "",  # the notifications service seals webhook secrets under these
    "BOOTSTRAP_ADMIN_KEY": "",
    "SMTP_HOST": "localhost",
    "SMTP_PORT": "1025",
    "SMTP_FROM": "Referral network <no-reply@referrals.example.org>",
    "SMS_BACKEND": "log",
    "SMS_HTTP_URL": "",
    "REFERRAL_RESPONSE_HOURS": "72",
    "RPC_TIMEOUT_SECONDS": "10",
    # how often each replica's timers look for work
    "OUTBOX_RELAY_SECONDS": "0.1",
    "OVERDUE_SWEEP_SECONDS": "30",
    "DELIVERY_SWEEP_SECONDS": "0.25",
    # personal data's lifetimes (../README.md, "Personal data"): a referral is erased this
    # many days after its final status; a notification's recipient is masked after these
    "RETENTION_DAYS": "365",
    "NOTIFICATION_RETENTION_DAYS": "90",
    # how often each replica erases, masks and deletes what has outlived its time
    "RETENTION_SWEEP_SECONDS": "3600",
    # notifications: tries per message, and the first pause between tries
    "NOTIFICATION_MAX_ATTEMPTS": "6",
    "NOTIFICATION_BACKOFF_SECONDS": "30",
    "SMTP_STARTTLS": "false",
    "SMTP_USERNAME": "",
    "SMTP_PASSWORD": "",
    # a PEM file of CAs to verify the SMTP server's certificate with (STARTTLS); empty: the system's
    "SMTP_CA_FILE": "",
    # the most one e-mail or SMS send may take, all in
    "NOTIFICATION_SEND_TIMEOUT_SECONDS": "10",
    # notifications: events handled at once (nameko's workers); each waits
    # mostly on an SMTP server or SMS provider, so more than the CPU-bound
    # services' nameko default of 10
    "NOTIFICATIONS_MAX_WORKERS": "40",
    # the services' queues: quorum (replicated in a RabbitMQ cluster) or classic;
    # a message delivered this many times and still failing goes to dead-letters.<service>
    "QUEUE_TYPE": "quorum",
    "DELIVERY_LIMIT": "5",
    # gateway: calls each API key may make (flask-limiter notation), counted where
    # RATE_LIMIT_STORAGE_URI says: Redis, shared by every gateway process, or
    # memory://, each process its own count; keys in Redis start with the prefix
    "RATE_LIMIT": "600/minute",
    "RATE_LIMIT_STORAGE_URI": "redis://localhost:6379",
    "RATE_LIMIT_KEY_PREFIX": "referral-network",
    # gateway: sign-in links each e-mail address, and each client address, may ask for
    "SIGN_IN_LIMIT_PER_ADDRESS": "5/15 minutes",
    "SIGN_IN_LIMIT_PER_CLIENT": "30/hour",
    # gateway: reverse proxies in front of it whose X-Forwarded-For it believes (0: none)
    "TRUSTED_PROXIES": "0",
    # gateway: the largest request body it reads (larger: 413)
    "MAX_BODY_BYTES": "1048576",
    # notifications: partners' webhooks (API.md, "Webhooks"). ALLOW_PRIVATE
    # lets a webhook call http and private addresses: development and tests only.
    "WEBHOOK_ALLOW_PRIVATE": "0",
    "WEBHOOK_TIMEOUT_SECONDS": "10",
    "WEBHOOK_BACKOFF_SECONDS": "5",
    "WEBHOOK_RETRY_HOURS": "24",
    "WEBHOOK_DEACTIVATE_AFTER_HOURS": "72",
    "WEBHOOK_CA_FILE": "",
    "WEBHOOK_CONCURRENCY": "50",  # deliveries under way at once, per replica
    "WEBHOOK_PER_ENDPOINT": "2",  # ... of them to one webhook
    "WEBHOOK_SWEEP_SECONDS": "0.25",
}

DATABASE_KEYS = {
    "referrals": "REFERRALS_DATABASE_URL",
    "agencies": "AGENCIES_DATABASE_URL",
    "notifications": "NOTIFICATIONS_DATABASE_URL",
}


def load(environ=None, **overrides):
    """The settings: environment over defaults, `overrides` over both."""
    environ = os.environ if environ is None else environ
    settings = {key: environ.get(key) or default for key, default in DEFAULTS.items()}
    settings.update(overrides)
    settings["AMQP_URI"] = amqp_uri.normalised(settings["AMQP_URI"])
    return settings


def flag(value):
    """A yes/no setting: 1, true, yes or on is yes."""
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def sqlalchemy_url(url):
    """A PostgreSQL URL as SQLAlchemy wants it for psycopg 3."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    raise ValueError(f"not a PostgreSQL URL: {url!r}")
