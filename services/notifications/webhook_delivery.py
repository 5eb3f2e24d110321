"""Deliveries to partners' webhooks: owed when an event arrives, claimed
from the database, POSTed signed (Standard Webhooks), retried with backoff
for a day, and recorded.

A slow or dead endpoint holds up no one else: deliveries go out from a
bounded pool of green threads apart from the e-mail and SMS sweep, at most
`per_endpoint` at a time to one webhook from one replica, and only as many
are claimed as the pool has room for (the rest wait in the database, so
memory stays bounded however many are pending). A replica that dies
mid-delivery leaves it claimed for a lease, after which any replica tries
it again.
"""

import dataclasses
import datetime
import logging

import eventlet
from sqlalchemy import Interval, Uuid, bindparam, select, text
from sqlalchemy.dialects.postgresql import ARRAY
from standardwebhooks.webhooks import Webhook as Signer

from services.notifications import endpoints, webhook_http, webhooks
from services.notifications.metrics import WEBHOOK_ATTEMPTS
from shared.config import flag
from shared.plumbing.backoff import pause
from shared.storage.models import utcnow

log = logging.getLogger(__name__)

MOST_BETWEEN_TRIES = datetime.timedelta(hours=2)


def event_name(event_type):
    """What a webhook hears a referral event as: referral_accepted -> referral.accepted."""
    return event_type.replace("_", ".", 1)


def referral_body(event):
    """The body of the delivery of a referral `event` (normalised): ids,
    status, service type and version; never anything about the returnee."""
    data = {
        key: event[key]
        for key in (
            "referral_id",
            "reference",
            "status",
            "service_type",
            "sending_agency_id",
            "receiving_agency_id",
            "version",
        )
    }
    return webhooks.body_of(event_name(event["event_type"]), _aware(event["occurred_at"]), data)


def _aware(value):
    return value if isinstance(value, datetime.datetime) else datetime.datetime.fromisoformat(value)


@dataclasses.dataclass(frozen=True)
class Settings:
    allow_private: bool
    timeout: float
    backoff_seconds: float
    retry_for: datetime.timedelta
    deactivate_after: datetime.timedelta
    ca_file: str | None
    concurrency: int
    per_endpoint: int

    @classmethod
    def from_settings(cls, settings):
        return cls(
            allow_private=flag(settings["WEBHOOK_ALLOW_PRIVATE"]),
            timeout=float(settings["WEBHOOK_TIMEOUT_SECONDS"]),
            backoff_seconds=float(settings["WEBHOOK_BACKOFF_SECONDS"]),
            retry_for=datetime.timedelta(hours=float(settings["WEBHOOK_RETRY_HOURS"])),
            deactivate_after=datetime.timedelta(hours=float(settings["WEBHOOK_DEACTIVATE_AFTER_HOURS"])),
            ca_file=settings["WEBHOOK_CA_FILE"] or None,
            concurrency=int(settings["WEBHOOK_CONCURRENCY"]),
            per_endpoint=int(settings["WEBHOOK_PER_ENDPOINT"]),
        )

    @property
    def lease(self):
        """How long a claimed delivery is held: well past its longest try."""
        return datetime.timedelta(seconds=3 * self.timeout)


def signature(secrets, event_id, timestamp, body):
    """The `webhook-signature` header: one `v1,...` per secret, space apart."""
    return " ".join(Signer(secret).sign(str(event_id), timestamp, body) for secret in secrets)


def headers(claim, now, sealer):
    secrets = [sealer.open_text(claim.secret)]
    if claim.previous_secret:
        secrets.append(sealer.open_text(claim.previous_secret))
    return {
        "webhook-id": str(claim.event_id),
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature(secrets, claim.event_id, now, claim.body),
    }


@dataclasses.dataclass(frozen=True)
class Outcome:
    """How one try went: `status` is delivered, retry or failed."""

    status: str
    response_status: int | None = None
    error: str | None = None
    wait: float | None = None  # seconds, when the endpoint asked (429 Retry-After)
    gone: bool = False  # 410: the endpoint is no more


def attempt(claim, settings, sealer):
    """Try `claim` once; its `Outcome`. Resolving the name and the POST get
    `settings.timeout` each, so a try ends well inside its lease."""
    try:
        with eventlet.Timeout(settings.timeout, webhook_http.Unreachable("no DNS answer in time")):
            endpoint = endpoints.check(claim.url, settings.allow_private)
    except endpoints.Refused as refused:
        return Outcome("failed", error=f"refused: {refused}")
    except webhook_http.Unreachable as error:
        return Outcome("retry", error=str(error))
    now = utcnow()
    try:
        answer = webhook_http.post(
            endpoint, claim.body, headers(claim, now, sealer), settings.timeout, settings.ca_file
        )
    except webhook_http.Unreachable as error:
        return Outcome("retry", error=str(error)[:500])
    code, said = answer.status, answer.excerpt[:200]
    if 200 <= code < 300:
        return Outcome("delivered", code)
    if code >= 500 or code == 429:
        wait = (
            webhook_http.retry_after_seconds(answer.retry_after, now, settings.retry_for.total_seconds())
            if code == 429
            else None
        )
        return Outcome("retry", code, f"HTTP {code}: {said}".strip(), wait=wait)
    if 300 <= code < 400:
        return Outcome("failed", code, f"HTTP {code}: redirects are not followed")
    return Outcome("failed", code, f"HTTP {code}: {said}".strip(), gone=code == 410)


# Claims due deliveries of active webhooks, healthy ones or failing ones
# (`healthy`), at most `per_endpoint` of each webhook not `busy` in this
# replica, up to `room` in all; each claimed
# delivery's try is counted and it is held a lease ahead. A row another
# replica claimed meanwhile is skipped (SKIP LOCKED) or no longer matches.
CLAIM = text("""
WITH ranked AS (
    SELECT delivery.id, row_number() OVER (
        PARTITION BY delivery.webhook_id ORDER BY delivery.next_attempt_at, delivery.id) AS place
    FROM webhook_deliveries AS delivery JOIN webhooks AS webhook ON webhook.id = delivery.webhook_id
    WHERE delivery.status = 'pending' AND delivery.next_attempt_at <= now() AND webhook.active
        AND delivery.webhook_id <> ALL(:busy) AND (webhook.failing_since IS NULL) = :healthy
), picked AS (
    SELECT delivery.id FROM webhook_deliveries AS delivery JOIN ranked ON ranked.id = delivery.id
    WHERE ranked.place <= :per_endpoint AND delivery.status = 'pending' AND delivery.next_attempt_at <= now()
    ORDER BY delivery.next_attempt_at
    LIMIT :room
    FOR UPDATE OF delivery SKIP LOCKED
)
UPDATE webhook_deliveries AS delivery
SET attempts = delivery.attempts + 1, next_attempt_at = now() + :lease
FROM picked, webhooks AS webhook
WHERE delivery.id = picked.id AND webhook.id = delivery.webhook_id
RETURNING delivery.id, delivery.webhook_id, delivery.event_id, delivery.body, delivery.attempts,
    delivery.created_at, webhook.url, webhook.secret, webhook.failing_since IS NOT NULL AS failing,
    CASE WHEN webhook.previous_secret_expires_at > now() THEN webhook.previous_secret END AS previous_secret
""").bindparams(bindparam("busy", type_=ARRAY(Uuid())), bindparam("lease", type_=Interval()))

# The outcome of a try, if the claim still holds (the same attempt, still
# pending); and the webhook's run of failures started or ended with it.
SETTLE = text("""
WITH settled AS (
    UPDATE webhook_deliveries
    SET status = :status, last_response_status = :response_status, last_error = :error,
        next_attempt_at = coalesce(:next_attempt_at, next_attempt_at),
        delivered_at = CASE WHEN :status = 'delivered' THEN now() END
    WHERE id = :id AND attempts = :attempts AND status = 'pending'
    RETURNING webhook_id
)
UPDATE webhooks SET failing_since = CASE WHEN :status = 'delivered' THEN NULL
                                         ELSE coalesce(failing_since, now()) END
FROM settled WHERE webhooks.id = settled.webhook_id
RETURNING webhooks.failing_since
""").bindparams(bindparam("id", type_=Uuid()))


class Deliverer:
    """The webhook deliveries of one replica (see the module's docstring)."""

    def __init__(self, sessions, settings, sealer):
        self.sessions, self.settings, self.sealer = sessions, settings, sealer
        self.pool = eventlet.GreenPool(settings.concurrency)
        self.in_flight = {}  # webhook id -> deliveries being tried
        self.failing_in_flight = 0
        self.notices_due = True  # a webhook turned off may be owed a notice (so at start too)

    @property
    def failing_share(self):
        """The most of the pool that failing webhooks may hold, so that
        healthy ones always have room, however many endpoints hang."""
        return max(1, self.settings.concurrency // 2)

    def sweep(self):
        """Claim what is due and there is room for, healthy webhooks first,
        and start trying it; returns at once."""
        claims = self._claim(healthy=True, room=self.pool.free())
        failing_room = min(self.pool.free() - len(claims), self.failing_share - self.failing_in_flight)
        claims += self._claim(healthy=False, room=failing_room)
        for claim in claims:
            self.in_flight[claim.webhook_id] = self.in_flight.get(claim.webhook_id, 0) + 1
            self.failing_in_flight += claim.failing
            self.pool.spawn_n(self._deliver, claim)
        return len(claims)

    def _claim(self, healthy, room):
        if room <= 0:
            return []
        with self.sessions.connect() as connection:  # one statement: a transaction of its own
            return connection.execute(
                CLAIM,
                {
                    "busy": list(self.in_flight),
                    "per_endpoint": self.settings.per_endpoint,
                    "healthy": healthy,
                    "room": room,
                    "lease": self.settings.lease,
                },
            ).all()

    def _deliver(self, claim):
        try:
            outcome = attempt(claim, self.settings, self.sealer)
        except Exception as error:  # a fault of ours must not leave the delivery claimed for good
            log.exception("webhook delivery %s: unexpected error", claim.id)
            outcome = Outcome("retry", error=f"{type(error).__name__}: {error}")
        finally:
            left = self.in_flight.get(claim.webhook_id, 1) - 1
            if left:
                self.in_flight[claim.webhook_id] = left
            else:
                self.in_flight.pop(claim.webhook_id, None)
            self.failing_in_flight -= claim.failing
        try:
            self.settle(claim, outcome)
        except Exception:
            # Not recorded: the lease ends and the delivery is tried again
            # (a receiver dedupes by webhook-id).
            log.exception("webhook delivery %s: its outcome could not be recorded", claim.id)

    def settle(self, claim, outcome):
        status, next_at = outcome.status, None
        if status == "retry":
            now = utcnow()
            wait = max(
                outcome.wait or 0.0,
                pause(
                    claim.attempts,
                    self.settings.backoff_seconds,
                    MOST_BETWEEN_TRIES.total_seconds(),
                    jitter=0.2,
                ),
            )
            left = (claim.created_at + self.settings.retry_for - now).total_seconds()
            if wait < left:
                status, next_at = "pending", now + datetime.timedelta(seconds=wait)
            else:
                status = "failed"  # its day of tries is over
        WEBHOOK_ATTEMPTS.labels("retry" if status == "pending" else status).inc()
        owes_notice = False
        with self.sessions.begin() as session:
            held = session.execute(
                SETTLE,
                {
                    "id": claim.id,
                    "attempts": claim.attempts,
                    "status": status,
                    "response_status": outcome.response_status,
                    "error": outcome.error,
                    "next_attempt_at": next_at,
                },
            ).first()
            # Turned off for failing too long only by a delivery that has
            # failed for good: not by one refusal long ago and a 503 now.
            failing_too_long = (
                held
                and status == "failed"
                and held.failing_since is not None
                and held.failing_since <= utcnow() - self.settings.deactivate_after
            )
            if outcome.gone or failing_too_long:
                webhook = session.get(webhooks.Webhook, claim.webhook_id, with_for_update=True)
                if webhook is not None and webhook.active:
                    reason = (
                        "its endpoint answered 410 Gone"
                        if outcome.gone
                        else f"every delivery failed for {self.settings.deactivate_after.total_seconds() / 3600:g} h"
                    )
                    webhooks.deactivate(session, webhook, reason)
                    webhook.owes_notice = (
                        owes_notice
                    ) = not outcome.gone  # its agency is told (TELL_DEACTIVATED)
                    log.warning("webhook %s deactivated: %s", webhook.id, reason)
        # Only once committed: a sweep told before would find nothing owed yet.
        self.notices_due = self.notices_due or owes_notice
        # Delivered is a DEBUG line, as an e-mail sent is (both are counted in
        # the metrics); a retry or a failure stays at INFO.
        log.log(
            logging.DEBUG if status == "delivered" else logging.INFO,
            "webhook delivery %s (attempt %d): %s%s",
            claim.id,
            claim.attempts,
            status,
            f" ({outcome.error})" if outcome.error else "",
        )

    def tell_turned_off(self, tell):
        """`tell(session, agency_id, url)` for the webhooks turned off for
        failing too long whose agencies are still to be told, each in the
        transaction that marks it told (replicas skip one being told)."""
        if not self.notices_due:
            return
        # Cleared before looking, so that a notice owed from a moment later
        # (committed while this looks) sets it again for the next sweep.
        self.notices_due = False
        try:
            with self.sessions.begin() as session:
                owed = session.scalars(
                    select(webhooks.Webhook)
                    .where(webhooks.Webhook.owes_notice)
                    .limit(20)
                    .with_for_update(skip_locked=True)
                ).all()
                for webhook in owed:
                    tell(session, webhook.agency_id, webhook.url)
                    webhook.owes_notice = False
        except BaseException:
            self.notices_due = True  # still owed: told at a later sweep
            raise
        if len(owed) == 20:
            self.notices_due = True  # more may be owed

    def stop(self, grace):
        """Let tries under way end, for up to `grace` seconds; any cut short
        is tried again once its lease ends."""
        with eventlet.Timeout(grace, False):
            self.pool.waitall()
