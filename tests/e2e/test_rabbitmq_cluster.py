"""The network on a 3-node RabbitMQ cluster of the test's own
(tests.support.rabbit_cluster), each of its processes connected first to
another node (AMQP_URI lists all three, rotated per process): while
partners create referrals and accept them without pause, the node leading
the services' quorum queues stops (`make chaos`'s `rabbitmq-leader` fault,
run short). No referral, event or e-mail may be lost or doubled, nothing may
be left in an outbox or set aside as a dead letter, and every call that
failed meanwhile was answered 503 or 504 (made again by the partner, a
creation with its Idempotency-Key; an acceptance whose first try had done
it is then answered 409, and the referral is found accepted)."""

import json
import os
import subprocess
import sys

from chaos.run import ROOT


def test_the_network_loses_nothing_when_the_node_leading_its_queues_stops():
    ran = subprocess.run(
        [sys.executable, "-m", "chaos.run"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(
            os.environ,
            CHAOS_FAULTS="rabbitmq-leader",
            CHAOS_CLIENTS="2",
            CHAOS_PAUSE_SECONDS="5",
            CHAOS_ACCEPT="1",
        ),
    )
    assert ran.stdout.strip(), ran.stderr[-3000:]
    report = json.loads(ran.stdout.strip().splitlines()[-1])
    [fault] = report["faults"]
    assert fault["queues_it_led"] > 0 and fault["node_stopped"] not in fault["running_after"], fault
    assert len(fault["running_after"]) == 2, fault
    assert len(fault["connections_by_node_before"]) > 1, fault  # the network went through more than one node
    assert report["referrals_made"] > 20, report
    made_after = report["referrals_made"] - fault["made_so_far"]
    assert made_after > 0, report  # the network went on with two nodes
    assert report["referrals_lost"] == 0 and report["keys_with_two_referrals"] == 0, report
    assert report["referrals_without_their_email"] == 0 and report["referrals_without_their_sms"] == 0, report
    assert report["referrals_accepted"] > 20 and report["accepted_without_their_email"] == 0, report
    assert set(report["accept_answers"]) <= {"200", "409", "503", "504"}, report
    assert report["doubled_emails"] == 0 and report["doubled_sms"] == 0, report
    assert report["outbox_waiting"] == 0 and report["dead_letters"] == 0, report
    assert set(report["answers"]) <= {"201", "503", "504"}, report
    assert report["processes_exited_on_their_own"] == {}, report
    assert report["faults_not_ready_within_30_s"] == [], report
    assert ran.returncode == 0, ran.stdout[-3000:]
