"""`make chaos`, short: while partners create referrals without pause,
each service process and the gateway is killed (-9) and then stopped
(SIGTERM) in turn, and started again, as compose would. Nothing may be lost
or doubled by key, no answer may be a 500, no process may exit on its own,
and the network must be ready again within 30 s of each fault. (The broker
and database restarts are `make chaos`'s: they stop the machine's servers.)"""

import json
import os
import subprocess
import sys

from chaos.run import PROCESSES, ROOT

FAULTS = [f"kill:{name}" for name, _ in PROCESSES] + ["term:referrals", "term:notifications", "term:gateway"]


def test_the_network_rides_out_kills_and_stops_under_load():
    ran = subprocess.run(
        [sys.executable, "-m", "chaos.run"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ, CHAOS_FAULTS=",".join(FAULTS), CHAOS_CLIENTS="2", CHAOS_PAUSE_SECONDS="3"),
    )
    assert ran.stdout.strip(), ran.stderr[-3000:]
    report = json.loads(ran.stdout.strip().splitlines()[-1])
    assert report["referrals_made"] > 20, report
    assert report["referrals_lost"] == 0 and report["keys_with_two_referrals"] == 0, report
    assert report["referrals_without_their_email"] == 0 and report["referrals_without_their_sms"] == 0, report
    assert report["answers_500"] == 0, report
    assert report["processes_exited_on_their_own"] == {}, report
    assert report["faults_not_ready_within_30_s"] == [], report
    assert [fault["fault"] for fault in report["faults"]] == FAULTS
    assert ran.returncode == 0, ran.stdout[-3000:]
