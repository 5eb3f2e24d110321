"""One level of load: locust (as a library) drives one system with N
concurrent users for a fixed time and writes what it measured as JSON.

`python -m bench.load SPEC.json OUT.json`, always in a process of its own:
locust patches the process with gevent, and the network's code uses
eventlet; the two never share a process. SPEC holds `system` (network,
monolith-journey, echo or monolith), `users`, `seconds`, `warmup`, `url`,
`amqp_uri` and, for the network and the same-work monolith, whose clients
are the same, `directory` (agencies with their keys and e-mail addresses)
and `flow` ("journey", the default, or "create": creates only).

Every user runs as fast as it can (no think time): the numbers are what N
busy partners get, not what N people clicking would.
"""

import json
import logging
import random
import sys
import time
import uuid

import gevent
import locust  # noqa: F401  (first: gevent's monkey patching)
from locust import FastHttpUser, User, constant, task
from locust.env import Environment

from tests.support import data  # the same body the tests send

SPEC = {}
MEASURING = False
CREATED = []  # (unix time of the 201, reference, receiver's e-mail), measured window only
PERCENTILES = (0.5, 0.95, 0.99)


def bearer(agency):
    return {"Authorization": f"Bearer {agency['key']}"}


class Partner(FastHttpUser):
    """A partner agency's system: refers a returnee, lists its referrals,
    and (as the receiver) accepts, starts and completes the referral."""

    wait_time = constant(0)
    network_timeout = connection_timeout = 30.0

    @task
    def journey(self):
        sender, receiver = random.sample(SPEC["directory"], 2)
        created = self.client.post(
            "/v1/referrals", json=data.referral(receiver["id"]), headers=bearer(sender), name="create"
        )
        answered_at = time.time()
        if created.status_code != 201:
            return
        referral = created.json()
        if MEASURING:
            CREATED.append((answered_at, referral["reference"], receiver["email"]))
        if SPEC.get("flow") == "create":
            return
        self.client.get("/v1/referrals?box=sent&per_page=20", headers=bearer(sender), name="list")
        path = f"/v1/referrals/{referral['id']}"
        for move, body in (("accept", {}), ("start", {}), ("complete", {"outcome": "Housed in Ganja."})):
            moved = self.client.post(f"{path}/{move}", json=body, headers=bearer(receiver), name=move)
            if moved.status_code != 200:
                return


class Monolith(FastHttpUser):
    """The same create call against the monolith baseline."""

    wait_time = constant(0)
    network_timeout = connection_timeout = 30.0

    @task
    def create(self):
        self.client.post("/v1/referrals", json=data.referral(uuid.uuid4()), name="create")


def standalone_proxy():
    from nameko.standalone.rpc import ClusterRpcProxy

    holder = ClusterRpcProxy({"AMQP_URI": SPEC["amqp_uri"]}, timeout=10)
    return holder, holder.start()


class EchoCaller(User):
    """The ceiling: one nameko RPC round trip (the referral body there and
    back) through nameko's standalone proxy, one proxy per user. locust
    knows nothing of RPC, so the timings are fired as request events."""

    wait_time = constant(0)

    def on_start(self):
        self.holder, self.rpc = standalone_proxy()

    def on_stop(self):
        self.holder.stop()

    @task
    def echo(self):
        started, error = time.perf_counter(), None
        try:
            self.rpc.bench_echo.echo(data.referral(uuid.uuid4()))
        except Exception as exc:  # recorded as a failure, like an HTTP error
            error = exc
        self.environment.events.request.fire(
            request_type="RPC",
            name="echo",
            response_time=(time.perf_counter() - started) * 1000,
            response_length=0,
            exception=error,
            context={},
        )


USERS = {"network": Partner, "monolith-journey": Partner, "monolith": Monolith, "echo": EchoCaller}


def cooperation_check(calls=8, seconds=0.3):
    """nameko's standalone proxy blocks in kombu's socket reads: under
    gevent's patched sockets `calls` concurrent slow calls must overlap
    (about `seconds` in all), not queue (calls x seconds)."""
    proxies = [standalone_proxy() for _ in range(calls)]
    try:
        started = time.perf_counter()
        gevent.joinall(
            [gevent.spawn(rpc.bench_echo.sleep, seconds) for _, rpc in proxies],
            timeout=calls * seconds + 10,
            raise_error=True,
        )
        took = time.perf_counter() - started
    finally:
        for holder, _ in proxies:
            holder.stop()
    return {"calls": calls, "seconds_each": seconds, "took": round(took, 3), "overlapped": took < 2 * seconds}


def summary(stats, elapsed):
    calls = {}
    for entry in stats.entries.values():
        calls[entry.name] = {
            "requests": entry.num_requests,
            "failures": entry.num_failures,
            "per_second": entry.num_requests / elapsed,
            "mean_ms": entry.avg_response_time,
            **{f"p{round(p * 100)}_ms": entry.get_response_time_percentile(p) for p in PERCENTILES},
        }
    errors = [
        {"call": error.name, "error": str(error.error), "count": error.occurrences}
        for error in stats.errors.values()
    ]
    return calls, errors


def mark(spec, state):
    """Tells the orchestrator (which watches CPU use) where the measured window is."""
    if spec.get("marks"):
        with open(f"{spec['marks']}.{state}", "w", encoding="utf-8"):
            pass


def run(spec):
    global MEASURING
    SPEC.update(spec)
    result = {"system": spec["system"], "users": spec["users"]}
    if spec.get("check_cooperation"):
        result["cooperation"] = cooperation_check()
    env = Environment(user_classes=[USERS[spec["system"]]], host=spec.get("url"))
    runner = env.create_local_runner()
    try:
        runner.start(spec["users"], spawn_rate=spec["users"])
        deadline = time.monotonic() + 30
        while runner.user_count < spec["users"] and time.monotonic() < deadline:
            gevent.sleep(0.1)
        gevent.sleep(spec["warmup"])
        env.stats.reset_all()
        MEASURING, started = True, time.monotonic()
        mark(spec, "measuring")
        result["window"] = [time.time(), None]
        gevent.sleep(spec["seconds"])
        MEASURING, elapsed = False, time.monotonic() - started
        mark(spec, "measured")
        result["window"][1] = time.time()
        result["seconds"] = elapsed
        result["calls"], result["errors"] = summary(env.stats, elapsed)
        result["created"] = list(CREATED)
    finally:
        runner.quit()
    return result


def main():
    logging.basicConfig(level=logging.WARNING)
    spec_path, out_path = sys.argv[1], sys.argv[2]
    with open(spec_path, encoding="utf-8") as spec_file:
        result = run(json.load(spec_file))
    with open(out_path, "w", encoding="utf-8") as out:
        json.dump(result, out)


if __name__ == "__main__":
    main()
