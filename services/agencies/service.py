"""The agencies service: the directory of agencies and their API keys."""
import logging

from services.agencies import directory
from services.agencies.models import Outbox
from shared import events
from shared.db import Database
from shared.errors import EXPECTED
from shared.outbox import OutboxRelay
from shared.request_id import RequestId
from shared.rpc import rpc
from shared.timers import every

log = logging.getLogger(__name__)


class DirectoryDatabase(Database):
    """The directory's database; on start it honours BOOTSTRAP_ADMIN_KEY."""

    def start(self):
        clear_key = self.container.config.get("BOOTSTRAP_ADMIN_KEY")
        if clear_key:
            with self.sessions.begin() as session:
                directory.ensure_admin_key(session, clear_key)
            log.info("bootstrap admin key is in place")


class AgenciesService:
    name = "agencies"

    db = DirectoryDatabase("AGENCIES_DATABASE_URL")
    request_id = RequestId()  # carries the gateway's X-Request-ID into log lines
    # Nobody has to hear of directory changes, so not `mandatory`.
    relay = OutboxRelay(Outbox, events.AGENCIES, mandatory=False)

    @every("OUTBOX_RELAY_SECONDS")
    def relay_outbox(self):
        self.relay.drain()

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
    def authenticate(self, clear_key):
        with self.db.single() as session:
            return directory.authenticate(session, clear_key)
