"""The notifications service: tells coordinators by e-mail and SMS, and
partners' systems by webhooks."""

import logging
import uuid

import eventlet
from nameko.dependency_providers import Config
from nameko.extensions import DependencyProvider

from services.notifications import dispatch, known_agencies, retention, sign_in, webhook_delivery, webhooks
from services.notifications.messages import Messages
from services.notifications.metrics import notification_gauges, webhook_delivery_gauges
from services.notifications.transports import Mailer, sms_backend
from shared.contract import events
from shared.contract.errors import EXPECTED
from shared.plumbing.messaging import RpcProxy, event_handler
from shared.plumbing.metrics import Metrics
from shared.plumbing.request_id import RequestId
from shared.plumbing.rpc import rpc
from shared.plumbing.timers import every
from shared.storage.db import Database, Sessions, in_batches, make_engine
from shared.storage.sealing import WEBHOOK_SETTING, Sealer

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


class WebhookDeliveries(DependencyProvider):
    """This replica's `webhook_delivery.Deliverer`, on connections of its own
    (its tries run outside nameko's workers, so they take none of theirs),
    and the sealer of webhook secrets: without WEBHOOK_SECRET_KEYS the
    container does not start."""

    def setup(self):
        config = self.container.config
        self.sealer = Sealer.from_setting(config.get(WEBHOOK_SETTING), WEBHOOK_SETTING)
        self.settings = webhook_delivery.Settings.from_settings(config)
        self.engine = make_engine(config["NOTIFICATIONS_DATABASE_URL"], pool_size=4, max_overflow=8)
        self.deliverer = webhook_delivery.Deliverer(Sessions(self.engine), self.settings, self.sealer)

    def stop(self):
        self.deliverer.stop(grace=self.settings.timeout)
        self.engine.dispose()

    def kill(self):
        self.engine.dispose()

    def get_dependency(self, worker_ctx):
        return self


def _on(event_type):
    # Requeued on error (shared.plumbing.messaging's default): the event is not lost.
    return event_handler(events.REFERRALS, event_type)


class NotificationsService:
    name = "notifications"

    db = Database("NOTIFICATIONS_DATABASE_URL")
    request_id = RequestId()  # carries the gateway's X-Request-ID into log lines
    metrics = Metrics(
        notification_gauges, webhook_delivery_gauges
    )  # counts calls and events; shared.plumbing.metrics
    agencies = RpcProxy("agencies")
    transports = Transports()
    webhooks = WebhookDeliveries()
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
        hook = (
            webhook_delivery.event_name(event["event_type"]),
            webhook_delivery.referral_body(event),
            (event["sending_agency_id"], event["receiving_agency_id"]),
        )
        if not dispatch.record_together(self.db, event, rows, transports.policy, hook):
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
        batch = dispatch.SIDE_BY_SIDE
        while (
            dispatch.deliver_due(
                self.db, self.transports.mailer, self.transports.sms, self.transports.policy, limit=batch
            )
            == batch
        ):
            pass  # a full batch: more may be due

    @every("WEBHOOK_SWEEP_SECONDS")
    def deliver_webhooks(self):
        deliverer = self.webhooks.deliverer
        deliverer.sweep()  # returns at once: the tries run in the deliverer's pool
        told = []
        try:
            deliverer.tell_turned_off(
                lambda session, agency_id, url: told.extend(self.tell_deactivated(session, agency_id, url))
            )
        except Exception as error:  # still owed (owes_notice): told at a later sweep
            log.warning(
                "an agency could not be told yet that its webhook was turned off (%s: %s)",
                type(error).__name__,
                error,
            )
        transports = self.transports
        dispatch.send_claimed(self.db, told, transports.mailer, transports.sms, transports.policy)

    def ask_directory(self, agency_id):
        """The directory's record of an agency, from a timer's worker: within
        RPC_TIMEOUT_SECONDS, for a timer may fire before this service's reply
        queue is listened to, and a reply lost then would be waited for forever."""
        with eventlet.Timeout(
            float(self.config["RPC_TIMEOUT_SECONDS"]), TimeoutError("the directory did not answer in time")
        ):
            return self.agencies.get_agency(agency_id)

    def tell_deactivated(self, session, agency_id, url):
        """Record the e-mails to the agency's contacts that its webhook at
        `url` was turned off; the rows, to send once committed."""
        agency = known_agencies.lookup(self.db, (agency_id,), self.ask_directory)[str(agency_id)]
        event = {"event_id": str(uuid.uuid4()), "event_type": "webhook_deactivated"}
        days = self.webhooks.settings.deactivate_after.total_seconds() / 86400
        rows = dispatch.messages_to(
            agency,
            event,
            {"agency": agency["name"], "url": url, "days": f"{days:g}"},
            self.transports.messages,
            channels=("email",),
        )
        dispatch.record(session, event, rows, self.transports.policy)
        return rows

    @every("RETENTION_SWEEP_SECONDS")
    def mask_old_recipients(self):
        days = float(self.config["NOTIFICATION_RETENTION_DAYS"])
        masked = in_batches(self.db, lambda session: retention.mask_expired(session, days), retention.BATCH)
        if masked:
            log.info("retention: %d notification recipient(s) masked", masked)

    @rpc
    def ping(self):
        return "pong"

    @rpc(expected_exceptions=EXPECTED)
    def list_notifications(self, agency_id, filters):
        with self.db.begin() as session:
            return dispatch.listing(session, agency_id, filters)

    @rpc(expected_exceptions=EXPECTED)
    def create_webhook(self, agency_id, body):
        with self.db.begin() as session:
            return webhooks.create(
                session, self.webhooks.sealer, agency_id, body, self.webhooks.settings.allow_private
            )

    @rpc(expected_exceptions=EXPECTED)
    def list_webhooks(self, agency_id, filters):
        with self.db.begin() as session:
            return webhooks.listing(session, agency_id, filters)

    @rpc(expected_exceptions=EXPECTED)
    def get_webhook(self, agency_id, webhook_id):
        with self.db.begin() as session:
            return webhooks.get(session, agency_id, webhook_id)

    @rpc(expected_exceptions=EXPECTED)
    def change_webhook(self, agency_id, webhook_id, body):
        with self.db.begin() as session:
            return webhooks.change(session, agency_id, webhook_id, body, self.webhooks.settings.allow_private)

    @rpc(expected_exceptions=EXPECTED)
    def delete_webhook(self, agency_id, webhook_id):
        with self.db.begin() as session:
            webhooks.delete(session, agency_id, webhook_id)

    @rpc(expected_exceptions=EXPECTED)
    def rotate_webhook_secret(self, agency_id, webhook_id):
        with self.db.begin() as session:
            return webhooks.rotate_secret(session, self.webhooks.sealer, agency_id, webhook_id)

    @rpc(expected_exceptions=EXPECTED)
    def test_webhook(self, agency_id, webhook_id):
        with self.db.begin() as session:
            return webhooks.ping(session, agency_id, webhook_id)

    @rpc(expected_exceptions=EXPECTED)
    def list_webhook_deliveries(self, agency_id, webhook_id, filters):
        with self.db.begin() as session:
            return webhooks.deliveries(session, agency_id, webhook_id, filters)
