"""`make chaos`: the network under steady referral creation while its parts
are killed and its servers restarted, one fault after another.

Each process of the Procfile runs on its own, as compose runs them (after
make run's preflight), on a RabbitMQ vhost and databases of this run's own,
with an SMTP and an SMS sink on loopback. Partner clients create referrals
without pause, each retried with its Idempotency-Key until it is made (as
API.md invites). A process the harness did not stop but that exits is
counted and started again (compose's restart policy). Then it checks:
no referral lost, no key with two referrals, every referral's e-mail and
SMS delivered, no answer 500, no process exiting on its own, every service
ready again within 30 s of each fault; and it counts 503 and 504 answers and
doubled messages. Prints a Markdown report (and the figures as JSON on the
last line).

Settings (environment): CHAOS_FAULTS (comma-separated, from kill:<process>,
term:<process>, rabbitmq, postgresql; default all of these; or
rabbitmq-leader, see chaos.brokers), CHAOS_CLIENTS (4),
CHAOS_PAUSE_SECONDS between faults (6), CHAOS_ACCEPT=1 (the receiver accepts
each referral made, and the sender's e-mail about it is checked too; off by
default), CHAOS_DOWN_SECONDS a server stays
down (10). `rabbitmq` and `postgresql` restart the machine's own servers
(rabbitmqctl, pg_ctlcluster): every other user of them sees it too.
`rabbitmq-leader` runs the network on a 3-node RabbitMQ cluster of the run's
own instead of the machine's node, and stops the node leading the queues.
"""

import collections
import json
import os
import pathlib
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import psycopg
import requests

from chaos import brokers
from shared import config
from shared.storage import migrate
from shared.storage.sealing import new_key
from tests.support import data
from tests.support.sinks import HttpSink, SmtpSink, free_port

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROCESSES = [line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line.strip()]
ALL_FAULTS = (
    [f"kill:{name}" for name, _ in PROCESSES]
    + [f"term:{name}" for name, _ in PROCESSES]
    + ["rabbitmq", "postgresql"]
)
READY_WITHIN = 30.0
ADMIN_KEY = "chaos-admin-" + uuid.uuid4().hex
SENDER_EMAIL, RECEIVER_EMAIL = "sender@example.org", "receiver@example.org"


class Network:
    """The Procfile's processes, each started on its own and watched."""

    def __init__(self, env, work, broker):
        self.env, self.work, self.broker = env, work, broker
        self.processes, self.stopping = {}, set()
        self.exits = collections.Counter()  # exits nobody asked for, by process
        self.lock = threading.Lock()
        self.watching = True
        self.watcher = threading.Thread(target=self._watch, daemon=True)

    def start(self, name):
        command = dict(PROCESSES)[name]
        log = open(self.work / f"{name}.log", "ab")  # noqa: SIM115  (the process writes to it after this returns)
        env = dict(self.env, AMQP_URI=self.broker.uri_for(name))
        self.processes[name] = subprocess.Popen(
            shlex.split(command),
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def start_all(self):
        subprocess.run(
            [sys.executable, "-m", "shared.commands.preflight"],
            cwd=ROOT,
            check=True,
            capture_output=True,
            env=dict(self.env, AMQP_URI=self.broker.uri_for("preflight")),
        )
        for name, _ in PROCESSES:
            self.start(name)
        self.watcher.start()

    def _watch(self):
        while self.watching:
            with self.lock:
                for name, process in list(self.processes.items()):
                    if process.poll() is not None and name not in self.stopping:
                        self.exits[name] += 1
                        self.start(name)  # as compose's restart policy would
            time.sleep(0.2)

    def signal(self, name, sig):
        """Stop `name` with `sig`, wait until it is gone, start it again;
        returns the seconds it took to go (None: not within 30 s, killed)."""
        with self.lock:
            self.stopping.add(name)
        process, started = self.processes[name], time.monotonic()
        os.killpg(process.pid, sig)
        try:
            process.wait(timeout=30)
            took = time.monotonic() - started
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            took = None
        with self.lock:
            self.start(name)
            self.stopping.discard(name)
        return took

    def stop(self):
        self.watching = False
        self.watcher.join(5)
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


class Partners:
    """Clients creating referrals without pause, each retried with its key;
    with `receiver_key`, the receiver then accepts each one (see `_accept`)."""

    def __init__(self, url, key, receiver_id, clients, receiver_key=None):
        self.url, self.key, self.receiver_id, self.receiver_key = url, key, receiver_id, receiver_key
        self.answers = collections.Counter()
        self.made = {}  # idempotency key -> referral id (from its 201)
        self.accept_answers = collections.Counter()
        self.accepted = set()  # referral ids
        self.running = True
        self.threads = [threading.Thread(target=self._client, daemon=True) for _ in range(clients)]

    def _client(self):
        while self.running:
            key = uuid.uuid4().hex
            while self.running:
                try:
                    answer = requests.post(
                        self.url + "/v1/referrals",
                        json=data.referral(self.receiver_id),
                        headers={"Authorization": f"Bearer {self.key}", "Idempotency-Key": key},
                        timeout=30,
                    )
                    self.answers[answer.status_code] += 1
                except requests.RequestException as error:
                    self.answers[type(error).__name__] += 1
                    time.sleep(0.2)
                    continue
                if answer.status_code == 201:
                    self.made[key] = answer.json()["id"]
                    if self.receiver_key:
                        self._accept(answer.json()["id"])
                    break
                time.sleep(0.2)

    def _accept(self, referral_id):
        """Accept as a partner would: again after a 503, 504 or a lost
        connection; a 409 (not `sent` any more) is looked up, since an
        earlier try may have done it without its answer arriving."""
        headers = {"Authorization": f"Bearer {self.receiver_key}"}
        referral_url = f"{self.url}/v1/referrals/{referral_id}"
        while self.running:
            try:
                answer = requests.post(referral_url + "/accept", headers=headers, timeout=30)
                self.accept_answers[answer.status_code] += 1
                done = answer.status_code == 200
                if answer.status_code == 409:
                    found = requests.get(referral_url, headers=headers, timeout=30)
                    done = found.status_code == 200 and found.json()["status"] == "accepted"
            except requests.RequestException as error:
                self.accept_answers[type(error).__name__] += 1
                done = False
            if done:
                self.accepted.add(referral_id)
                return
            time.sleep(0.2)

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.running = False
        for thread in self.threads:
            thread.join(60)


class Stamped(list):
    """A sink's list of what it took, with the time each item came."""

    def __init__(self):
        super().__init__()
        self.times = []

    def append(self, item):
        self.times.append(time.time())
        super().append(item)


def ready(url):
    try:
        return requests.get(url + "/readyz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def wait(predicate, timeout, interval=0.2):
    """Seconds until `predicate()` held, or None after `timeout`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(interval)
    return None


def server_fault(fault, down_seconds, broker):
    """Do a server's fault; what it says about it (the broker's faults)."""
    if fault == broker.fault:
        return broker.do_fault(down_seconds)
    if fault != "postgresql":
        raise SystemExit(f"{fault} cannot be done on this run's broker")
    cluster = sorted(os.listdir("/etc/postgresql"))[0]
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", cluster, "main", "stop", "-m", "fast"],
        check=True,
        capture_output=True,
    )
    time.sleep(down_seconds)
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", cluster, "main", "start"],
        check=True,
        capture_output=True,
    )
    return {}


def query(url, sql, *params):
    with psycopg.connect(config.sqlalchemy_url(url).replace("+psycopg", "")) as conn:
        return conn.execute(sql, params).fetchall()


def main():
    faults = [f for f in os.environ.get("CHAOS_FAULTS", ",".join(ALL_FAULTS)).split(",") if f]
    clients = int(os.environ.get("CHAOS_CLIENTS", "4"))
    pause = float(os.environ.get("CHAOS_PAUSE_SECONDS", "6"))
    accept = config.flag(os.environ.get("CHAOS_ACCEPT", "0"))
    down = float(os.environ.get("CHAOS_DOWN_SECONDS", "10"))
    run = "chaos_" + uuid.uuid4().hex[:8]
    base = config.load()
    broker = brokers.for_faults(faults, run)
    databases = {
        key: base[key].rsplit("/", 1)[0] + f"/{service}_{run}"
        for service, key in config.DATABASE_KEYS.items()
    }
    work = pathlib.Path(tempfile.mkdtemp(prefix="chaos-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    report = {"faults": [], "work": str(work)}
    with SmtpSink() as smtp, HttpSink() as sms:
        env = dict(
            os.environ,
            GATEWAY_PORT=str(port),
            BOOTSTRAP_ADMIN_KEY=ADMIN_KEY,
            SMTP_HOST="127.0.0.1",
            SMTP_PORT=str(smtp.port),
            SMS_BACKEND="http",
            SMS_HTTP_URL=sms.url,
            RATE_LIMIT="100000/minute",
            RATE_LIMIT_KEY_PREFIX=run,
            SESSION_SECRET=run,
            DATA_ENCRYPTION_KEYS=new_key(),  # the run's own, as its databases
            WEBHOOK_SECRET_KEYS=new_key(),
            NOTIFICATION_BACKOFF_SECONDS="1",
            PATH=f"{sys.prefix}/bin:{os.environ['PATH']}",
            PYTHONUNBUFFERED="1",
            **databases,
        )
        network = Network(env, work, broker)
        smtp.messages, sms.received = Stamped(), Stamped()
        try:
            network.start_all()
            if wait(lambda: ready(url), 90) is None:
                raise RuntimeError(f"the network did not become ready; logs in {work}")
            admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
            sender = requests.post(
                url + "/v1/agencies",
                headers=admin,
                json=data.agency(name="Sender", contacts=[data.contact(email=SENDER_EMAIL)]),
            ).json()
            receiver = requests.post(
                url + "/v1/agencies",
                headers=admin,
                json=data.agency(
                    name="Receiver", contacts=[data.contact(email=RECEIVER_EMAIL, channels=["email", "sms"])]
                ),
            ).json()
            key, receiver_key = (
                requests.post(
                    f"{url}/v1/agencies/{agency['id']}/api-keys", headers=admin, json={"role": "agency"}
                ).json()["key"]
                for agency in (sender, receiver)
            )
            with Partners(url, key, receiver["id"], clients, receiver_key if accept else None) as partners:
                time.sleep(pause)
                for fault in faults:
                    started, report_started = time.monotonic(), time.time()
                    stopped, details = None, {}
                    if fault.startswith(("kill:", "term:")):
                        kind, name = fault.split(":")
                        stopped = network.signal(name, signal.SIGKILL if kind == "kill" else signal.SIGTERM)
                    else:
                        details = server_fault(fault, down, broker)
                        started = details.pop("stopped_at", started)
                    took = wait(lambda: ready(url), READY_WITHIN)
                    ready_after = None if took is None else round(time.monotonic() - started, 1)
                    if fault == broker.fault:
                        details.update(broker.after_fault())
                    report["faults"].append(
                        {
                            "fault": fault,
                            "ready_after_s": ready_after,
                            "made_so_far": len(partners.made),
                            "started_at": report_started,
                            "gone_after_s": None if stopped is None else round(stopped, 1),
                            **details,
                        }
                    )
                    time.sleep(pause)
            report["answers"] = {
                str(code): count for code, count in sorted(partners.answers.items(), key=str)
            }
            made_ids = set(partners.made.values())
            referrals_db = databases["REFERRALS_DATABASE_URL"]
            outboxes = [databases[key] for key in ("REFERRALS_DATABASE_URL", "AGENCIES_DATABASE_URL")]

            def outbox_waiting():
                return sum(
                    query(db, "SELECT count(*) FROM outbox WHERE published_at IS NULL")[0][0]
                    for db in outboxes
                )

            wait(lambda: not outbox_waiting(), 120)
            stored = query(
                referrals_db,
                "SELECT r.id::text, r.reference, k.key FROM referrals r "
                "LEFT JOIN idempotency_keys k ON k.referral_id = r.id",
            )
            by_key = collections.Counter(key for _, _, key in stored)
            references = {row[0]: row[1] for row in stored}

            def named(text):
                return next((word.strip(".,:;()") for word in text.split() if "REF-" in word), None)

            accepted = {
                references[referral_id] for referral_id in partners.accepted if referral_id in references
            }

            def mail_key(recipients, message):
                """Whom an e-mail told about which referral: the receiver of a sent
                one, the sender of an accepted one (CHAOS_ACCEPT)."""
                return (",".join(sorted(recipients)), named(message["Subject"]))

            def delivered():
                """(e-mails by whom and reference, SMS by reference)."""
                return (
                    collections.Counter(mail_key(*mail) for mail in list(smtp.messages)),
                    collections.Counter(named(message["text"]) for message in list(sms.received)),
                )

            def all_delivered():
                mails, texts = delivered()
                return all(mails[RECEIVER_EMAIL, ref] and texts[ref] for ref in references.values()) and all(
                    mails[SENDER_EMAIL, ref] for ref in accepted
                )

            wait(all_delivered, 180, 1)
            mails, texts = delivered()

            def doubled_by_fault(keys, times):
                """Each message that repeats an earlier one (same reference), by
                the fault nearest its first sending (within 10 s): a send whose
                outcome a fault kept from being recorded is made again, at once
                or when its lease ends (3 x the send timeout); the first copy
                reaches the sink just before the fault, or just after it when
                the sender died with the last bytes on their way."""
                first, by_fault = {}, collections.Counter()
                for reference, arrived in zip(keys, times, strict=False):
                    if reference not in first:
                        first[reference] = arrived
                        continue
                    near = sorted(
                        (abs(f["started_at"] - first[reference]), f["fault"]) for f in report["faults"]
                    )
                    by_fault[
                        near[0][1] if near and near[0][0] <= 10 else "(no fault near the first send)"
                    ] += 1
                return dict(by_fault)

            report["doubled_by_fault"] = {
                "email": doubled_by_fault([mail_key(*mail) for mail in smtp.messages], smtp.messages.times),
                "sms": doubled_by_fault([named(m["text"]) for m in sms.received], sms.received.times),
            }
            report["outbox_waiting"] = outbox_waiting()
            report["dead_letters"] = sum(
                count for name, count in broker.messages().items() if name.startswith("dead-letters.")
            )
            report["tracebacks_in_logs"] = {
                log.stem: log.read_text(errors="replace").count("Traceback")
                for log in sorted(work.glob("*.log"))
            }
            report.update(
                {
                    "referrals_made": len(made_ids),
                    "referrals_lost": len(made_ids - set(references)),
                    "keys_with_two_referrals": sum(1 for key, count in by_key.items() if key and count > 1),
                    "referrals_without_their_email": sum(
                        1 for ref in references.values() if not mails[RECEIVER_EMAIL, ref]
                    ),
                    "referrals_accepted": len(accepted),
                    "accepted_without_their_email": sum(
                        1 for ref in accepted if not mails[SENDER_EMAIL, ref]
                    ),
                    "accept_answers": {
                        str(code): count for code, count in sorted(partners.accept_answers.items(), key=str)
                    },
                    "referrals_without_their_sms": sum(1 for ref in references.values() if not texts[ref]),
                    "doubled_emails": sum(count - 1 for count in mails.values() if count > 1),
                    "doubled_sms": sum(count - 1 for count in texts.values() if count > 1),
                    "answers_500": partners.answers.get(500, 0) + partners.accept_answers.get(500, 0),
                    "processes_exited_on_their_own": dict(network.exits),
                    "faults_not_ready_within_30_s": [
                        f["fault"] for f in report["faults"] if f["ready_after_s"] is None
                    ],
                    "stops_not_done_within_30_s": [
                        f["fault"]
                        for f in report["faults"]
                        if f["fault"].startswith("term:") and f["gone_after_s"] is None
                    ],
                }
            )
        finally:
            network.stop()
            for database in databases.values():
                migrate.drop_database(database)
            broker.close()
    print(markdown(report, clients))
    print(json.dumps(report))
    passed = (
        report["referrals_lost"] == report["keys_with_two_referrals"] == report["answers_500"] == 0
        and report["outbox_waiting"] == report["dead_letters"] == report["accepted_without_their_email"] == 0
        and not report["processes_exited_on_their_own"]
        and not report["faults_not_ready_within_30_s"]
        and not report["stops_not_done_within_30_s"]
        and report["referrals_without_their_email"] == report["referrals_without_their_sms"] == 0
    )
    return 0 if passed else 1


def markdown(report, clients):
    lines = [
        f"Clients: {clients}. Referrals made: {report['referrals_made']}.",
        "",
        "| fault | process gone after (s) | ready again after (s) |",
        "|---|---|---|",
    ]
    lines += [
        f"| {f['fault']} | {'' if not f['fault'].startswith(('kill:', 'term:')) else f['gone_after_s'] if f['gone_after_s'] is not None else 'NOT within 30'}"
        f" | {f['ready_after_s'] if f['ready_after_s'] is not None else 'NOT within 30'} |"
        for f in report["faults"]
    ]
    for f in report["faults"]:
        if "node_stopped" in f:
            lines += [
                "",
                f"{f['fault']}: {f['node_stopped']} stopped, leading {f['queues_it_led']} of the "
                f"{f['quorum_queues']} quorum queues; client connections by node before: "
                f"{f['connections_by_node_before']}; running after: {f['running_after']}.",
            ]
    lines += ["", "| figure | value |", "|---|---|"]
    for name in (
        "stops_not_done_within_30_s",
        "referrals_lost",
        "outbox_waiting",
        "dead_letters",
        "referrals_accepted",
        "accepted_without_their_email",
        "accept_answers",
        "keys_with_two_referrals",
        "referrals_without_their_email",
        "referrals_without_their_sms",
        "answers_500",
        "processes_exited_on_their_own",
        "doubled_emails",
        "doubled_sms",
        "doubled_by_fault",
        "tracebacks_in_logs",
        "answers",
    ):
        lines.append(f"| {name.replace('_', ' ')} | {report[name]} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
