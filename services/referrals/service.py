"""The referrals service: cases, their lifecycle, and the events they raise."""

import logging

from nameko.dependency_providers import Config
from nameko.extensions import DependencyProvider
from sqlalchemy.exc import IntegrityError

from services.referrals import cases, erasure, reports
from services.referrals.models import Outbox
from shared.contract import events
from shared.contract.errors import EXPECTED, NotFound
from shared.plumbing.announced_cache import AnnouncedCache
from shared.plumbing.messaging import RpcProxy
from shared.plumbing.metrics import Metrics
from shared.plumbing.outbox import OutboxRelay
from shared.plumbing.request_id import RequestId
from shared.plumbing.rpc import rpc
from shared.plumbing.timers import every
from shared.storage.db import Database, in_batches
from shared.storage.sealing import Sealing

log = logging.getLogger(__name__)


class DirectoryCache(DependencyProvider):
    """The directory's records of agencies, kept by this process and dropped
    when the directory announces a change (shared.plumbing.announced_cache): the
    receiver of a new referral is checked without an RPC per referral."""

    def setup(self):
        self.cache = AnnouncedCache(
            self.container.config["AMQP_URI"],
            events.AGENCIES,
            [events.AGENCY_UPDATED],
            names_in=lambda _, payload: [payload["agency"]["id"]],
            name_of=lambda agency: agency["id"],
        )

    def stop(self):
        self.cache.close()

    kill = stop

    def get_dependency(self, worker_ctx):
        return self.cache


class ReferralsService:
    name = "referrals"

    db = Database("REFERRALS_DATABASE_URL")
    request_id = RequestId()  # carries the gateway's X-Request-ID into log lines
    metrics = Metrics()  # counts calls and events; shared.plumbing.metrics
    config = Config()
    relay = OutboxRelay(Outbox, events.REFERRALS)
    agencies = RpcProxy("agencies")
    directory = DirectoryCache()  # the agencies' records, as fresh as an RPC for each
    sealer = Sealing()  # seals and opens the returnee's data (DATA_ENCRYPTION_KEYS)

    @rpc
    def ping(self):
        return "pong"

    @rpc(expected_exceptions=EXPECTED)
    def create_referral(self, sender_id, body, idempotency_key=None, actor=None):
        data = cases.load_new(body)
        idempotency = (idempotency_key, cases.request_digest(body)) if idempotency_key else None
        if idempotency:
            with self.db.begin() as session:
                earlier = cases.find_idempotent(session, self.sealer, sender_id, *idempotency, actor)
            if earlier:
                return earlier
        receiver_id = str(data["receiving_agency_id"])
        receiver = self.directory.get(receiver_id, lambda: self.agency_or_none(receiver_id))
        cases.check_receiver(sender_id, data, receiver)
        hours = float(self.config["REFERRAL_RESPONSE_HOURS"])
        try:
            with self.db.single() as session:  # one statement: see cases.create
                return cases.create(session, self.sealer, sender_id, data, hours, idempotency, actor)
        except IntegrityError:
            if not idempotency:
                raise
            # The same key raced us and won: answer with what it made.
            with self.db.begin() as session:
                return cases.find_idempotent(session, self.sealer, sender_id, *idempotency, actor)

    def agency_or_none(self, agency_id):
        try:
            return self.agencies.get_agency(agency_id)
        except NotFound:
            return None

    @rpc(expected_exceptions=EXPECTED)
    def get_referral(self, agency_id, referral_id, actor=None):
        with self.db.begin() as session:
            return cases.read(session, self.sealer, agency_id, referral_id, actor)

    @rpc(expected_exceptions=EXPECTED)
    def list_referrals(self, agency_id, filters, actor=None):
        with self.db.single() as session:  # read committed: each statement sees its own snapshot anyway
            return cases.listing(session, self.sealer, agency_id, filters, actor)

    @rpc(expected_exceptions=EXPECTED)
    def move_referral(self, agency_id, referral_id, move, body=None, actor=None):
        with self.db.single() as session:  # one statement: see cases.move
            return cases.move(session, self.sealer, agency_id, referral_id, move, body, actor)

    @rpc(expected_exceptions=EXPECTED)
    def referral_history(self, agency_id, referral_id, actor=None):
        with self.db.begin() as session:
            return cases.history(session, self.sealer, agency_id, referral_id, actor)

    @rpc(expected_exceptions=EXPECTED)
    def erase_referral(self, agency_id, referral_id, body=None, actor=None):
        with self.db.begin() as session:
            return erasure.erase(session, self.sealer, agency_id, referral_id, body, actor)

    @rpc(expected_exceptions=EXPECTED)
    def referral_access_log(self, agency_id, referral_id, query=None):
        with self.db.begin() as session:
            return erasure.access_log(session, agency_id, referral_id, query)

    @rpc(expected_exceptions=EXPECTED)
    def coordinator_inbox(self, agency_id, filters, actor):
        """The received and sent boxes as a coordinator's inbox shows them."""
        with self.db.single() as session:
            return cases.inbox(session, self.sealer, agency_id, filters, actor)

    @rpc(expected_exceptions=EXPECTED)
    def referral_with_history(self, agency_id, referral_id, actor):
        """A referral and its history, for a coordinator's page of it."""
        with self.db.begin() as session:
            return cases.read_with_history(session, self.sealer, agency_id, referral_id, actor)

    @rpc(expected_exceptions=EXPECTED)
    def referral_report(self, query, agency_id=None):
        """The report `query` asks for ({"from", "to", "group_by"}): of
        `agency_id`'s referrals, sent and received, or, when None, of the
        whole network with small counts withheld (see reports)."""
        with self.db.begin() as session:  # a transaction: the query's own settings (reports.SETTINGS)
            return reports.report(session, query, agency_id)

    @every("OUTBOX_RELAY_SECONDS")
    def relay_outbox(self):
        self.relay.drain()

    @every("OVERDUE_SWEEP_SECONDS")
    def sweep_overdue(self):
        with self.db.begin() as session:
            count = cases.announce_overdue(session)
        if count:
            log.info("%d referral(s) became overdue", count)

    @every("RETENTION_SWEEP_SECONDS")
    def sweep_retention(self):
        """Erase referrals RETENTION_DAYS after their final status, a batch a
        transaction, and delete Idempotency-Keys past their use."""
        days = float(self.config["RETENTION_DAYS"])
        erased = in_batches(self.db, lambda session: erasure.erase_expired(session, days), erasure.BATCH)
        with self.db.begin() as session:
            deleted = erasure.delete_old_idempotency_keys(session)
        if erased or deleted:
            log.info("retention: %d referral(s) erased, %d idempotency key(s) deleted", erased, deleted)
