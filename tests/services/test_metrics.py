"""shared.plumbing.metrics in real nameko containers: each RPC call and event counted
with its outcome, and the gauges read from the database and the broker
when scraped."""

import datetime
import uuid

import pytest
import requests
from kombu import Connection
from nameko.events import event_handler
from nameko.testing.services import entrypoint_hook
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import insert

from services.notifications.models import Notification
from services.referrals.models import Outbox
from services.referrals.service import ReferralsService
from shared import config
from shared.contract.errors import EXPECTED, NotFound, Unavailable
from shared.plumbing import metrics, queues
from shared.plumbing.rpc import rpc
from tests.support import data
from tests.support.sinks import free_port, wait_for


class Counted:
    """A service whose methods end each way a call can end."""

    name = "counted"
    metrics = metrics.Metrics()

    @rpc(expected_exceptions=EXPECTED)
    def answers(self):
        return "yes"

    @rpc(expected_exceptions=EXPECTED)
    def refuses(self):
        raise NotFound("No such thing.")

    @rpc(expected_exceptions=EXPECTED)
    def is_unavailable(self):
        raise Unavailable("Saved, not yet announced.")  # expected, but a 503: not the partner's doing

    @rpc(expected_exceptions=EXPECTED)
    def breaks(self):
        raise ZeroDivisionError("a bug")

    @event_handler("somewhere", "thing_happened")
    def on_thing(self, payload):
        if payload.get("bad"):
            raise ValueError("cannot handle")


def value(name, **labels):
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def counted(container_factory, rabbit_config):
    container = container_factory(Counted, config.load(AMQP_URI=rabbit_config["AMQP_URI"]))
    container.start()
    return container


def call(container, method, *args):
    with entrypoint_hook(container, method) as entrypoint:
        return entrypoint(*args)


@pytest.mark.parametrize(
    "method, outcome",
    [("answers", "ok"), ("refuses", "refused"), ("is_unavailable", "error"), ("breaks", "error")],
)
@pytest.mark.rules
def test_each_rpc_call_is_counted_with_its_outcome_and_timed(counted, method, outcome):
    labels = {"service": "counted", "method": method}
    before = {each: value("rpc_calls_total", outcome=each, **labels) for each in metrics.OUTCOMES}
    timed = value("rpc_call_duration_seconds_count", **labels)
    try:
        call(counted, method)
    except Exception:
        assert outcome != "ok"
    after = {each: value("rpc_calls_total", outcome=each, **labels) for each in metrics.OUTCOMES}
    assert {each: after[each] - before[each] for each in after} == {
        each: 1.0 if each == outcome else 0.0 for each in metrics.OUTCOMES
    }
    assert value("rpc_call_duration_seconds_count", **labels) == timed + 1


@pytest.mark.rules
def test_every_method_has_its_series_before_its_first_call(counted):
    assert (
        REGISTRY.get_sample_value(
            "rpc_calls_total", {"service": "counted", "method": "answers", "outcome": "error"}
        )
        is not None
    )
    assert (
        REGISTRY.get_sample_value(
            "events_handled_total", {"service": "counted", "event": "thing_happened", "outcome": "error"}
        )
        is not None
    )


@pytest.mark.rules
def test_each_event_handled_is_counted_with_its_outcome(counted):
    labels = {"service": "counted", "event": "thing_happened"}
    ok, error = (
        value("events_handled_total", outcome="ok", **labels),
        value("events_handled_total", outcome="error", **labels),
    )
    call(counted, "on_thing", {"bad": False})
    with pytest.raises(ValueError):
        call(counted, "on_thing", {"bad": True})
    call(counted, "on_thing", {"bad": False})
    assert value("events_handled_total", outcome="ok", **labels) == ok + 2
    assert value("events_handled_total", outcome="error", **labels) == error + 1


@pytest.fixture
def referrals_idle_relay(container_factory, service_config, agencies):
    """The referrals service whose relay has run once, at its start, and not
    again for an hour: what it stages stays in the outbox."""
    container = container_factory(ReferralsService, dict(service_config, OUTBOX_RELAY_SECONDS="3600"))
    container.start()
    return container


def scraped(port):
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return text, {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.fixture(scope="module")
def metrics_port():
    port = free_port()
    server = metrics.serve(port, address="127.0.0.1")
    yield port
    server.shutdown()
    server.server_close()


@pytest.mark.rules
def test_the_metrics_port_answers_a_liveness_probe_from_the_process_itself(metrics_port):
    """Kubernetes' liveness probe asks this, not the service's ping, which any replica may answer."""
    answer = requests.get(f"http://127.0.0.1:{metrics_port}/healthz", timeout=10)
    assert (answer.status_code, answer.text) == (200, "ok\n")
    assert "rpc_calls_total" in scraped(metrics_port)[0]


def test_the_outbox_and_pool_gauges_are_read_when_scraped(
    referrals_idle_relay, agencies, engines, metrics_port
):
    sender = agencies("create_agency", data.agency(services=["documentation"]))
    receiver = agencies("create_agency", data.agency(services=["housing"]))
    call(referrals_idle_relay, "create_referral", sender["id"], data.referral(receiver["id"]))
    with engines["REFERRALS_DATABASE_URL"].begin() as connection:  # an event staged a minute ago
        connection.execute(
            insert(Outbox).values(
                id=uuid.uuid4(),
                event_type="referral_sent",
                payload={},
                created_at=datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=60),
            )
        )
    _, samples = scraped(metrics_port)
    assert samples[("outbox_waiting", (("service", "referrals"),))] == 2
    assert samples[("outbox_oldest_age_seconds", (("service", "referrals"),))] >= 60
    in_use = samples[("db_pool_connections", (("service", "referrals"), ("state", "in_use")))]
    idle = samples[("db_pool_connections", (("service", "referrals"), ("state", "idle")))]
    assert in_use + idle >= 1  # the calls above opened connections, kept in the pool
    assert samples[("dead_letters", (("service", "referrals"),))] == 0  # it has no such queue
    assert ("outbox_waiting", (("service", "agencies"),)) in samples


def test_the_notifications_gauges_count_rows_by_channel_and_status(notifications, engines, metrics_port):
    now = datetime.datetime.now(datetime.UTC)
    rows = [("email", "sent"), ("email", "sent"), ("sms", "failed")]  # none pending: the sweep would send it
    with engines["NOTIFICATIONS_DATABASE_URL"].begin() as connection:
        connection.execute(
            insert(Notification),
            [
                {
                    "id": uuid.uuid4(),
                    "event_id": uuid.uuid4(),
                    "event": "referral_sent",
                    "agency_id": uuid.uuid4(),
                    "channel": channel,
                    "recipient": "someone",
                    "language": "en",
                    "text_body": "Hello",
                    "status": status,
                    "attempts": 1,
                    "next_attempt_at": now,
                    "created_at": now,
                }
                for channel, status in rows
            ],
        )
    _, samples = scraped(metrics_port)
    counts = {
        (channel, status): samples[("notifications", (("channel", channel), ("status", status)))]
        for channel in ("email", "sms")
        for status in ("pending", "sent", "failed")
    }
    assert counts == {
        ("email", "pending"): 0,
        ("email", "sent"): 2,
        ("email", "failed"): 0,
        ("sms", "pending"): 0,
        ("sms", "sent"): 0,
        ("sms", "failed"): 1,
    }
    for status in ("pending", "delivered", "failed"):
        assert samples[("webhook_deliveries", (("status", status),))] == 0
    assert ("dead_letters", (("service", "notifications"),)) in samples


@pytest.mark.rules
def test_dead_letters_counts_the_messages_set_aside(rabbit_config):
    service = "metrics-" + uuid.uuid4().hex[:8]
    name = queues.dead_letter_queue_name(service)
    with Connection(rabbit_config["AMQP_URI"]) as connection:
        queues.dead_letter_queue(service, ["evt-x"])(connection.default_channel).declare()
        producer = connection.Producer()
        for _ in range(2):
            producer.publish({"event_id": "e"}, exchange="", routing_key=name)
        try:  # the broker counts a quorum queue's messages once they are committed: soon, not at once

            def read():
                [gauge] = metrics.dead_letter_gauge(service, rabbit_config["AMQP_URI"])
                return [(sample.labels, sample.value) for sample in gauge.samples]

            wait_for(
                lambda: read() == [({"service": service}, 2)], timeout=10, what="two dead letters counted"
            )
        finally:
            connection.default_channel.queue_delete(name)
