"""AMQP_URI as a list of nodes: read, rewritten, and connected through."""

from urllib.parse import urlsplit

import pytest

from shared import config
from shared.commands.preflight import _safe, check_rabbitmq
from shared.plumbing import amqp_uri
from tests.support.sinks import free_port

pytestmark = pytest.mark.rules  # no server: `make fast` runs these


THREE = "amqp://u:p1@h1:5681/vh;amqp://u:p2@h2:5682/vh;amqp://u:p3@h3:5683/vh"


def test_a_single_node_is_a_list_of_one():
    assert amqp_uri.nodes("amqp://guest:guest@localhost:5672/") == ["amqp://guest:guest@localhost:5672/"]


def test_nodes_are_separated_by_semicolons_and_blanks_are_dropped():
    assert amqp_uri.nodes(" amqp://u:p1@h1:5681/vh ;\namqp://u:p2@h2:5682/vh;; amqp://u:p3@h3:5683/vh; ") == [
        "amqp://u:p1@h1:5681/vh",
        "amqp://u:p2@h2:5682/vh",
        "amqp://u:p3@h3:5683/vh",
    ]
    assert amqp_uri.normalised(" amqp://u:p1@h1:5681/vh ; amqp://u:p2@h2:5682/vh") == (
        "amqp://u:p1@h1:5681/vh;amqp://u:p2@h2:5682/vh"
    )


def test_an_empty_setting_is_refused():
    with pytest.raises(ValueError, match="no RabbitMQ node"):
        amqp_uri.nodes(" ; ")


def test_the_settings_hand_kombu_the_list_without_blanks():
    settings = config.load({"AMQP_URI": "amqp://u:p1@h1:5681/vh ; amqp://u:p2@h2:5682/vh"})
    assert settings["AMQP_URI"] == "amqp://u:p1@h1:5681/vh;amqp://u:p2@h2:5682/vh"


def test_rotation_starts_at_another_node_and_keeps_them_all():
    assert (
        amqp_uri.rotated(THREE, 1) == "amqp://u:p2@h2:5682/vh;amqp://u:p3@h3:5683/vh;amqp://u:p1@h1:5681/vh"
    )
    assert amqp_uri.rotated(THREE, 3) == THREE
    assert amqp_uri.rotated("amqp://u:p@h/", 5) == "amqp://u:p@h/"


def test_the_vhost_is_read_from_and_set_on_every_node():
    assert amqp_uri.vhost(THREE) == "vh"
    assert amqp_uri.vhost("amqp://guest:guest@localhost:5672/") == "/"
    assert amqp_uri.vhost("amqp://guest:guest@localhost:5672") == "/"
    assert amqp_uri.with_vhost(THREE, "run_1") == (
        "amqp://u:p1@h1:5681/run_1;amqp://u:p2@h2:5682/run_1;amqp://u:p3@h3:5683/run_1"
    )


def test_every_password_is_hidden_when_shown():
    shown = amqp_uri.safe(THREE)
    assert shown == "amqp://u:***@h1:5681/vh;amqp://u:***@h2:5682/vh;amqp://u:***@h3:5683/vh"
    assert _safe(THREE) == shown  # preflight's message about an unreachable broker
    assert amqp_uri.safe("amqp://h1/") == "amqp://h1/"


def test_a_connection_moves_on_past_nodes_that_refuse_it(rabbit_config):
    """Two nodes that refuse (nothing listens on their ports), then the
    machine's broker: `connect` tries each in turn and ends on the third."""
    live = rabbit_config["AMQP_URI"]
    dead = [f"amqp://guest:guest@127.0.0.1:{free_port()}/" for _ in range(2)]
    with amqp_uri.connect(";".join([*dead, live]), connect_timeout=3) as connection:
        assert connection.connected
        assert connection.port == urlsplit(live).port and connection.virtual_host == amqp_uri.vhost(live)
    check_rabbitmq(";".join([*dead, live]))


def test_a_connection_fails_once_every_node_refused():
    dead = ";".join(f"amqp://guest:guest@127.0.0.1:{free_port()}/" for _ in range(3))
    with pytest.raises(Exception) as refused:
        amqp_uri.connect(dead, connect_timeout=2)
    assert "refused" in str(refused.value).lower() or isinstance(refused.value, ConnectionError)
