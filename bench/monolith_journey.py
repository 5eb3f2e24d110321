"""The same-work monolith: what a team would write instead of the network
to do the journey the bench's partners do (create, list sent, accept, start,
complete), with the network's own rules and tables but no broker and no
second service.

One Flask app under gunicorn with the gateway's own settings
(gateway/gunicorn.conf.py: gthread, GATEWAY_WORKERS x GATEWAY_THREADS, the
access log), the gateway's request ids, its per-key rate limit (the same
Redis) and its problem bodies, and per request:
- the bearer key checked against the API keys table as the agencies service
  checks it (services.agencies.directory.authenticate: SHA-256 digest, one
  statement that also marks the key used), on every request, no cache;
- the referrals service's own rules and statements (services.referrals.cases:
  the body checked with shared.contract.referrals, the returnee and the texts
  sealed with shared.storage.sealing, the referral with its history entry and its
  outbox event in one statement, a list's reads and each move in the access
  log), on a database made by the referrals service's own migrations;
- the receiving agency read from the agencies table, on every create.

The e-mails: in each gunicorn worker, a thread polls the outbox (FOR UPDATE
SKIP LOCKED, as the network's relay does), renders each event's e-mails
with the notifications service's own planning and templates
(services.notifications.dispatch.plan, messages.Messages: the contact's
language) and sends them with its Mailer (kept SMTP connections),
dispatch.SIDE_BY_SIDE at a time as the notifications service does, then
marks the events done in the same transaction: a send that fails leaves its
event for the next round (at least once; no per-message record or retry
schedule).

`gunicorn -c gateway/gunicorn.conf.py bench.monolith_journey:app` with
MONOLITH_DATABASE_URL set (and DATA_ENCRYPTION_KEYS, SMTP_HOST, SMTP_PORT,
RATE_LIMIT_KEY_PREFIX as the network takes them); `prepare(url, settings)`
makes its schema first, `load_directory(url, ...)` its agencies and keys.
"""

import concurrent.futures
import logging
import os
import threading
import time
import uuid

from flask import Flask, jsonify, request
from sqlalchemy import select, text, update
from sqlalchemy.exc import IntegrityError

from gateway import bodies, limits, request_ids
from gateway.auth import BEARER, bearer_key
from gateway.problems import problem
from services.agencies import directory
from services.agencies.models import Agency, ApiKey
from services.notifications import dispatch
from services.notifications.messages import Messages
from services.notifications.transports import DeliveryError, Mailer
from services.referrals import cases
from services.referrals.models import Outbox
from shared import config
from shared.contract.errors import Forbidden, ServiceError
from shared.plumbing import request_id
from shared.storage import migrate
from shared.storage.db import Sessions, make_engine
from shared.storage.models import utcnow
from shared.storage.sealing import Sealer

log = logging.getLogger(__name__)

POLL_SECONDS = 0.1  # as the network's relay (OUTBOX_RELAY_SECONDS)
BATCH = 100  # events a round takes, as the network's relay
MOVES = ("accept", "decline", "start", "complete", "cancel")


def prepare(url, settings):
    """The monolith's database: the referrals service's migrations, and the
    agencies service's tables of agencies and API keys next to them."""
    migrate.upgrade("referrals", url, settings)
    engine = make_engine(url, pool_size=1)
    with engine.begin() as conn:
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))  # an index of the agencies table
        Agency.metadata.create_all(conn, tables=[Agency.__table__, ApiKey.__table__])
    engine.dispose()


def load_directory(url, count, run_id):
    """`count` agencies as bench.run makes for the network (one English
    e-mail contact each), each with an agency key: [{"id", "key", "email"}]."""
    engine = make_engine(url, pool_size=1)
    made = []
    with Sessions(engine).begin() as session:
        for index in range(count):
            email = f"coordinator-{index}-{run_id}@monolith.bench.example.org"
            agency = Agency(
                id=uuid.uuid4(),
                name=f"Bench agency {index} {run_id}",
                search_name=f"bench agency {index}",
                kind="ngo",
                services=["housing", "employment", "health", "legal"],
                regions=["AZ-BA", "AZ-GA"],
                languages=["en"],
                accepting_referrals=True,
                contacts=[
                    {
                        "id": str(uuid.uuid4()),
                        "name": f"Coordinator {index}",
                        "email": email,
                        "language": "en",
                        "channels": ["email"],
                    }
                ],
            )
            session.add(agency)
            session.flush()
            key = directory.issue_key(session, agency.id, "agency")
            made.append({"id": str(agency.id), "key": key["key"], "email": email})
    engine.dispose()
    return made


def receiver_record(session, agency_id):
    """The agency as cases.check_receiver reads it, or None."""
    try:
        agency_id = uuid.UUID(str(agency_id))
    except ValueError:
        return None
    row = session.execute(
        select(Agency.id, Agency.name, Agency.services, Agency.accepting_referrals).where(
            Agency.id == agency_id
        )
    ).first()
    return (
        None
        if row is None
        else {
            "id": str(row.id),
            "name": row.name,
            "services": row.services,
            "accepting_referrals": row.accepting_referrals,
        }
    )


def create_app(settings):
    app = Flask(__name__)
    sessions = Sessions(
        make_engine(
            settings["MONOLITH_DATABASE_URL"], pool_size=int(os.environ.get("GATEWAY_THREADS", "8")) + 1
        )
    )
    sealer = Sealer.from_setting(settings["DATA_ENCRYPTION_KEYS"])
    hours = float(settings["REFERRAL_RESPONSE_HOURS"])
    request_ids.init_app(app)  # the gateway's hooks, in its order
    limits.init_app(app, settings)
    bodies.init_app(app, int(settings["MAX_BODY_BYTES"]))

    def caller():
        """(agency id, actor) of the bearer key, or a 401 problem raised."""
        key = bearer_key()
        found = None
        if key is not None:
            with sessions.single() as session:
                found = directory.authenticate(session, key)
        if not found:
            raise Unauthorized()
        if found["role"] != "agency":
            raise Forbidden("Admin keys do not work with referrals; use an agency key.")
        return found["agency_id"], {"type": "api_key", "id": found["key_id"], "name": found["prefix"]}

    @app.post("/v1/referrals")
    def create_referral():
        agency_id, actor = caller()
        body = request.get_json(silent=True)
        data = cases.load_new(body)
        key = request.headers.get("Idempotency-Key") or None
        idempotency = (key, cases.request_digest(body)) if key else None
        if idempotency:
            with sessions.begin() as session:
                earlier = cases.find_idempotent(session, sealer, agency_id, *idempotency, actor)
            if earlier:
                return jsonify(earlier), 201
        with sessions.single() as session:
            cases.check_receiver(agency_id, data, receiver_record(session, data["receiving_agency_id"]))
            try:
                return jsonify(cases.create(session, sealer, agency_id, data, hours, idempotency, actor)), 201
            except IntegrityError:
                if not idempotency:
                    raise
        with sessions.begin() as session:
            return jsonify(cases.find_idempotent(session, sealer, agency_id, *idempotency, actor)), 201

    @app.get("/v1/referrals")
    def list_referrals():
        agency_id, actor = caller()
        with sessions.single() as session:
            return jsonify(cases.listing(session, sealer, agency_id, request.args.to_dict(), actor))

    @app.post("/v1/referrals/<referral_id>/<move>")
    def move_referral(referral_id, move):
        if move not in MOVES:
            return problem(404, "Not Found")
        agency_id, actor = caller()
        with sessions.single() as session:
            return jsonify(
                cases.move(
                    session, sealer, agency_id, referral_id, move, request.get_json(silent=True) or {}, actor
                )
            )

    @app.errorhandler(Unauthorized)
    def unauthorized(_):
        answer = problem(401, "Unauthorized", "The API key is not valid.")
        answer.headers["WWW-Authenticate"] = BEARER.to_header()
        return answer

    @app.errorhandler(ServiceError)
    def refused(error):
        return problem(error.status, error.title, error.detail, error.errors)

    Mailing(sessions, settings).start()
    return app


class Unauthorized(Exception):
    """No agency key, or not a valid one."""


class Mailing(threading.Thread):
    """The e-mails of the outbox's events, sent from this process: see the
    module's docstring."""

    def __init__(self, sessions, settings):
        super().__init__(name="mailing", daemon=True)
        self.sessions = sessions
        self.settings = settings
        self.messages = Messages(public_url=settings["PUBLIC_URL"])
        self.senders = concurrent.futures.ThreadPoolExecutor(dispatch.SIDE_BY_SIDE, "mailing")
        self.mailers = threading.local()  # a Mailer (its kept connections) per sending thread

    def send(self, message):
        if not hasattr(self.mailers, "mailer"):
            self.mailers.mailer = Mailer(self.settings)
        self.mailers.mailer.send(message.recipient, message.subject, message.text_body, message.html_body)

    def run(self):
        while True:
            try:
                taken = self.round()
            except Exception:
                log.exception("a round of e-mails failed; tried again in a second")
                taken = 0
                time.sleep(1)
            if taken < BATCH:
                time.sleep(POLL_SECONDS)

    def round(self):
        with self.sessions.begin() as session:
            rows = session.scalars(
                select(Outbox)
                .where(Outbox.published_at.is_(None))
                .order_by(Outbox.created_at)
                .limit(BATCH)
                .with_for_update(skip_locked=True)
            ).all()
            if not rows:
                return 0
            agencies = self.agencies(session, rows)
            sends = {}  # event id -> its e-mails being sent
            for row in rows:
                event = row.payload
                messages = []
                if dispatch.AUDIENCE.get(event["event_type"]):
                    parties = {
                        "sender": agencies[event["sending_agency_id"]],
                        "receiver": agencies[event["receiving_agency_id"]],
                    }
                    messages = [
                        message
                        for message in dispatch.plan(event, parties, self.messages)
                        if message.channel == "email"
                    ]  # SMS: not part of this baseline
                sends[row.id] = [self.senders.submit(self.send, message) for message in messages]
            done = []
            for event_id, sending in sends.items():
                try:
                    for future in sending:
                        future.result()
                except DeliveryError as error:
                    log.warning("event %s: %s; tried again at the next round", event_id, error)
                    continue
                done.append(event_id)
            if done:
                session.execute(update(Outbox).where(Outbox.id.in_(done)).values(published_at=utcnow()))
            return len(rows)

    @staticmethod
    def agencies(session, rows):
        """{id: {"id", "name", "contacts"}} of the agencies the events name."""
        wanted = {
            uuid.UUID(row.payload[side])
            for row in rows
            for side in ("sending_agency_id", "receiving_agency_id")
        }
        return {
            str(found.id): {"id": str(found.id), "name": found.name, "contacts": found.contacts}
            for found in session.execute(
                select(Agency.id, Agency.name, Agency.contacts).where(Agency.id.in_(wanted))
            )
        }


if os.environ.get("MONOLITH_DATABASE_URL"):
    request_id.configure_logging("monolith")  # as gateway.wsgi
    app = create_app(config.load(MONOLITH_DATABASE_URL=os.environ["MONOLITH_DATABASE_URL"]))
