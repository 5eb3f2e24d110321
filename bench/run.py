"""`make bench`: the network under load next to two baselines, written up
in docs/benchmarks.md and docs/benchmarks.png.

1. The ceiling: a bare nameko RPC echo (bench/echo.py) on the same RabbitMQ.
2. The monolith: Flask + PostgreSQL, no broker, creates only (bench/monolith.py).
3. The same-work monolith: the network's journey, tables and e-mails in
   one gunicorn, no broker (bench/monolith_journey.py), with an SMTP sink.
4. The network, started as `make run` starts it (bin/run) on databases and
   a RabbitMQ vhost of this run's own, with an SMTP sink counting e-mails;
   or one already running (BENCH_URL and BENCH_ADMIN_KEY).

Each system gets every level of concurrent locust users (bench/load.py, a
process of its own per level), one after the other, the same time each.
After the network's journey levels, one more level where its clients only
create (BENCH_CREATE_LEVEL users): do the e-mails keep up at its top create rate?
Where the network misses a target at 32 users, one more 32-user level runs
with py-spy on its processes. Everything this started is stopped, and its
databases and vhost dropped, at the end, on an error or on Ctrl-C.

Settings (environment): BENCH_SECONDS (measured seconds per level, 20),
BENCH_WARMUP (3), BENCH_LEVELS (1,8,32,64), BENCH_AGENCIES (128),
BENCH_DRAIN_SECONDS (most seconds to wait for a level's e-mails, 30),
BENCH_PROFILE (auto, 1 or 0), BENCH_SYSTEMS (echo,monolith,monolith-journey,network),
BENCH_FLOW (journey, or create: the network's clients only create),
BENCH_CREATE_LEVEL (32; 0: no create-only level after the journey levels),
BENCH_URL + BENCH_ADMIN_KEY (+ BENCH_NETWORK_PID: bin/run's pid, for memory
and profiles; + BENCH_SMTP_PORT: where that network sends its mail, for the
e-mail times), GATEWAY_WORKERS and GATEWAY_THREADS (2 and 8), RABBIT_API_URI.
"""

import concurrent.futures
import contextlib
import datetime
import importlib.metadata
import json
import os
import pathlib
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from urllib.parse import urlsplit

import psutil
import psycopg
import requests
from sqlalchemy.engine import make_url

from bench import processes, profile, report
from shared import config
from shared.storage import migrate
from shared.storage.sealing import new_key

ROOT = pathlib.Path(__file__).resolve().parent.parent


class Settings:
    def __init__(self, env):
        self.seconds = float(env.get("BENCH_SECONDS") or 20)
        self.warmup = float(env.get("BENCH_WARMUP") or 3)
        self.levels = [int(n) for n in (env.get("BENCH_LEVELS") or "1,8,32,64").split(",")]
        self.agencies = int(env.get("BENCH_AGENCIES") or 128)
        self.drain = float(env.get("BENCH_DRAIN_SECONDS") or 30)
        self.profile = (env.get("BENCH_PROFILE") or "auto").lower()
        self.systems = (env.get("BENCH_SYSTEMS") or "echo,monolith,monolith-journey,network").split(",")
        self.flow = env.get("BENCH_FLOW") or "journey"  # or "create": network clients only create
        if self.flow not in ("journey", "create"):
            raise SystemExit("BENCH_FLOW is journey or create")
        self.create_level = int(env.get("BENCH_CREATE_LEVEL") or 32) if self.flow == "journey" else 0
        self.url = (env.get("BENCH_URL") or "").rstrip("/")
        self.admin_key = env.get("BENCH_ADMIN_KEY") or ""
        self.network_pid = int(env["BENCH_NETWORK_PID"]) if env.get("BENCH_NETWORK_PID") else None
        self.smtp_port = int(env["BENCH_SMTP_PORT"]) if env.get("BENCH_SMTP_PORT") else None
        self.workers = int(env.get("GATEWAY_WORKERS") or 2)
        self.threads = int(env.get("GATEWAY_THREADS") or 8)
        self.rabbit_api = (env.get("RABBIT_API_URI") or "http://guest:guest@localhost:15672").rstrip("/")
        if self.url and not self.admin_key:
            raise SystemExit("BENCH_URL needs BENCH_ADMIN_KEY (an admin key of that network).")

    def public(self):
        return {
            "seconds": self.seconds,
            "warmup": self.warmup,
            "levels": self.levels,
            "agencies": self.agencies,
            "drain": self.drain,
            "workers": self.workers,
            "threads": self.threads,
            "external_network": bool(self.url),
            "flow": self.flow,
            "create_level": self.create_level,
        }


class Rabbit:
    """A vhost of this run's own, through the management API."""

    def __init__(self, api_uri):
        parts = urlsplit(api_uri)
        self.base = f"{parts.scheme}://{parts.hostname}:{parts.port or 15672}/api"
        self.auth = (parts.username or "guest", parts.password or "guest")

    def create_vhost(self, vhost):
        requests.put(f"{self.base}/vhosts/{vhost}", auth=self.auth, timeout=10).raise_for_status()
        requests.put(
            f"{self.base}/permissions/{vhost}/{self.auth[0]}",
            auth=self.auth,
            timeout=10,
            json={"configure": ".*", "write": ".*", "read": ".*"},
        ).raise_for_status()

    def delete_vhost(self, vhost):
        requests.delete(f"{self.base}/vhosts/{vhost}", auth=self.auth, timeout=30)

    def has_queue(self, vhost, queue):
        return requests.get(f"{self.base}/queues/{vhost}/{queue}", auth=self.auth, timeout=10).ok

    def versions(self):
        overview = requests.get(f"{self.base}/overview", auth=self.auth, timeout=10).json()
        return overview.get("rabbitmq_version"), overview.get("erlang_version")


def amqp_uri(vhost):
    parts = urlsplit(config.load()["AMQP_URI"])
    return f"{parts.scheme}://{parts.netloc}/{vhost}"


def database_url(key, name):
    return (
        make_url(config.sqlalchemy_url(config.load()[key]))
        .set(database=name)
        .render_as_string(hide_password=False)
    )


def machine():
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    server = make_url(config.sqlalchemy_url(config.load()["REFERRALS_DATABASE_URL"])).set(
        drivername="postgresql", database="postgres"
    )
    with psycopg.connect(server.render_as_string(hide_password=False)) as conn:
        postgres = conn.execute("SHOW server_version").fetchone()[0]
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    return {
        "nproc": os.cpu_count(),
        "memory_gib": psutil.virtual_memory().total / 2**30,
        "cpu_model": model,
        "python": platform.python_version(),
        "postgresql": postgres,
        "kernel": platform.release(),
        "commit": commit + (" (with uncommitted changes)" if dirty else ""),
        "load_average_before": os.getloadavg(),
    }


class Mailbox:
    """Reads the SMTP sink's file as it grows: when each (reference,
    recipient) pair first arrived."""

    def __init__(self, path):
        self.path = path
        self.offset = 0
        self.arrivals = {}
        self.last_new = time.monotonic()

    def read(self):
        if not self.path.exists():
            return
        with open(self.path, encoding="utf-8") as sink_file:
            sink_file.seek(self.offset)
            chunk = sink_file.read()
        complete = chunk[: chunk.rfind("\n") + 1]
        self.offset += len(complete.encode())
        for line in complete.splitlines():
            arrived, rcpt, reference = line.split("\t")
            self.arrivals.setdefault((reference, rcpt), float(arrived))
        if complete:
            self.last_new = time.monotonic()

    def wait_for(self, wanted, bound):
        """Until every wanted pair arrived and the sink has been quiet for a
        second (the level's later e-mails drained too), or `bound` seconds."""
        started = time.monotonic()
        while True:
            self.read()
            missing = sum(1 for key in wanted if key not in self.arrivals)
            quiet = time.monotonic() - self.last_new > 1.0
            waited = time.monotonic() - started
            if (not missing and quiet) or waited > bound:
                return missing, waited
            time.sleep(0.2)


class Bench:
    def __init__(self, settings, work, cleanup):
        self.s = settings
        self.work = work
        self.cleanup = cleanup
        self.run_id = uuid.uuid4().hex[:6]
        self.vhost = f"bench_{self.run_id}"
        self.amqp = amqp_uri(self.vhost)
        self.rabbit = Rabbit(settings.rabbit_api)
        self.sink = None
        self.mailbox = None
        self.network = None  # bin/run, when this run started it
        self.results = {"settings": settings.public(), "levels": {}, "notes": []}

    # -- set-up -------------------------------------------------------------
    def own_vhost(self):
        self.rabbit.create_vhost(self.vhost)
        self.cleanup.callback(self.rabbit.delete_vhost, self.vhost)

    def own_database(self, key, service):
        url = database_url(key, f"{service}_bench_{self.run_id}")
        self.cleanup.callback(migrate.drop_database, url)
        return url

    def start(self, name, command, env=None, stop_timeout=30):
        process = processes.start(command, self.work / f"{name}.log", env=env, cwd=ROOT)
        self.cleanup.callback(processes.stop, process, stop_timeout)
        return process

    def start_sink(self, port, name="smtp-sink"):
        path = self.work / f"{name}.tsv"
        self.sink = self.start(
            name, [sys.executable, "-m", "bench.smtp_sink", str(port), str(path)], stop_timeout=10
        )
        processes.wait_for(lambda: processes.port_open(port), 15, "the SMTP sink")
        self.mailbox = Mailbox(path)

    def stop_sink(self):
        processes.stop(self.sink, 10)
        self.sink = self.mailbox = None

    def start_network(self):
        admin_key = "bench-admin-" + uuid.uuid4().hex
        port, smtp_port = processes.free_port(), processes.free_port()
        self.start_sink(smtp_port)
        env = dict(
            os.environ,
            VENV=sys.prefix,
            AMQP_URI=self.amqp,
            GATEWAY_PORT=str(port),
            BOOTSTRAP_ADMIN_KEY=admin_key,
            SMTP_HOST="127.0.0.1",
            SMTP_PORT=str(smtp_port),
            GATEWAY_WORKERS=str(self.s.workers),
            GATEWAY_THREADS=str(self.s.threads),
            RATE_LIMIT_KEY_PREFIX="bench-" + uuid.uuid4().hex,  # counts of its own in Redis
            DATA_ENCRYPTION_KEYS=new_key(),  # the run's own, as its databases
            WEBHOOK_SECRET_KEYS=new_key(),
            **{key: self.own_database(key, service) for service, key in config.DATABASE_KEYS.items()},
        )
        self.network = self.start("network", [str(ROOT / "bin" / "run")], env=env)
        url = f"http://127.0.0.1:{port}"

        def ready():
            if self.network.poll() is not None:
                raise RuntimeError(f"bin/run exited early; see {self.work / 'network.log'}")
            try:
                return requests.get(url + "/readyz", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        processes.wait_for(ready, 120, "the network to be ready", interval=0.5)
        return url, admin_key, self.network.pid

    def load_directory(self, url, admin_key):
        """Agencies, each with one English e-mail contact and an agency key,
        made through the API as an admin would."""
        admin = {"Authorization": f"Bearer {admin_key}"}

        def call(method, path, body):
            for _ in range(10):  # the admin key has a rate limit too
                answer = requests.request(method, url + path, json=body, headers=admin, timeout=30)
                if answer.status_code != 429:
                    answer.raise_for_status()
                    return answer.json()
                time.sleep(float(answer.headers.get("Retry-After", 1)))
            raise RuntimeError(f"{path}: still rate limited")

        def one(index):
            email = f"coordinator-{index}-{self.run_id}@bench.example.org"
            agency = call(
                "POST",
                "/v1/agencies",
                {
                    "name": f"Bench agency {index} {self.run_id}",
                    "kind": "ngo",
                    "services": ["housing", "employment", "health", "legal"],
                    "regions": ["AZ-BA", "AZ-GA"],
                    "languages": ["en"],
                    "accepting_referrals": True,
                    "contacts": [
                        {
                            "name": f"Coordinator {index}",
                            "email": email,
                            "language": "en",
                            "channels": ["email"],
                        }
                    ],
                },
            )
            key = call("POST", f"/v1/agencies/{agency['id']}/api-keys", {"role": "agency"})
            return {"id": agency["id"], "key": key["key"], "email": email}

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            return list(pool.map(one, range(self.s.agencies)))

    # -- levels -------------------------------------------------------------
    def level(self, spec, root_pid, label, profile_pids=None):
        """One level: the load process, the watch over the system's
        processes and, when asked, py-spy on `profile_pids`."""
        name = (
            f"{spec['system']}-{spec['users']}"
            + ("-creates" if spec.get("flow") == "create" else "")
            + ("-profiled" if profile_pids else "")
        )
        spec = dict(
            spec,
            seconds=self.s.seconds,
            warmup=self.s.warmup,
            amqp_uri=self.amqp,
            marks=str(self.work / name),
        )
        spec_path, out_path = self.work / f"{name}.spec.json", self.work / f"{name}.json"
        spec_path.write_text(json.dumps(spec))
        load = processes.start(
            [sys.executable, "-m", "bench.load", str(spec_path), str(out_path)],
            self.work / f"load-{name}.log",
            cwd=ROOT,
        )
        extra = {"load generator (locust)": load.pid, "orchestrator": os.getpid()}
        if self.sink:
            extra["smtp sink"] = self.sink.pid
        profiles = {}
        try:
            with processes.Watch(root_pid, label, extra) as watch:
                deadline = time.monotonic() + self.s.seconds + self.s.warmup + 120
                measuring, measured = (
                    pathlib.Path(f"{spec['marks']}.measuring"),
                    pathlib.Path(f"{spec['marks']}.measured"),
                )
                while not measuring.exists() and load.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.05)
                watch.cpu_start()
                if profile_pids:
                    profiles = profile.record(profile_pids, max(1, self.s.seconds - 1), self.work)
                while not measured.exists() and load.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.05)
                watch.cpu_end()
                load.wait(timeout=max(1, deadline - time.monotonic()))
        finally:
            if load.poll() is None:
                processes.stop(load, 10)
            for spy, _, _ in profiles.values():
                with contextlib.suppress(subprocess.TimeoutExpired):
                    spy.wait(timeout=self.s.seconds + 30)
                if spy.poll() is None:
                    processes.stop(spy, 5)
        if load.returncode != 0 or not out_path.exists():
            raise RuntimeError(f"the load of {name} failed; see {self.work / f'load-{name}.log'}")
        result = json.loads(out_path.read_text())
        if not spec.get("mail"):
            result.pop("created", None)
        result.update(
            rss_mb=watch.rss_mb, cpu_percent=watch.cpu_percent, machine_percent=watch.machine_percent
        )
        if profiles:
            result["profiles"] = {
                proc: dict(
                    profile.top_frames(path) if path.exists() else profile.failed(path), command=" ".join(cmd)
                )
                for proc, (_, path, cmd) in profiles.items()
            }
        return result

    def mail_times(self, result):
        """Seconds from each measured 201 to its receiver's e-mail."""
        created = result.pop("created", [])
        if not self.mailbox:
            return
        wanted = {(reference, email): answered for answered, reference, email in created}
        missing, waited = self.mailbox.wait_for(wanted, self.s.drain)
        result["mail"] = {
            "expected": len(wanted),
            "missing": missing,
            "waited": waited,
            "seconds": sorted(
                self.mailbox.arrivals[key] - answered
                for key, answered in wanted.items()
                if key in self.mailbox.arrivals
            ),
        }

    def run_echo(self):
        service = self.start(
            "echo",
            [sys.executable, "-m", "bench.echo"],
            env=dict(os.environ, AMQP_URI=self.amqp),
            stop_timeout=15,
        )
        processes.wait_for(
            lambda: self.rabbit.has_queue(self.vhost, "rpc-bench_echo"), 60, "the echo service's queue"
        )
        runs = {}
        for index, users in enumerate(self.s.levels):
            spec = {"system": "echo", "users": users, "check_cooperation": index == 0}
            runs[users] = self.level(spec, service.pid, processes.echo_label)
            print(report.level_line("echo", runs[users]), flush=True)
        processes.stop(service, 15)
        return runs

    def run_monolith(self):
        url_db = self.own_database("REFERRALS_DATABASE_URL", "monolith")
        migrate.ensure_database(url_db)
        from bench import monolith

        monolith.create_table(url_db)
        port = processes.free_port()
        server = self.start(
            "monolith",
            [
                os.path.join(os.path.dirname(sys.executable), "gunicorn"),
                "bench.monolith:app",
                "--worker-class",
                "gthread",
                "--workers",
                str(self.s.workers),
                "--threads",
                str(self.s.threads),
                "--bind",
                f"127.0.0.1:{port}",
                "--access-logfile",
                "-",
                "--graceful-timeout",
                "10",
            ],
            env=dict(os.environ, MONOLITH_DATABASE_URL=url_db, GATEWAY_THREADS=str(self.s.threads)),
        )
        processes.wait_for(lambda: processes.port_open(port), 30, "the monolith")
        runs = {}
        for users in self.s.levels:
            spec = {"system": "monolith", "users": users, "url": f"http://127.0.0.1:{port}"}
            runs[users] = self.level(spec, server.pid, processes.monolith_label)
            print(report.level_line("monolith", runs[users]), flush=True)
        processes.stop(server, 15)
        return runs

    def run_monolith_journey(self):
        from bench import monolith_journey

        url_db = self.own_database("REFERRALS_DATABASE_URL", "monolith_journey")
        keys = new_key()
        monolith_journey.prepare(url_db, dict(config.load(), DATA_ENCRYPTION_KEYS=keys))
        directory = monolith_journey.load_directory(url_db, self.s.agencies, self.run_id)
        port, smtp_port = processes.free_port(), processes.free_port()
        self.start_sink(smtp_port, "smtp-sink-monolith-journey")
        server = self.start(
            "monolith-journey",
            [
                os.path.join(os.path.dirname(sys.executable), "gunicorn"),
                "-c",
                str(ROOT / "gateway" / "gunicorn.conf.py"),
                "bench.monolith_journey:app",
                "--bind",
                f"127.0.0.1:{port}",
            ],
            env=dict(
                os.environ,
                MONOLITH_DATABASE_URL=url_db,
                DATA_ENCRYPTION_KEYS=keys,
                SMTP_HOST="127.0.0.1",
                SMTP_PORT=str(smtp_port),
                GATEWAY_WORKERS=str(self.s.workers),
                GATEWAY_THREADS=str(self.s.threads),
                RATE_LIMIT_KEY_PREFIX="bench-" + uuid.uuid4().hex,
            ),
        )
        processes.wait_for(lambda: processes.port_open(port), 30, "the same-work monolith")
        runs = {}
        for users in self.s.levels:
            spec = {
                "system": "monolith-journey",
                "users": users,
                "url": f"http://127.0.0.1:{port}",
                "directory": directory,
                "flow": "journey",
                "mail": True,
            }
            runs[users] = self.level(spec, server.pid, processes.monolith_journey_label)
            self.mail_times(runs[users])
            print(report.level_line("monolith-journey", runs[users]), flush=True)
        processes.stop(server, 15)
        self.stop_sink()
        return runs

    def run_network(self):
        if self.s.url:
            url, admin_key, root_pid = self.s.url, self.s.admin_key, self.s.network_pid
            if self.s.smtp_port:
                self.start_sink(self.s.smtp_port)
            self.results["notes"].append(f"The network was one already running at {url}.")
        else:
            url, admin_key, root_pid = self.start_network()
        started = time.monotonic()
        directory = self.load_directory(url, admin_key)
        self.results["directory_seconds"] = time.monotonic() - started
        self.network_run = (url, directory, root_pid)
        runs = {}
        for users in self.s.levels:
            spec = {
                "system": "network",
                "users": users,
                "url": url,
                "directory": directory,
                "flow": self.s.flow,
                "mail": True,
            }
            runs[users] = self.level(spec, root_pid, processes.network_label)
            self.mail_times(runs[users])
            print(report.level_line("network", runs[users]), flush=True)
        if self.s.create_level:
            users = self.s.create_level
            spec = {
                "system": "network",
                "users": users,
                "url": url,
                "directory": directory,
                "flow": "create",
                "mail": True,
            }
            run = self.level(spec, root_pid, processes.network_label)
            self.mail_times(run)
            self.results["levels"]["network-create"] = {users: run}
            print(report.level_line("network (creates only)", run), flush=True)
        return runs

    def run_profile(self, users):
        url, directory, root_pid = self.network_run
        names = {}
        for proc in processes.tree(root_pid):
            name = processes.network_label(proc, names)
            names[proc.pid] = name
        hot = {
            name: pid
            for pid, name in names.items()
            if name in ("agencies", "referrals", "notifications") or "worker" in name
        }
        spec = {
            "system": "network",
            "users": users,
            "url": url,
            "directory": directory,
            "flow": self.s.flow,
            "mail": True,
        }
        run = self.level(spec, root_pid, processes.network_label, profile_pids=hot)
        self.mail_times(run)
        return run


def interrupted(*_):
    """SIGTERM ends the bench as Ctrl-C does: through every clean-up."""
    raise KeyboardInterrupt


def main():
    settings = Settings(os.environ)
    work = pathlib.Path(tempfile.mkdtemp(prefix="bench-"))
    print(f"bench: logs and raw results in {work}", flush=True)
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)  # also when started with SIGINT ignored (a background job)
    ok = False
    try:
        with contextlib.ExitStack() as cleanup:
            bench = Bench(settings, work, cleanup)
            results = bench.results
            results["machine"] = machine()
            try:
                results["machine"]["rabbitmq"], results["machine"]["erlang"] = bench.rabbit.versions()
            except requests.RequestException:
                print(
                    f"bench: RabbitMQ's management API does not answer at {bench.rabbit.base}; the bench "
                    "makes a vhost of its own through it: rabbitmq-plugins enable rabbitmq_management",
                    file=sys.stderr,
                )
                return 2
            results["note"] = os.environ.get("BENCH_NOTE", "")
            results["locust_version"] = importlib.metadata.version("locust")
            results["started"] = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
            bench.own_vhost()
            for system in settings.systems:
                results["levels"][system] = getattr(bench, f"run_{system.replace('-', '_')}")()
            targets = report.targets(results)
            wanted = settings.profile == "1" or (
                settings.profile == "auto" and targets and not all(met for _, _, met, _ in targets)
            )
            network_run = getattr(bench, "network_run", None)
            if wanted and network_run and network_run[2]:
                users = 32 if 32 in settings.levels else max(settings.levels)
                print(f"bench: profiling the network at {users} users", flush=True)
                results["profile"] = bench.run_profile(users)
            results["finished"] = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
            (work / "results.json").write_text(json.dumps(results, indent=1))
        report.write(results, ROOT / "docs")
        for line in report.summary_lines(results):
            print("bench: " + line)
        print(f"bench: wrote docs/benchmarks.md and docs/benchmarks.png ({work / 'results.json'})")
        ok = True
    except KeyboardInterrupt:
        print(f"bench: interrupted; everything it started has been stopped (logs in {work})", file=sys.stderr)
        return 130
    finally:
        if ok and not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
