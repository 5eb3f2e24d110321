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
make bench                          # about 10 minutes: echo, monolith, then the network
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
(echo,monolith,network), `BENCH_FLOW` (`journey`, or `create`), `BENCH_NOTE` (a sentence on the run's conditions,
printed below), `BENCH_KEEP=1` (keep the logs and raw results). With
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
- **ceiling (echo)**: one nameko RPC round trip through the same RabbitMQ to
  a bare nameko service (`bench/echo.py`, default 10 workers and the same
  RPC entrypoint as the network's services, `shared.rpc`: replies without
  publisher confirms), from nameko's standalone `ClusterRpcProxy` (one per
  client) under gevent, timed and reported to locust as request events. The
  payload is the referral body.
- **monolith**: one gunicorn (gthread, $workers workers x $threads threads,
  as the gateway) serving Flask that checks the same body with the same
  schema (`shared.referral_schemas.NewReferral`) and inserts it into a
  PostgreSQL table (SQLAlchemy + psycopg): no broker, no API key check.
  Its clients only create.

The load generator, the SMTP sink, RabbitMQ and PostgreSQL share the
machine's $nproc cores with the system measured, and so does anything else
running on the machine: see the CPU tables, whose last row is everyone
else's use. *CPU ms per referral* (or per call) divides the CPU time the
processes used in the measured window by what they got done: it is bent far
less by other work on the machine than the rates and latencies are. For
the network it covers a referral's whole journey: 5 HTTP calls, the RPC
calls behind them, 4 events, 3 e-mails. RabbitMQ's and PostgreSQL's share
also counts whatever else used them meanwhile. *bound on N free cores* is
N x 1000 ms over the two: the most referrals per second the network could
create at that cost if nothing else (not even the load generator) used the
machine.

## The machine and the run

| | |
|---|---|
$machine_rows

$note

## Targets at $target_users clients

| target | this run | met |
|---|---|---|
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


OUTSIDE = ("load generator (locust)", "orchestrator", "smtp sink", "rabbitmq", "postgresql",
           "rest of the machine")


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
    return "" if own is None else f"{cores * 1000 / (own + (servers or 0)):.0f}/s"


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


def targets(results):
    """[(target, what this run got, met)] for the network at 32 clients."""
    network = _users(results["levels"].get("network"))
    run = network.get(TARGET_USERS)
    if not run:
        return []
    rate = created_per_second(run)
    create_p99 = run["calls"].get("create", {}).get("p99_ms")
    _, mail_p99 = mail_quantiles(run)
    peak = max(run.get("rss_mb", {}).items(), key=lambda item: item[1], default=(None, None))
    found = [
        ("at least 200 referrals created per second", f"{rate:.0f}/s", rate >= 200),
        ("p99 of create under 250 ms", f"{create_p99:.0f} ms" if create_p99 is not None else "n/a",
         create_p99 is not None and create_p99 < 250),
        ("e-mail p99 under 2 s", fmt_seconds(mail_p99, run), mail_p99 is not None and mail_p99 < 2),
        ("no error", f"{errors(run)} errors", errors(run) == 0),
        (f"every process of the network under 150 {MB}",
         f"largest: {peak[0]} {peak[1]:.0f} {MB}" if peak[0] else "n/a",
         peak[0] is not None and peak[1] < 150),
    ]
    echo = _users(results["levels"].get("echo")).get(TARGET_USERS)
    if echo:
        ceiling = created_per_second(echo)
        found.append(("create rate at least 0.4 of the ceiling",
                      f"{rate / ceiling:.2f} ({rate:.0f} / {ceiling:.0f})", rate >= 0.4 * ceiling))
    return found


def summary_lines(results):
    """The console's closing lines: ratios to the baselines and the targets."""
    levels = results["levels"]
    network = _users(levels.get("network"))
    lines = []
    for name, system in (("ceiling (echo)", "echo"), ("monolith", "monolith")):
        base = _users(levels.get(system))
        ratios = [f"{u} clients {created_per_second(network[u]) / created_per_second(base[u]):.3f}"
                  for u in sorted(network) if u in base and created_per_second(base[u])]
        if ratios:
            lines.append(f"network created/s as a ratio of the {name}: " + ", ".join(ratios))
    for name, got, met in targets(results):
        lines.append(f"target at {TARGET_USERS} clients: {name}: {got}: {'met' if met else 'MISSED'}")
    return lines


def level_line(system, run):
    """One console line per level, as the bench goes."""
    line = (f"{system:9} {run['users']:3} clients: {created_per_second(run):7.1f}/s "
            f"created, {errors(run)} errors")
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
    """A table of processes (rows) against levels (columns)."""
    levels = sorted(runs)
    names = []
    for users in levels:
        for name in runs[users].get(key, {}):
            if name not in names:
                names.append(name)
    if not names:
        return "(not measured)"
    rows = [[name] + [fmt(runs[users].get(key, {}).get(name)) for users in levels] for name in names]
    return _table(["process"] + [f"{users} clients" for users in levels], rows)


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
        "(idle waiting is left out); *self* is the innermost frame, *own code* any frame of "
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
    network, echo, monolith = (_users(levels.get(name)) for name in ("network", "echo", "monolith"))
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
        ("run", f"{results['started']} to {results['finished']}, {settings['seconds']:g} s measured "
                f"per level after {settings['warmup']:g} s warm-up"),
        ("gateway", f"{settings['workers']} gunicorn workers x {settings['threads']} threads"),
    ]
    network_rows, call_rows, error_lines = [], [], []
    for users, run in sorted(network.items()):
        p50, p99 = mail_quantiles(run)
        mail = run.get("mail")
        arrived = f"{mail['expected'] - mail['missing']} of {mail['expected']}" if mail else "n/a"
        calls_per_second = sum(call["per_second"] for call in run["calls"].values())
        network_rows.append([users, f"{created_per_second(run):.1f}", f"{calls_per_second:.0f}",
                             errors(run), fmt_seconds(p50, run), fmt_seconds(p99, run), arrived,
                             _ms(cpu_ms_per_op(run)), _ms(cpu_ms_per_op(run, servers=True)),
                             _bound(run, machine["nproc"])])
        for name in CALLS:
            call = run["calls"].get(name)
            if call:
                call_rows.append([users, name, call["requests"], f"{call['p50_ms']:.0f}",
                                  f"{call['p95_ms']:.0f}", f"{call['p99_ms']:.0f}", call["failures"]])
        for error in run.get("errors", []):
            error_lines.append(f"- {users} clients, {error['call']}: {error['count']} x `{error['error']}`")
    baseline_rows = []
    for users in sorted(set(network) | set(echo) | set(monolith)):
        row = [users]
        net = network.get(users)
        rate = created_per_second(net) if net else None
        row.append(f"{rate:.1f}" if rate is not None else "")
        for base, name in ((echo.get(users), "echo"), (monolith.get(users), "create")):
            if base:
                base_rate = created_per_second(base)
                row += [f"{base_rate:.0f}", _lat(base["calls"][name]), errors(base),
                        f"{_ms(cpu_ms_per_op(base))}; {_ms(cpu_ms_per_op(base, servers=True))}",
                        f"{rate / base_rate:.2f}" if rate is not None and base_rate else ""]
            else:
                row += ["", "", "", "", ""]
        baseline_rows.append(row)
    first_echo = echo.get(min(echo)) if echo else None
    check = first_echo.get("cooperation") if first_echo else None
    cooperation = ("Check that nameko's standalone proxy cooperates under gevent: "
                   f"{check['calls']} concurrent calls that each sleep {check['seconds_each']} s "
                   f"in the echo service took {check['took']:.2f} s in all "
                   f"({'they overlap' if check['overlapped'] else 'they did NOT overlap'}).") if check else ""
    baselines = {**{f"echo {u}": r for u, r in echo.items()}, **{f"monolith {u}": r for u, r in monolith.items()}}
    target_rows = ["| " + " | ".join([name, got, "yes" if met else "**no**"]) + " |"
                   for name, got, met in targets(results)]
    return TEMPLATE.substitute(
        started=results["started"],
        locust=results.get("locust_version", ""),
        warmup=f"{settings['warmup']:g}",
        flow=settings.get("flow", "journey"),
        seconds=f"{settings['seconds']:g}",
        agencies=settings["agencies"],
        workers=settings["workers"],
        threads=settings["threads"],
        nproc=machine["nproc"],
        nproc00=machine["nproc"] * 100,
        mb=MB,
        machine_rows="\n".join(f"| {name} | {value} |" for name, value in machine_rows),
        note=" ".join(filter(None, [("Conditions: " + results["note"]) if results.get("note") else ""]
                                + results.get("notes", []))),
        target_users=TARGET_USERS,
        target_rows="\n".join(target_rows) or "| (no network level at 32 clients) | | |",
        network_rows="\n".join("| " + " | ".join(str(c) for c in row) + " |" for row in network_rows),
        call_rows="\n".join("| " + " | ".join(str(c) for c in row) + " |" for row in call_rows),
        error_rows=("Errors:\n\n" + "\n".join(error_lines)) if error_lines else "No call failed.",
        network_rss=_by_process(network, "rss_mb", _rss),
        network_cpu=_by_process(network, "cpu_percent", _cpu),
        baseline_rows="\n".join("| " + " | ".join(str(c) for c in row) + " |" for row in baseline_rows),
        cooperation=cooperation,
        baseline_rss=_by_process_flat(baselines, "rss_mb", _rss),
        baseline_cpu=_by_process_flat(baselines, "cpu_percent", _cpu),
        profile=_profile_section(results),
    )


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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = results["levels"]
    series = [
        ("network: created/s", "network", "create", "tab:blue", "-"),
        ("ceiling: echo calls/s", "echo", "echo", "tab:green", "--"),
        ("monolith: created/s", "monolith", "create", "tab:orange", "-."),
    ]
    figure, (rate_axes, p99_axes) = plt.subplots(1, 2, figsize=(11, 4.2))
    for label, system, call, colour, style in series:
        runs = _users(levels.get(system))
        if not runs:
            continue
        users = sorted(runs)
        rate_axes.plot(users, [created_per_second(runs[u]) for u in users], style, marker="o",
                       color=colour, label=label)
        p99_axes.plot(users, [runs[u]["calls"][call]["p99_ms"] for u in users], style, marker="o",
                      color=colour, label=label.split(":")[0] + f": {call} p99")
    network = _users(levels.get("network"))
    if network:
        users = sorted(network)
        rate_axes.plot(users, [sum(c["per_second"] for c in network[u]["calls"].values()) for u in users],
                       ":", marker="s", color="tab:blue", alpha=0.6, label="network: all calls/s")
    for axes, title, ylabel in ((rate_axes, "Throughput", "per second (log scale)"),
                                (p99_axes, "p99 latency", "ms (log scale)")):
        axes.set_xscale("log", base=2)
        ticks = sorted({int(u) for runs in levels.values() for u in runs})
        axes.set_xticks(ticks, [str(t) for t in ticks])
        axes.set_xlabel("concurrent clients")
        axes.set_ylabel(ylabel)
        axes.set_title(title)
        axes.grid(True, alpha=0.3)
        axes.legend(fontsize=7, loc="best")
    rate_axes.axhline(200, color="grey", linewidth=0.8, linestyle=":")
    rate_axes.annotate("target: 200 created/s", (min(ticks), 200), fontsize=7, color="grey",
                       xytext=(0, 3), textcoords="offset points")
    p99_axes.axhline(250, color="grey", linewidth=0.8, linestyle=":")
    p99_axes.annotate("target: create p99 250 ms", (min(ticks), 250), fontsize=7, color="grey",
                      xytext=(0, 3), textcoords="offset points")
    rate_axes.set_yscale("log")
    p99_axes.set_yscale("log")
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
    write(json.loads(pathlib.Path(sys.argv[1]).read_text()), pathlib.Path(__file__).resolve().parent.parent / "docs")
