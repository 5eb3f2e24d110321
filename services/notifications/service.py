"""The notifications service: tells coordinators by e-mail and SMS."""
import logging

import eventlet
from nameko.dependency_providers import Config
from nameko.extensions import DependencyProvider

from services.notifications import dispatch, known_agencies, retention, sign_in
from services.notifications.messages import Messages
from services.notifications.transports import Mailer, sms_backend
from shared import events
from shared.db import Database
from shared.errors import EXPECTED
from shared.messaging import RpcProxy, event_handler
from shared.request_id import RequestId
from shared.rpc import rpc
from shared.timers import every

log = logging.getLogger(__name__)


class Transports(DependencyProvider):
    """The mailer, the SMS backend, the message templates and the retry
    policy, made once."""

    def setup(self):
        config = self.container.config
        self.mailer = Mailer(config)
        self.sms = sms_backend(config)
        self.messages = Messages(public_url=config["PUBLIC_URL"])
        self.policy = dispatch.RetryPolicy.from_settings(config)

    def stop(self):
        self.mailer.close()

    def get_dependency(self, worker_ctx):
        return self


def _on(event_type):
    # Requeued on error (shared.messaging's default): the event is not lost.
    return event_handler(events.REFERRALS, event_type)


class NotificationsService:
    name = "notifications"

    db = Database("NOTIFICATIONS_DATABASE_URL")
    request_id = RequestId()  # carries the gateway's X-Request-ID into log lines
    agencies = RpcProxy("agencies")
    transports = Transports()
    config = Config()

    def handle(self, payload):
        event = events.referral_event.load(payload)
        event = events.referral_event.dump(event)  # normalised, JSON-ready
        rows = []
        if dispatch.AUDIENCE.get(event["event_type"]):
            sender, receiver = event["sending_agency_id"], event["receiving_agency_id"]
            try:
                known = known_agencies.lookup(self.db, (sender, receiver), self.agencies.get_agency)
            except Exception:
                eventlet.sleep(1)  # do not spin on a redelivery while the directory is away
                raise
            parties = {"sender": known[sender], "receiver": known[receiver]}
            rows = dispatch.plan(event, parties, self.transports.messages)
        transports = self.transports
        with self.db.single() as session:
            if not dispatch.record(session, event, rows, transports.policy):
                log.info("event %s was handled before; nothing sent again", event["event_id"])
                return
        # Sent now rather than at the sweep's next round: the sweep is for retries.
        dispatch.send_claimed(self.db, rows, transports.mailer, transports.sms, transports.policy)

    @event_handler(events.AGENCIES, events.AGENCY_CREATED)
    def on_agency_created(self, payload):
        self.remember_agency(payload)

    @event_handler(events.AGENCIES, events.AGENCY_UPDATED)
    def on_agency_updated(self, payload):
        self.remember_agency(payload)

    # The link is a secret: its queue is classic and not durable (a quorum
    # queue writes every message to disk), and a failure is not requeued
    # (send_link tries a few times; then the coordinator asks again).
    @event_handler(events.AGENCIES, events.SIGN_IN_LINK, transient=True, requeue_on_error=False)
    def on_sign_in_link(self, payload):
        transports = self.transports
        sign_in.send_link(payload, transports.messages, transports.mailer, transports.policy.send_timeout)

    def remember_agency(self, payload):
        with self.db.begin() as session:
            known_agencies.remember(session, events.agency_event.load(payload)["agency"])

    @_on(events.REFERRAL_SENT)
    def on_sent(self, payload):
        self.handle(payload)

    @_on(events.REFERRAL_ACCEPTED)
    def on_accepted(self, payload):
        self.handle(payload)

    @_on(events.REFERRAL_DECLINED)
    def on_declined(self, payload):
        self.handle(payload)

    @_on(events.REFERRAL_STARTED)
    def on_started(self, payload):
        self.handle(payload)  # nobody is told (API.md); recorded as handled

    @_on(events.REFERRAL_COMPLETED)
    def on_completed(self, payload):
        self.handle(payload)

    @_on(events.REFERRAL_CANCELLED)
    def on_cancelled(self, payload):
        self.handle(payload)

    @_on(events.REFERRAL_OVERDUE)
    def on_overdue(self, payload):
        self.handle(payload)

    @_on(events.REFERRAL_ERASED)
    def on_erased(self, payload):
        self.handle(payload)

    @every("DELIVERY_SWEEP_SECONDS")
    def deliver(self):
        batch = 20
        while dispatch.deliver_due(self.db, self.transports.mailer, self.transports.sms,
                                   self.transports.policy, limit=batch) == batch:
            pass  # a full batch: more may be due

    @every("RETENTION_SWEEP_SECONDS")
    def mask_old_recipients(self):
        days, masked = float(self.config["NOTIFICATION_RETENTION_DAYS"]), 0
        while True:
            with self.db.begin() as session:
                count = retention.mask_expired(session, days)
            masked += count
            if count < retention.BATCH:
                break
        if masked:
            log.info("retention: %d notification recipient(s) masked", masked)

    @rpc
    def ping(self):
        return "pong"

    @rpc(expected_exceptions=EXPECTED)
    def list_notifications(self, agency_id, filters):
        with self.db.begin() as session:
            return dispatch.listing(session, agency_id, filters)
