"""Two replicas of every service, as `docker compose up --scale` runs them:
the same command, settings, queues and databases, started by bin/run
(honcho's concurrency) with the gateway's two workers in front. Partners'
clients walk referrals through every ending at once, some are left
unanswered until they are overdue, and the mail server and the partners'
endpoints refuse the first tries, so that the replicas' sweeps compete for
the retries. Once all is sent: every e-mail and every webhook delivery the
events owe arrived exactly once, every overdue referral was announced once,
and each replica did a share of the work."""

import collections
import contextlib
import re
import threading

import pytest
from sqlalchemy import text

from services.agencies.directory import OPERATORS_ID
from shared.storage.db import make_engine
from tests.e2e.conftest import ADMIN_KEY, running_network
from tests.support import data
from tests.support.receivers import Receiver
from tests.support.sinks import wait_for

SERVICES = ("agencies", "referrals", "notifications")
REPLICAS = 2
RESPONSE_SECONDS = 3.0  # a referral left unanswered this long is overdue (urgent: half)
CLIENTS, JOURNEYS_EACH = 4, 8
ENDINGS = ("completed", "unanswered", "declined", "cancelled")
ALL_EVENTS = [
    "referral.sent",
    "referral.accepted",
    "referral.declined",
    "referral.started",
    "referral.completed",
    "referral.cancelled",
    "referral.overdue",
    "referral.erased",
]
# Who is e-mailed of each event (API.md, "Notifications").
AUDIENCE = {
    "referral_sent": ("receiving",),
    "referral_accepted": ("sending",),
    "referral_declined": ("sending",),
    "referral_completed": ("sending",),
    "referral_cancelled": ("receiving",),
    "referral_overdue": ("sending", "receiving"),
    "referral_started": (),
}
REFERENCE = re.compile(r"REF-\d{4}-\d+")


@pytest.fixture(scope="module")
def network(rabbit_manager):
    with running_network(
        rabbit_manager,
        replicas=dict.fromkeys(SERVICES, REPLICAS),
        GATEWAY_WORKERS="2",
        REFERRAL_RESPONSE_HOURS=str(RESPONSE_SECONDS / 3600),
        OVERDUE_SWEEP_SECONDS="0.05",
        DELIVERY_SWEEP_SECONDS="0.1",
        WEBHOOK_SWEEP_SECONDS="0.1",
        NOTIFICATION_BACKOFF_SECONDS="0.3",
        NOTIFICATION_MAX_ATTEMPTS="10",
        WEBHOOK_ALLOW_PRIVATE="1",
        WEBHOOK_BACKOFF_SECONDS="0.2",  # receivers on loopback: tests only
        LOG_LEVEL="DEBUG",  # each call's and each e-mail's line: which replica did what
    ) as running:
        yield running


@pytest.fixture(scope="module")
def query(network):
    """`query(database setting, sql)`: the rows, read from that database of the network's."""
    engines = {key: make_engine(url, pool_size=1) for key, url in network.databases.items()}

    def rows(key, sql):
        with engines[key].connect() as connection:
            return connection.execute(text(sql)).all()

    yield rows
    for engine in engines.values():
        engine.dispose()


def new_agency(network):
    body = data.agency(services=["housing"], contacts=[data.contact(language="en")])
    agency = network.call("POST", "/v1/agencies", ADMIN_KEY, json=body)
    assert agency.status_code == 201, agency.text
    key = network.call(
        "POST", f"/v1/agencies/{agency.json()['id']}/api-keys", ADMIN_KEY, json={"role": "agency"}
    )
    assert key.status_code == 201, key.text
    return {"id": agency.json()["id"], "key": key.json()["key"], "email": body["contacts"][0]["email"]}


def journey(network, sender, receiver, ending, priority):
    """A referral from `sender` to `receiver` taken to `ending`; its id."""
    made = network.call(
        "POST", "/v1/referrals", sender["key"], json=data.referral(receiver["id"], priority=priority)
    )
    assert made.status_code == 201, made.text
    path = f"/v1/referrals/{made.json()['id']}"
    moves = {
        "completed": [
            (receiver, "accept", None),
            (receiver, "start", None),
            (receiver, "complete", {"outcome": "Housed"}),
        ],
        "declined": [(receiver, "decline", {"reason": "No capacity"})],
        "cancelled": [(sender, "cancel", {"reason": "Found elsewhere"})],
        "unanswered": [],
    }[ending]
    for party, move, body in moves:
        answer = network.call("POST", f"{path}/{move}", party["key"], json=body)
        assert answer.status_code == 200, answer.text
    return made.json()["id"]


Load = collections.namedtuple("Load", "agencies endpoints left_unanswered events referrals")


@pytest.fixture(scope="module")
def load(network, query):
    """Four agencies, each with a webhook; the clients' journeys; then the
    wait until every event is out, handled, sent and delivered."""
    senders = [new_agency(network) for _ in range(2)]
    receivers = [new_agency(network) for _ in range(2)]
    agencies = {agency["id"]: agency for agency in senders + receivers}
    with contextlib.ExitStack() as stack:
        # each agency's endpoint refuses its first two tries: retries for the sweeps to share
        endpoints = {agency_id: stack.enter_context(Receiver().answer(503, 503)) for agency_id in agencies}
        for agency_id, endpoint in endpoints.items():
            hook = network.call(
                "POST",
                "/v1/webhooks",
                agencies[agency_id]["key"],
                json={"url": endpoint.url, "events": ALL_EVENTS},
            )
            assert hook.status_code == 201, hook.text
        refuse_first(network.smtp, 10)  # those e-mails are left to the sweeps' retries
        left_unanswered = drive(network, senders, receivers)
        wait_for(
            lambda: settled(query, left_unanswered),
            timeout=90,
            interval=0.5,
            what="every event to be announced, sent and delivered",
        )
    events = query(
        "REFERRALS_DATABASE_URL",
        (
            "SELECT outbox.id, outbox.event_type, referral.reference, referral.sending_agency_id,"
            " referral.receiving_agency_id FROM outbox"
            " JOIN referrals AS referral ON referral.id = (outbox.payload->>'referral_id')::uuid"
        ),
    )
    referrals = query(
        "REFERRALS_DATABASE_URL",
        (
            "SELECT referral.id, referral.overdue_announced_at IS NOT NULL AS announced,"
            " (SELECT count(*) FROM outbox WHERE event_type = 'referral_overdue'"
            "  AND payload->>'referral_id' = referral.id::text) AS events,"
            " (SELECT count(*) FROM referral_history AS entry WHERE entry.referral_id = referral.id"
            "  AND entry.event = 'overdue') AS entries FROM referrals AS referral"
        ),
    )
    return Load(agencies, endpoints, left_unanswered, events, referrals)


def refuse_first(smtp, tries):
    """The mail server refuses its first `tries` messages (451), then takes all."""
    smtp.fail_with = "451 4.3.0 Try again later"

    def reopen():
        try:
            wait_for(lambda: smtp.refusals >= tries, timeout=60, what=f"{tries} refused e-mails")
        finally:
            smtp.fail_with = None

    threading.Thread(target=reopen, daemon=True).start()


def drive(network, senders, receivers):
    """`CLIENTS` partners' clients at once, each walking `JOURNEYS_EACH`
    referrals to the endings in turn; the ids of those left unanswered."""
    left_unanswered, failures = [], []

    def client(number):
        try:
            for step in range(JOURNEYS_EACH):
                ending = ENDINGS[(number + step) % len(ENDINGS)]
                referral_id = journey(
                    network,
                    senders[number % 2],
                    receivers[(number // 2) % 2],
                    ending,
                    "urgent" if step % 3 == 0 else "normal",
                )
                if ending == "unanswered":
                    left_unanswered.append(referral_id)
        except Exception as error:  # said by the test, not lost in a thread
            failures.append(error)

    clients = [threading.Thread(target=client, args=(number,)) for number in range(CLIENTS)]
    for thread in clients:
        thread.start()
    for thread in clients:
        thread.join(120)
    assert not failures, failures
    assert len(left_unanswered) == CLIENTS * JOURNEYS_EACH // len(ENDINGS)
    return left_unanswered


def settled(query, left_unanswered):
    """Every unanswered referral announced overdue, every event out and
    handled, nothing left to send or deliver (so nothing more will go out)."""
    overdue = {
        str(row.id)
        for row in query(
            "REFERRALS_DATABASE_URL", "SELECT id FROM referrals WHERE overdue_announced_at IS NOT NULL"
        )
    }
    [(events, unpublished)] = query(
        "REFERRALS_DATABASE_URL", "SELECT count(*), count(*) FILTER (WHERE published_at IS NULL) FROM outbox"
    )
    [(handled, pending)] = query(
        "NOTIFICATIONS_DATABASE_URL",
        (
            "SELECT (SELECT count(*) FROM handled_events WHERE event_type LIKE 'referral%'),"
            " (SELECT count(*) FROM notifications WHERE status <> 'sent')"
            " + (SELECT count(*) FROM webhook_deliveries WHERE status <> 'delivered')"
        ),
    )
    return set(left_unanswered) <= overdue and not unpublished and handled == events and not pending


def test_every_email_the_events_owe_arrives_once(network, load):
    """As many e-mails as the events owe to each address about each
    referral, and never the same subject twice to one address."""
    owed = collections.Counter()
    for event in load.events:
        for side in AUDIENCE[event.event_type]:
            owed[load.agencies[str(getattr(event, f"{side}_agency_id"))]["email"], event.reference] += 1
    received = [(rcpt, str(message["Subject"])) for rcpts, message in network.smtp.messages for rcpt in rcpts]
    assert [mail for mail, count in collections.Counter(received).items() if count > 1] == []
    assert (
        collections.Counter((rcpt, REFERENCE.search(subject).group()) for rcpt, subject in received) == owed
    )
    assert network.smtp.refusals >= 10  # those went out at the sweeps' retries


def test_every_webhook_delivery_arrives_once(load):
    """Each event, by its webhook-id, at the endpoints of both agencies of
    its referral, once, and nothing else."""
    for agency_id, endpoint in load.endpoints.items():
        heard = collections.Counter(request.headers["webhook-id"] for request in endpoint.delivered())
        assert [webhook_id for webhook_id, count in heard.items() if count > 1] == []
        assert set(heard) == {
            str(event.id)
            for event in load.events
            if agency_id in (str(event.sending_agency_id), str(event.receiving_agency_id))
        }
        assert len(endpoint.requests) == len(heard) + 2  # the two refused tries, then each once


def test_every_overdue_referral_is_announced_once(load):
    """One event and one history entry for each referral announced overdue
    (every one left unanswered, and any answered too late), none for others."""
    assert len(load.referrals) == CLIENTS * JOURNEYS_EACH
    assert [
        row for row in load.referrals if (row.events, row.entries) != ((1, 1) if row.announced else (0, 0))
    ] == []
    announced = {str(row.id) for row in load.referrals if row.announced}
    assert set(load.left_unanswered) <= announced


def test_each_replica_did_a_share_of_the_work(network, load):
    """Read from each process's log lines (honcho names them
    <process>.1 and <process>.2): both replicas of each service answered
    calls, and both of the notifications service sent e-mails and
    delivered webhooks; the overdue announcements the replicas counted add
    up to those made (none counted by two)."""
    log = network.log()

    def lines(process, pattern):
        return re.findall(rf"^\S*\s*{re.escape(process)}\s*\| .*{pattern}.*$", log, re.MULTILINE)

    for number in range(1, REPLICAS + 1):
        assert lines(f"agencies.{number}", r"agencies\.\w+ answered"), number
        assert lines(f"referrals.{number}", r"referrals\.(create|move)_referral answered"), number
        assert lines(f"notifications.{number}", r"notification \S+ sent"), number
        assert lines(f"notifications.{number}", r"webhook delivery \S+ \(attempt \d+\): delivered"), number
    said = [
        int(count)
        for number in range(1, REPLICAS + 1)
        for line in lines(f"referrals.{number}", "became overdue")
        for count in re.findall(r"(\d+) referral\(s\) became overdue", line)
    ]
    assert sum(said) == sum(row.announced for row in load.referrals)


def test_replicas_starting_together_make_the_bootstrap_admin_once(query, load):
    """Both agencies replicas honour BOOTSTRAP_ADMIN_KEY as they start, at
    the same moment: one admin key, one operators' agency announced once."""
    [(keys, announced)] = query(
        "AGENCIES_DATABASE_URL",
        (
            "SELECT (SELECT count(*) FROM api_keys WHERE role = 'admin'),"
            " (SELECT count(*) FROM outbox WHERE event_type = 'agency_created'"
            f"  AND payload->'agency'->>'id' = '{OPERATORS_ID}')"
        ),
    )
    assert (keys, announced) == (1, 1)
