"""The agencies service: the directory of agencies, their API keys, and
their coordinators' sign-in and sessions."""

import functools
import logging
import uuid

from nameko.events import EventDispatcher
from nameko.extensions import DependencyProvider

from services.agencies import coordinators, directory
from services.agencies.models import Outbox
from shared.contract import events
from shared.contract.errors import EXPECTED
from shared.plumbing.metrics import Metrics
from shared.plumbing.outbox import OutboxRelay
from shared.plumbing.request_id import RequestId
from shared.plumbing.rpc import rpc
from shared.plumbing.timers import every
from shared.storage.db import Database

log = logging.getLogger(__name__)


class DirectoryDatabase(Database):
    """The directory's database; on start it honours BOOTSTRAP_ADMIN_KEY."""

    def start(self):
        clear_key = self.container.config.get("BOOTSTRAP_ADMIN_KEY")
        if clear_key:
            with self.sessions.begin() as session:
                directory.ensure_admin_key(session, clear_key)
            log.info("bootstrap admin key is in place")


class InBackground(DependencyProvider):
    """`self.in_background(fn)`: run `fn` in a thread of the container's own,
    after the worker has answered (it must catch what it raises: an error
    in a managed thread stops the container)."""

    def get_dependency(self, worker_ctx):
        return self.container.spawn_managed_thread


class AgenciesService:
    name = "agencies"

    db = DirectoryDatabase("AGENCIES_DATABASE_URL")
    request_id = RequestId()  # carries the gateway's X-Request-ID into log lines
    metrics = Metrics()  # counts calls and events; shared.plumbing.metrics
    # Nobody has to hear of directory changes, so not `mandatory`.
    relay = OutboxRelay(Outbox, events.AGENCIES, mandatory=False)

    # A sign-in link goes to the notifications service at once and nowhere
    # else: not through the outbox (no table keeps the clear token), not
    # written to the broker's disk, and dropped when the link has expired.
    send_link = EventDispatcher(delivery_mode=1, expiration=coordinators.LINK_LIFETIME.total_seconds())
    in_background = InBackground()

    @every("OUTBOX_RELAY_SECONDS")
    def relay_outbox(self):
        self.relay.drain()

    @every("RETENTION_SWEEP_SECONDS")
    def delete_spent_sign_ins(self):
        with self.db.begin() as session:
            links, sessions = coordinators.delete_spent(session)
        if links or sessions:
            log.info("retention: %d sign-in link(s) and %d session(s) deleted", links, sessions)

    @rpc
    def ping(self):
        return "pong"

    @rpc(expected_exceptions=EXPECTED)
    def create_agency(self, body):
        with self.db.begin() as session:
            return directory.create(session, body)

    @rpc(expected_exceptions=EXPECTED)
    def get_agency(self, agency_id):
        with self.db.single() as session:
            return directory.get(session, agency_id)

    @rpc
    def agency_names(self, agency_ids):
        """{id: name} of the agencies among `agency_ids` (a page's worth)."""
        with self.db.single() as session:
            return directory.names_of(session, agency_ids)

    @rpc(expected_exceptions=EXPECTED)
    def search_agencies(self, filters):
        with self.db.begin() as session:
            return directory.search(session, filters)

    @rpc(expected_exceptions=EXPECTED)
    def update_agency(self, agency_id, body, caller_is_admin):
        with self.db.begin() as session:
            changed = directory.change(session, agency_id, body, caller_is_admin)
        # caches of the directory must not serve the old state once we answer
        self.relay.wait_until_published()
        return changed

    @rpc(expected_exceptions=EXPECTED)
    def issue_api_key(self, agency_id, role):
        with self.db.begin() as session:
            return directory.issue_key(session, agency_id, role)

    @rpc(expected_exceptions=EXPECTED)
    def revoke_api_key(self, agency_id, key_id):
        with self.db.begin() as session:
            directory.revoke_key(session, agency_id, key_id)
        self.relay.wait_until_published()  # "the key stops working at once", also where it is cached

    @rpc
    def authenticate(self, key_digest):
        """Who holds the key of this digest; the clear key never rides the broker."""
        with self.db.single() as session:
            return directory.authenticate(session, key_digest)

    @rpc
    def request_sign_in(self, email):
        """E-mail a sign-in link to each contact with this address; nothing
        for an unknown one. Done after the answer, so that the caller waits
        as long whether or not the address is a coordinator's."""
        self.in_background(functools.partial(self.send_links, email, self.send_link))

    def send_links(self, email, dispatch):
        try:
            with self.db.begin() as session:
                links = coordinators.new_links(session, email)
            for token, coordinator in links:
                dispatch(
                    events.SIGN_IN_LINK,
                    {
                        "event_id": str(uuid.uuid4()),
                        "token": token,
                        "coordinator": coordinator,
                        "valid_minutes": int(coordinators.LINK_LIFETIME.total_seconds() // 60),
                    },
                )
                log.info("sign-in link for contact %s sent to be e-mailed", coordinator["contact_id"])
        except Exception:  # the coordinator can ask again; the service goes on
            log.exception("a sign-in link could not be made or sent")

    @rpc
    def sign_in_link_is_live(self, link_digest):
        with self.db.single() as session:
            return coordinators.link_is_live(session, link_digest)

    @rpc
    def sign_in(self, link_digest, session_digest):
        with self.db.begin() as session:
            return coordinators.sign_in(session, link_digest, session_digest)

    @rpc
    def coordinator_session(self, session_digest):
        with self.db.single() as session:
            return coordinators.session_coordinator(session, session_digest)

    @rpc
    def sign_out(self, session_digest):
        with self.db.single() as session:
            coordinators.sign_out(session, session_digest)
