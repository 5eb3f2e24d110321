"""docs/benchmarks.md and docs/benchmarks.png from a run's results, rewritten
whole by every `make bench` (the markdown comes from TEMPLATE below).

`python -m bench.report RESULTS.json` writes them again from a kept run
(BENCH_KEEP=1 keeps the run's folder, results.json included).
"""

import json
import math
import pathlib
import string
import sys

TARGET_USERS = 32
CALLS = ("create", "list", "accept", "start", "complete")
MB = "MB"  # 10^6 bytes

TEMPLATE = string.Template("""\
# Benchmarks

Written by `make bench` (bench/report.py) on $started; every run rewrites
this file and `benchmarks.png`. Numbers from one machine, one run: compare
them with runs on the same machine only. What the profiles led to, measured
before and after on one machine in one session, is in
[benchmarks-history.md](benchmarks-history.md).

## How to reproduce

```sh
make bench                          # about 15 minutes: echo, both monoliths, then the network
BENCH_SECONDS=5 make bench          # a quick look (5 s per level)
BENCH_LEVELS=32 BENCH_SYSTEMS=network make bench   # one level of one system
BENCH_URL=http://127.0.0.1:8000 BENCH_ADMIN_KEY=... make bench   # a network already running
```

`make bench` installs `requirements-bench.txt` into `.venv`, then runs
`python -m bench.run`. It needs what `make test` needs (RabbitMQ with its
management plugin, PostgreSQL). It starts the network as `make run` does
(`bin/run`) on databases `<service>_bench_<run>` and a RabbitMQ vhost
`bench_<run>` of its own, with an SMTP sink (aiosmtpd, its own process),
and drops them all at the end, also on Ctrl-C or an error. Settings:
`BENCH_SECONDS` (measured seconds per level, default 20), `BENCH_WARMUP` (3),
`BENCH_LEVELS` (1,8,32,64), `BENCH_AGENCIES` (128), `BENCH_DRAIN_SECONDS`
(the most it waits after a level for that level's e-mails, 30),
`BENCH_PROFILE` (`auto`: py-spy during one more 32-client level when a
target is missed; `1` always; `0` never), `BENCH_SYSTEMS`
(echo,monolith,monolith-journey,network), `BENCH_FLOW` (`journey`, or
`create`), `BENCH_CREATE_LEVEL` (the clients of the network's create-only
level after its journey levels, 32; `0`: none), `BENCH_NOTE` (a sentence on
the run's conditions, printed below), `BENCH_KEEP=1` (keep the logs and raw results). With
`BENCH_URL`, `BENCH_NETWORK_PID` (bin/run's pid) adds memory, CPU and
profiles, and `BENCH_SMTP_PORT` (where that network sends mail: the bench's
sink listens there) adds the e-mail times.

What runs: [locust](https://locust.io) $locust as a library, in a process of
its own per level (locust patches with gevent; the network's code uses
eventlet: never both in one process). Every client runs without pause, so
each level shows what N busy clients get. Each level has $warmup s of
warm-up, then $seconds s measured.

- **network**: each client is a partner's system doing one referral's
  whole journey over HTTP, with a random sender and receiver among
  $agencies agencies (each its own agency key, one English e-mail contact):
  `POST /v1/referrals` (create), `GET /v1/referrals?box=sent` (list), then,
  with the receiver's key, `POST .../accept`, `.../start`, `.../complete`.
  So a created referral costs 5 calls: *created/s* counts referrals,
  *calls/s* all calls. (With `BENCH_FLOW=create` the clients only create;
  this run: $flow.) The gateway's per-key rate limit is left at its
  default (`RATE_LIMIT`); any 429 would count as an error.
  *e-mail* is the time from the client receiving the 201 to the receiver's
  e-mail (its subject carries the reference) reaching the SMTP sink.
  After the journey levels, one more level ($create_level) where the same
  clients only create, as fast as they can: the network's top create rate,
  and whether its e-mails keep up with it.
- **same-work monolith** (`bench/monolith_journey.py`): what a team would
  write instead of the network for the same journey, driven by the same
  clients (the same locust class, paths, bodies, $agencies agencies with
  a key and an English e-mail contact each) in the same run. One gunicorn
  with the gateway's own settings (`gateway/gunicorn.conf.py`: gthread,
  $workers workers x $threads threads, its access log) serving one Flask
  app that has the gateway's request ids, per-key rate limit (Redis), body
  checks and problem bodies, and on every request checks the bearer key as
  the agencies service does (`directory.authenticate`: the key's SHA-256
  digest in the API keys table, one statement), without a cache. Each call
  then runs the referrals service's own code (`services.referrals.cases`)
  on a database made by the referrals service's own migrations: the body
  checked with `shared.contract.referrals`, the returnee and the texts sealed
  with `shared.storage.sealing`, the referral with its history entry and its outbox
  event in one statement, a list's reads and each move written in the
  access log; a create also reads the receiving agency from the agencies
  table (the network's referrals service keeps it cached). A thread in
  each gunicorn worker polls the outbox every 0.1 s (`FOR UPDATE SKIP
  LOCKED`), renders each event's e-mails with the notifications service's
  own planning and templates in the contact's language, sends them 8 at a
  time over kept SMTP connections (the notifications service's `Mailer`)
  to an SMTP sink of its own, and marks the events done in the same
  transaction.
  What it does not do that the network does: no broker (no RPC, no events,
  no publisher confirms), each body checked once (the network checks it in
  the gateway and again in the service), no record per e-mail (the
  network's notifications table, with its status, retry schedule and
  idempotency by event id: a failed send here leaves the event for the
  next round, and an e-mail may go twice), no SMS, no webhooks, no key
  cache kept fresh by announcements, no log line per call and per e-mail
  (its access log only) and no honcho relaying them, one process type
  instead of four.
- **ceiling (echo)**: one nameko RPC round trip through the same RabbitMQ to
  a bare nameko service (`bench/echo.py`, default 10 workers and the same
  RPC entrypoint and settings as the network's services, `shared.plumbing.rpc`: a
  queue of `QUEUE_TYPE`, replies without publisher confirms), from
  nameko's standalone `ClusterRpcProxy` (one per client) under gevent,
  timed and reported to locust as request events. The payload is the
  referral body.
- **monolith (creates only)**: one gunicorn (gthread, $workers workers x
  $threads threads, as the gateway) serving Flask that checks the same body
  with the same schema (`shared.contract.referrals.NewReferral`) and inserts
  it into a PostgreSQL table (SQLAlchemy + psycopg): no broker, no API key
  check, no sealing, no history, no e-mail. Its clients only create.

The load generator, the SMTP sink, RabbitMQ and PostgreSQL share the
machine's $nproc cores with the system measured, and so does anything else
running on the machine: see the CPU tables, whose last row is everyone
else's use. *CPU ms per referral* (or per call) divides the CPU time the
processes used in the measured window by what they got done: it is bent far
less by other work on the machine than the rates and latencies are. For
the network and the same-work monolith it covers a referral's whole
journey: 5 HTTP calls (and, in the network, the RPC calls behind them and
4 events), 3 e-mails. RabbitMQ's and PostgreSQL's share
also counts whatever else used them meanwhile. *bound on N free cores* is
N x 1000 ms over the two: the most referrals per second the network could
create at that cost if nothing else (not even the load generator) used the
machine.

## The machine and the run

| | |
|---|---|
$machine_rows

$note

## Targets

Issue 15's, all from this run ($target_users clients unless said). The
latency targets are times, and so depend on the machine's speed: the last
column gives what the same-work monolith got in the same run, under the
same load.

| target | this run | met | the same-work monolith, same run |
|---|---|---|---|
$target_rows

![Throughput and p99 latency against concurrent clients](benchmarks.png)

## The network

| clients | created/s | calls/s | errors | e-mail p50 | e-mail p99 | e-mails arrived | CPU ms per referral: network | CPU ms per referral: RabbitMQ + PostgreSQL | bound on $nproc free cores |
|---|---|---|---|---|---|---|---|---|---|
$network_rows

Latency of each call (ms):

| clients | call | requests | p50 | p95 | p99 | errors |
|---|---|---|---|---|---|---|
$call_rows

$error_rows

Peak memory (RSS, $mb) of every process of the network during each level:

$network_rss

CPU during each measured window (% of one core; the machine has $nproc00 %):

$network_cpu

## The same-work monolith

| clients | journeys/s | calls/s | errors | e-mail p50 | e-mail p99 | e-mails arrived | CPU ms per journey: monolith | CPU ms per journey: RabbitMQ + PostgreSQL | network ÷ monolith: journeys/s | network ÷ monolith: CPU per journey (all) |
|---|---|---|---|---|---|---|---|---|---|---|
$journey_rows

Latency of each call (ms):

| clients | call | requests | p50 | p95 | p99 | errors |
|---|---|---|---|---|---|---|
$journey_call_rows

Peak memory (RSS, $mb) and CPU (% of one core) of its processes:

$journey_rss

$journey_cpu

## Baselines

| clients | network created/s | ceiling: echo calls/s | echo p50/p95/p99 ms | echo errors | echo CPU ms per call (service; RabbitMQ) | network ÷ ceiling | monolith created/s | monolith p50/p95/p99 ms | monolith errors | monolith CPU ms per create (gunicorn; PostgreSQL) | network ÷ monolith |
|---|---|---|---|---|---|---|---|---|---|---|---|
$baseline_rows

$cooperation

Peak memory (RSS, $mb) of the baselines' processes:

$baseline_rss

CPU of the baselines' levels (% of one core):

$baseline_cpu

$profile
""")


def _users(runs):
    return {int(users): run for users, run in (runs or {}).items()}


def pct(values, q, missing=0):
    """The q-quantile (nearest rank) of sorted `values`, counting `missing`
    values as later than all: infinite where the rank falls among them."""
    total = len(values) + missing
    if not total:
        return None
    rank = max(1, math.ceil(q * total))
    return values[rank - 1] if rank <= len(values) else math.inf


def created_per_second(run):
    create = run["calls"].get("create") or run["calls"].get("echo") or {}
    return (create.get("requests", 0) - create.get("failures", 0)) / run["seconds"]


def errors(run):
    return sum(call["failures"] for call in run["calls"].values())


OUTSIDE = (
    "load generator (locust)",
    "orchestrator",
    "smtp sink",
    "rabbitmq",
    "postgresql",
    "rest of the machine",
)


def cpu_ms_per_op(run, servers=False):
    """CPU milliseconds per created referral (or echo call) of the system's
    own processes, or (`servers`) of RabbitMQ and PostgreSQL: less bent by
    other work on the machine than the rates are."""
    cpu = run.get("cpu_percent") or {}
    rate = created_per_second(run)
    if not cpu or not rate:
        return None
    names = ("rabbitmq", "postgresql") if servers else [n for n in cpu if n not in OUTSIDE]
    return sum(cpu.get(name, 0) for name in names) / 100 / rate * 1000


def _bound(run, cores):
    """Referrals per second the network could create at most if it had
    every core to itself, at this run's CPU cost per referral."""
    own, servers = cpu_ms_per_op(run), cpu_ms_per_op(run, servers=True)
    return "" if not own else f"{cores * 1000 / (own + (servers or 0)):.0f}/s"


def _ms(value):
    return "" if value is None else f"{value:.1f}"


def mail_quantiles(run):
    mail = run.get("mail")
    if not mail:
        return None, None
    return pct(mail["seconds"], 0.5, mail["missing"]), pct(mail["seconds"], 0.99, mail["missing"])


def fmt_seconds(value, run=None):
    if value is None:
        return "n/a"
    if value == math.inf:
        return f"> {run['mail']['waited']:.0f} s" if run else "never"
    return f"{value:.2f} s"


def cpu_ms_all(run):
    """CPU ms per journey (or create) of the system's processes and of
    RabbitMQ's and PostgreSQL's together, or None."""
    own, servers = cpu_ms_per_op(run), cpu_ms_per_op(run, servers=True)
    return None if own is None else own + (servers or 0)


def worst_call(run):
    """(call, p99 ms) of the call with the highest p99 in `run`."""
    return max(
        ((name, call["p99_ms"]) for name, call in run["calls"].items()),
        key=lambda item: item[1],
        default=(None, None),
    )


def _network_levels(results):
    """Every level the network ran, journeys and creates only: [(label, run)]."""
    found = [
        (f"{users} clients", run) for users, run in sorted(_users(results["levels"].get("network")).items())
    ]
    found += [
        (f"{users} clients, creates only", run)
        for users, run in sorted(_users(results["levels"].get("network-create")).items())
    ]
    return found


def targets(results):
    """[(target, what this run got, met, what the same-work monolith got)]:
    issue 15's targets, from the run's own figures (a target whose level
    did not run is missed: n/a; "" where the monolith has nothing to say)."""
    levels = results["levels"]
    network, same = _users(levels.get("network")), _users(levels.get("monolith-journey"))
    run, base = network.get(TARGET_USERS), same.get(TARGET_USERS)
    if not network:
        return []
    if results["settings"].get("flow") == "create":  # BENCH_FLOW=create: every network level creates only
        return _create_only_targets(results, network)
    found = []
    if run and base and created_per_second(base):
        rate, base_rate = created_per_second(run), created_per_second(base)
        found.append(
            (
                "journeys/s at least 0.5 of the same-work monolith's",
                f"{rate / base_rate:.2f} ({rate:.1f} / {base_rate:.1f})",
                rate >= 0.5 * base_rate,
                "",
            )
        )
        own, other = cpu_ms_all(run), cpu_ms_all(base)
        found.append(
            (
                "CPU per journey (with RabbitMQ's and PostgreSQL's) at most 2x the same-work monolith's",
                f"{own / other:.2f}x ({own:.1f} / {other:.1f} ms)" if own and other else "n/a",
                bool(own and other and own <= 2 * other),
                "",
            )
        )
    else:
        found.append(
            (
                "journeys/s at least 0.5 of the same-work monolith's (and CPU per journey at most 2x)",
                "n/a: no same-work monolith level at 32 clients",
                False,
                "",
            )
        )
    for users, bound in ((8, 150), (TARGET_USERS, 400)):
        level = network.get(users)
        name, p99 = worst_call(level) if level else (None, None)
        base_name, base_p99 = worst_call(same[users]) if same.get(users) else (None, None)
        found.append(
            (
                f"p99 of every call under {bound} ms at {users} clients",
                f"highest: {name} {p99:.0f} ms" if name else "n/a",
                p99 is not None and p99 < bound,
                f"highest: {base_name} {base_p99:.0f} ms" if base_name else "",
            )
        )
    _, mail_p99 = mail_quantiles(run) if run else (None, None)
    _, base_mail_p99 = mail_quantiles(base) if base else (None, None)
    found.append(
        (
            "e-mail p99 under 1 s",
            fmt_seconds(mail_p99, run),
            mail_p99 is not None and mail_p99 < 1,
            fmt_seconds(base_mail_p99, base) if base else "",
        )
    )
    creates = next(iter(_users(levels.get("network-create")).values()), None)
    _, create_mail_p99 = mail_quantiles(creates) if creates else (None, None)
    found.append(
        (
            "creates only, at the network's top create rate: e-mail p99 under 2 s",
            f"{fmt_seconds(create_mail_p99, creates)} at {created_per_second(creates):.0f} creates/s"
            if creates
            else "n/a: no create-only level",
            create_mail_p99 is not None and create_mail_p99 < 2,
            "",
        )
    )
    measured = _network_levels(results)
    peaks = [(name, mb) for _, level in measured for name, mb in level.get("rss_mb", {}).items()]
    peak = max(peaks, key=lambda item: item[1], default=(None, None))
    found.append(
        (
            f"every process of the network under 150 {MB} (every level)",
            f"largest: {peak[0]} {peak[1]:.0f} {MB}" if peak[0] else "n/a",
            peak[0] is not None and peak[1] < 150,
            "",
        )
    )
    failed = sum(errors(level) for _, level in measured)
    found.append(("no error (every level of the network)", f"{failed} errors", failed == 0, ""))
    return found


def _create_only_targets(results, network):
    """The targets a run whose network clients only create can say something of."""
    run = network.get(TARGET_USERS)
    _, mail_p99 = mail_quantiles(run) if run else (None, None)
    peaks = [(name, mb) for level in network.values() for name, mb in level.get("rss_mb", {}).items()]
    peak = max(peaks, key=lambda item: item[1], default=(None, None))
    failed = sum(errors(level) for level in network.values())
    return [
        ("the journeys' targets", "n/a: BENCH_FLOW=create, the network's clients only create", False, ""),
        (
            "creates only, at the network's top create rate: e-mail p99 under 2 s",
            f"{fmt_seconds(mail_p99, run)} at {created_per_second(run):.0f} creates/s" if run else "n/a",
            mail_p99 is not None and mail_p99 < 2,
            "",
        ),
        (
            f"every process of the network under 150 {MB} (every level)",
            f"largest: {peak[0]} {peak[1]:.0f} {MB}" if peak[0] else "n/a",
            peak[0] is not None and peak[1] < 150,
            "",
        ),
        ("no error (every level of the network)", f"{failed} errors", failed == 0, ""),
    ]


def summary_lines(results):
    """The console's closing lines: ratios to the baselines and the targets."""
    levels = results["levels"]
    network = _users(levels.get("network"))
    lines = []
    for name, system in (
        ("ceiling (echo)", "echo"),
        ("monolith", "monolith"),
        ("same-work monolith", "monolith-journey"),
    ):
        base = _users(levels.get(system))
        ratios = [
            f"{u} clients {created_per_second(network[u]) / created_per_second(base[u]):.3f}"
            for u in sorted(network)
            if u in base and created_per_second(base[u])
        ]
        if ratios:
            lines.append(f"network created/s as a ratio of the {name}: " + ", ".join(ratios))
    for name, got, met, monolith_got in targets(results):
        lines.append(
            f"target: {name}: {got}: {'met' if met else 'MISSED'}"
            + (f" (same-work monolith: {monolith_got})" if monolith_got else "")
        )
    return lines


def level_line(system, run):
    """One console line per level, as the bench goes."""
    line = (
        f"{system:9} {run['users']:3} clients: {created_per_second(run):7.1f}/s created, {errors(run)} errors"
    )
    first = run["calls"].get("create") or run["calls"].get("echo")
    if first:
        line += f", p50/p99 {first['p50_ms']:.0f}/{first['p99_ms']:.0f} ms"
    p50, p99 = mail_quantiles(run)
    if p50 is not None:
        line += f", e-mail p50/p99 {fmt_seconds(p50, run)}/{fmt_seconds(p99, run)}"
    return line


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _by_process(runs, key, fmt):
    """A table of processes (rows) against levels (columns, in `runs`' order)."""
    levels = list(runs)
    names = []
    for users in levels:
        for name in runs[users].get(key, {}):
            if name not in names:
                names.append(name)
    if not names:
        return "(not measured)"
    rows = [[name] + [fmt(runs[users].get(key, {}).get(name)) for users in levels] for name in names]
    return _table(
        ["process"] + [users if isinstance(users, str) else f"{users} clients" for users in levels], rows
    )


def _rss(value):
    return "" if value is None else f"{value:.0f}"


def _cpu(value):
    return "" if value is None else f"{value:.0f}"


def _lat(call):
    return f"{call['p50_ms']:.0f} / {call['p95_ms']:.0f} / {call['p99_ms']:.0f}"


def _profile_section(results):
    run = results.get("profile")
    if not run:
        return ""
    parts = [
        f"## Profile of the network at {run['users']} clients",
        "",
        "A target was missed, so one more level ran with py-spy sampling each service process and "
        f"each gateway worker (without pausing them; the level's own numbers: "
        f"{created_per_second(run):.0f} created/s, {errors(run)} errors, not counted above). "
        "Shares are of the samples py-spy took of that process while it was busy "
        "(idle waiting is left out, but time spent runnable and waiting for a core is not: on a busy "
        "machine it gathers on the frames that wake another process, socket sends and log writes); "
        "*self* is the innermost frame, *own code* any frame of "
        "services/, gateway/ or shared/ on the stack.",
        "",
        "CPU during that level (% of one core):",
        "",
        _by_process({run["users"]: run}, "cpu_percent", _cpu),
    ]
    for name, found in run.get("profiles", {}).items():
        parts += ["", f"### {name}", "", f"`{found['command']}` ({found['samples']} samples)", ""]
        if found.get("error"):
            parts += [f"py-spy wrote no profile: {found['error']}"]
            continue
        rows = [[f"{share:.0%}", f"`{frame}`"] for frame, share in found["self"]]
        parts += ["Top frames by self time:", "", _table(["share", "frame"], rows), ""]
        rows = [[f"{share:.0%}", f"`{frame}`"] for frame, share in found["own"]]
        parts += ["Top frames of the project's own code (inclusive):", "", _table(["share", "frame"], rows)]
    return "\n".join(parts)


def render(results):
    levels = results["levels"]
    network, echo, monolith, same = (
        _users(levels.get(name)) for name in ("network", "echo", "monolith", "monolith-journey")
    )
    machine, settings = results["machine"], results["settings"]
    machine_rows = [
        ("CPU", f"{machine['cpu_model']}, {machine['nproc']} cores (nproc)"),
        ("memory", f"{machine['memory_gib']:.1f} GiB"),
        ("kernel", machine["kernel"]),
        ("Python", machine["python"]),
        ("PostgreSQL", machine["postgresql"]),
        ("RabbitMQ", f"{machine['rabbitmq']} (Erlang {machine['erlang']})"),
        ("code", f"commit {machine['commit']}"),
        ("load average before the run", " / ".join(f"{x:.2f}" for x in machine["load_average_before"])),
        (
            "run",
            f"{results['started']} to {results['finished']}, {settings['seconds']:g} s measured "
            f"per level after {settings['warmup']:g} s warm-up",
        ),
        ("gateway", f"{settings['workers']} gunicorn workers x {settings['threads']} threads"),
    ]
    creates = {f"{users}, creates only": run for users, run in _users(levels.get("network-create")).items()}
    network_rows, call_rows, error_lines = _journey_rows(
        dict(sorted(network.items()), **creates),
        lambda run: [
            _ms(cpu_ms_per_op(run)),
            _ms(cpu_ms_per_op(run, servers=True)),
            _bound(run, machine["nproc"]),
        ],
    )

    def versus(run):
        net = network.get(run["users"])
        own, other = (cpu_ms_all(net) if net else None), cpu_ms_all(run)
        rate = created_per_second(run)
        return [
            _ms(cpu_ms_per_op(run)),
            _ms(cpu_ms_per_op(run, servers=True)),
            f"{created_per_second(net) / rate:.2f}" if net and rate else "",
            f"{own / other:.2f}" if own and other else "",
        ]

    journey_rows, journey_call_rows, journey_errors = _journey_rows(dict(sorted(same.items())), versus)
    error_lines += [line.replace("- ", "- same-work monolith, ", 1) for line in journey_errors]
    baseline_rows = []
    for users in sorted(set(network) | set(echo) | set(monolith)):
        row = [users]
        net = network.get(users)
        rate = created_per_second(net) if net else None
        row.append(f"{rate:.1f}" if rate is not None else "")
        for base, name in ((echo.get(users), "echo"), (monolith.get(users), "create")):
            if base:
                base_rate = created_per_second(base)
                row += [
                    f"{base_rate:.0f}",
                    _lat(base["calls"][name]),
                    errors(base),
                    f"{_ms(cpu_ms_per_op(base))}; {_ms(cpu_ms_per_op(base, servers=True))}",
                    f"{rate / base_rate:.2f}" if rate is not None and base_rate else "",
                ]
            else:
                row += ["", "", "", "", ""]
        baseline_rows.append(row)
    first_echo = echo.get(min(echo)) if echo else None
    check = first_echo.get("cooperation") if first_echo else None
    cooperation = (
        (
            "Check that nameko's standalone proxy cooperates under gevent: "
            f"{check['calls']} concurrent calls that each sleep {check['seconds_each']} s "
            f"in the echo service took {check['took']:.2f} s in all "
            f"({'they overlap' if check['overlapped'] else 'they did NOT overlap'})."
        )
        if check
        else ""
    )
    baselines = {
        **{f"echo {u}": r for u, r in echo.items()},
        **{f"monolith {u}": r for u, r in monolith.items()},
    }
    target_rows = [
        "| " + " | ".join([name, got, "yes" if met else "**no**", monolith_got]) + " |"
        for name, got, met, monolith_got in targets(results)
    ]
    return TEMPLATE.substitute(
        started=results["started"],
        locust=results.get("locust_version", ""),
        warmup=f"{settings['warmup']:g}",
        flow=settings.get("flow", "journey"),
        create_level=(
            f"{settings['create_level']} clients"
            if settings.get("create_level")
            else "not in this run: BENCH_CREATE_LEVEL=0"
        ),
        journey_rows="\n".join("| " + " | ".join(str(c) for c in row) + " |" for row in journey_rows)
        or "| (not in this run) |",
        journey_call_rows="\n".join(
            "| " + " | ".join(str(c) for c in row) + " |" for row in journey_call_rows
        ),
        journey_rss=_by_process(dict(sorted(same.items())), "rss_mb", _rss),
        journey_cpu=_by_process(dict(sorted(same.items())), "cpu_percent", _cpu),
        seconds=f"{settings['seconds']:g}",
        agencies=settings["agencies"],
        workers=settings["workers"],
        threads=settings["threads"],
        nproc=machine["nproc"],
        nproc00=machine["nproc"] * 100,
        mb=MB,
        machine_rows="\n".join(f"| {name} | {value} |" for name, value in machine_rows),
        note=" ".join(
            filter(
                None,
                ["Conditions: " + results["note"] if results.get("note") else "", *results.get("notes", [])],
            )
        ),
        target_users=TARGET_USERS,
        target_rows="\n".join(target_rows) or "| (no network level at 32 clients) | | | |",
        network_rows="\n".join("| " + " | ".join(str(c) for c in row) + " |" for row in network_rows),
        call_rows="\n".join("| " + " | ".join(str(c) for c in row) + " |" for row in call_rows),
        error_rows=("Errors:\n\n" + "\n".join(error_lines)) if error_lines else "No call failed.",
        network_rss=_by_process(dict(sorted(network.items()), **creates), "rss_mb", _rss),
        network_cpu=_by_process(dict(sorted(network.items()), **creates), "cpu_percent", _cpu),
        baseline_rows="\n".join("| " + " | ".join(str(c) for c in row) + " |" for row in baseline_rows),
        cooperation=cooperation,
        baseline_rss=_by_process_flat(baselines, "rss_mb", _rss),
        baseline_cpu=_by_process_flat(baselines, "cpu_percent", _cpu),
        profile=_profile_section(results),
    )


def _journey_rows(runs, cpu_cells):
    """The rows of a journey system's tables: one per level of `runs`
    (label -> run) with `cpu_cells(run)` at its end, its calls' latencies,
    and its errors."""
    rows, call_rows, error_lines = [], [], []
    for users, run in runs.items():
        p50, p99 = mail_quantiles(run)
        mail = run.get("mail")
        arrived = f"{mail['expected'] - mail['missing']} of {mail['expected']}" if mail else "n/a"
        calls_per_second = sum(call["per_second"] for call in run["calls"].values())
        rows.append(
            [
                users,
                f"{created_per_second(run):.1f}",
                f"{calls_per_second:.0f}",
                errors(run),
                fmt_seconds(p50, run),
                fmt_seconds(p99, run),
                arrived,
                *cpu_cells(run),
            ]
        )
        for name in CALLS:
            call = run["calls"].get(name)
            if call:
                call_rows.append(
                    [
                        users,
                        name,
                        call["requests"],
                        f"{call['p50_ms']:.0f}",
                        f"{call['p95_ms']:.0f}",
                        f"{call['p99_ms']:.0f}",
                        call["failures"],
                    ]
                )
        for error in run.get("errors", []):
            error_lines.append(f"- {users} clients, {error['call']}: {error['count']} x `{error['error']}`")
    return rows, call_rows, error_lines


def _by_process_flat(runs, key, fmt):
    """Rows: level; columns: that level's processes (they differ per system)."""
    if not runs:
        return "(not measured)"
    rows = []
    for label, run in runs.items():
        cells = ", ".join(f"{name} {fmt(value)}" for name, value in run.get(key, {}).items())
        rows.append([label, cells])
    return _table(["level", "processes"], rows)


def plot(results, path):
    """Throughput and p99 against clients: the network, the same-work
    monolith, the create-only monolith and the echo ceiling, with issue 15's
    targets (half the same-work monolith's journeys/s; p99 of every call)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = results["levels"]
    series = [  # label, system, colour, style
        ("network: journeys/s", "network", "tab:blue", "-"),
        ("same-work monolith: journeys/s", "monolith-journey", "tab:red", "-"),
        ("monolith: creates/s", "monolith", "tab:orange", "-."),
        ("ceiling: echo calls/s", "echo", "tab:green", "--"),
    ]
    figure, (rate_axes, p99_axes) = plt.subplots(1, 2, figsize=(11, 4.2))
    ticks = sorted(
        {
            int(u)
            for system in ("network", "monolith-journey", "monolith", "echo")
            for u in levels.get(system) or {}
        }
    )
    for label, system, colour, style in series:
        runs = _users(levels.get(system))
        if not runs:
            continue
        users = sorted(runs)
        if system == "network" and results["settings"].get("flow") == "create":
            label = "network: creates/s"
        rate_axes.plot(
            users, [created_per_second(runs[u]) for u in users], style, marker="o", color=colour, label=label
        )
        p99_axes.plot(
            users,
            [worst_call(runs[u])[1] for u in users],
            style,
            marker="o",
            color=colour,
            label=label.split(":")[0]
            + (": p99 of its slowest call" if system in ("network", "monolith-journey") else ": p99"),
        )
        if system == "monolith-journey":
            rate_axes.plot(
                users,
                [created_per_second(runs[u]) / 2 for u in users],
                ":",
                color="grey",
                label="target: half the same-work monolith's journeys/s",
            )
    for users, bound in ((8, 150), (TARGET_USERS, 400)):
        p99_axes.plot([users], [bound], "v", color="grey", markersize=7)
        p99_axes.annotate(
            f"target {bound} ms",
            (users, bound),
            fontsize=7,
            color="grey",
            xytext=(4, 4),
            textcoords="offset points",
        )
    for axes, title, ylabel in (
        (rate_axes, "Throughput", "per second (log scale)"),
        (p99_axes, "p99 latency", "ms (log scale)"),
    ):
        axes.set_xscale("log", base=2)
        if ticks:
            axes.set_xticks(ticks, [str(t) for t in ticks])
        axes.set_xlabel("concurrent clients")
        axes.set_ylabel(ylabel)
        axes.set_title(title)
        axes.grid(True, alpha=0.3)
        axes.set_yscale("log")
        if axes.get_legend_handles_labels()[0]:
            axes.legend(fontsize=7, loc="best")
    figure.suptitle(f"make bench, {results['started']} ({results['machine']['nproc']} cores)", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write(results, docs):
    docs = pathlib.Path(docs)
    docs.mkdir(exist_ok=True)
    (docs / "benchmarks.md").write_text(render(results))
    plot(results, docs / "benchmarks.png")


if __name__ == "__main__":
    write(
        json.loads(pathlib.Path(sys.argv[1]).read_text()),
        pathlib.Path(__file__).resolve().parent.parent / "docs",
    )
