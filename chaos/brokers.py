"""The RabbitMQ a chaos run's network uses, and the faults done to it.

`MachineBroker`: the machine's own node, on a vhost of the run's own; its
fault (`rabbitmq`) restarts that node. `ClusterBroker`: a 3-node cluster
of the run's own (tests.support.rabbit_cluster), each process of the
network given AMQP_URI with every node, starting at the node of its own
in `FIRST_NODE`, so that the network's connections are spread over the
nodes; its fault (`rabbitmq-leader`) stops the node leading most of the
services' quorum queues (`rabbitmqctl stop_app`) and leaves it stopped.
"""

import collections
import json
import subprocess
import time

from shared import config
from shared.plumbing import amqp_uri
from tests.support.rabbit_cluster import RabbitCluster


class MachineBroker:
    fault = "rabbitmq"

    def __init__(self, vhost):
        self.vhost = vhost
        self.uri = amqp_uri.with_vhost(config.load()["AMQP_URI"], vhost)
        subprocess.run(["rabbitmqctl", "add_vhost", vhost], check=True, capture_output=True)
        subprocess.run(
            ["rabbitmqctl", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"],
            check=True,
            capture_output=True,
        )

    def uri_for(self, process):
        return self.uri

    def messages(self):
        """How many messages wait in each queue of the run's vhost."""
        listed = subprocess.run(
            [
                "rabbitmqctl",
                "list_queues",
                "-p",
                self.vhost,
                "name",
                "messages",
                "--formatter",
                "json",
                "--quiet",
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return {queue["name"]: queue["messages"] for queue in json.loads(listed or "[]")}

    def do_fault(self, down_seconds):
        subprocess.run(["rabbitmqctl", "stop_app"], check=True, capture_output=True)
        time.sleep(down_seconds)
        subprocess.run(["rabbitmqctl", "start_app"], check=True, capture_output=True)
        return {}

    def after_fault(self):
        return {}

    def close(self):
        subprocess.run(["rabbitmqctl", "delete_vhost", self.vhost], capture_output=True)


class ClusterBroker:
    fault = "rabbitmq-leader"
    # The node each process connects to first (0-based). The preflight
    # declares the quorum queues, so its node leads them (RabbitMQ's
    # client-local leader placement), and that is the node stopped: the
    # gateway's RPC client and the notifications service's consumers lose
    # their node with it, while the agencies and referrals services (and the
    # referrals' outbox relay) stay connected through the two others.
    FIRST_NODE = {"preflight": 0, "gateway": 0, "notifications": 0, "agencies": 1, "referrals": 2}

    def __init__(self, vhost):
        self.vhost = vhost
        self.cluster = RabbitCluster().__enter__()
        first = self.cluster.nodes[0]
        self.cluster.ctl(first, "add_vhost", vhost)
        self.cluster.ctl(first, "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        self.uri = self.cluster.amqp_uri(vhost)

    def uri_for(self, process):
        """Every node, starting at the process's own first node."""
        return amqp_uri.rotated(self.uri, self.FIRST_NODE.get(process, 0))

    def messages(self):
        return {queue["name"]: queue["messages"] for queue in self.cluster.queues(self.vhost)}

    def do_fault(self, down_seconds):
        """Stop the node leading most quorum queues; what it was and what it
        held, and (`stopped_at`, time.monotonic()) when it had stopped: each
        rabbitmqctl takes seconds here, so what is asked before and after
        does not count towards the network's time to be ready again."""
        queues = [queue for queue in self.cluster.queues(self.vhost) if queue.get("type") == "quorum"]
        leaders = collections.Counter(queue["leader"] for queue in queues)
        leader = leaders.most_common(1)[0][0]
        connections = self.cluster.connections_by_node()
        self.cluster.stop_app(leader)
        stopped_at = time.monotonic()
        return {
            "node_stopped": leader,
            "quorum_queues": len(queues),
            "queues_it_led": leaders[leader],
            "connections_by_node_before": connections,
            "stopped_at": stopped_at,
        }

    def after_fault(self):
        return {"running_after": [node.name for node in self.cluster.up()]}

    def close(self):
        self.cluster.close()


def for_faults(faults, vhost):
    """The broker the faults need: a cluster for `rabbitmq-leader`, else the machine's own."""
    if ClusterBroker.fault in faults:
        if MachineBroker.fault in faults:
            raise SystemExit(
                f"{ClusterBroker.fault} runs on a cluster of its own and {MachineBroker.fault} "
                "on the machine's node: run them apart"
            )
        return ClusterBroker(vhost)
    return MachineBroker(vhost)
