"""Starting and stopping the benchmark's processes, and watching them with
psutil: peak memory (RSS) and CPU of every process of a system under load."""

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time

import psutil


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout, what, interval=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise RuntimeError(f"timed out after {timeout:g} s waiting for {what}")


def port_open(port):
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def start(command, log_path, env=None, cwd=None):
    """`command` in a session (and so a process group) of its own, so that a
    Ctrl-C at the terminal reaches only the orchestrator, which then stops
    everything in order."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def group_alive(pgid):
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def stop(process, timeout=30):
    """SIGTERM to `process` (it stops its own children, as bin/run and
    gunicorn do), then wait for its whole group; SIGKILL to that group,
    which this orchestrator made, only if it did not go in time. True when
    it went by itself."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    try:
        process.wait(timeout=timeout)
        while group_alive(process.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
    except subprocess.TimeoutExpired:
        pass
    if group_alive(process.pid):
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        return False
    return True


def tree(root_pid):
    """The process `root_pid` and all its descendants."""
    try:
        root = psutil.Process(root_pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def servers():
    """RabbitMQ's and PostgreSQL's processes: shared with everyone on the machine."""
    found = {"rabbitmq": [], "postgresql": []}
    for proc in psutil.process_iter(["name"]):
        name = proc.info["name"] or ""
        if name.startswith("beam"):
            found["rabbitmq"].append(proc)
        elif name.startswith("postgres"):
            found["postgresql"].append(proc)
    return found


def machine_busy():
    """Core-seconds the whole machine has spent busy since boot."""
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0)


def _cpu(proc):
    try:
        times = proc.cpu_times()
        return times.user + times.system
    except psutil.NoSuchProcess:
        return None


class Watch:
    """While a level runs: the peak RSS of every process under `root_pid`
    (sampled every `interval` seconds), and the CPU each used, next to
    the load generator's, the SMTP sink's, RabbitMQ's, PostgreSQL's and the
    rest of the machine's (other people's work included)."""

    def __init__(self, root_pid, label, extra=None, interval=0.2):
        self.root_pid = root_pid
        self.label = label  # psutil.Process -> a name like "referrals" or "gateway worker 1"
        self.extra = extra or {}  # name -> pid of processes outside the tree
        self.interval = interval
        self.peak_rss = {}
        self.names = {}
        self.stopping = threading.Event()

    def _sample(self):
        for proc in tree(self.root_pid) if self.root_pid else []:
            try:
                if proc.pid not in self.names:
                    self.names[proc.pid] = self.label(proc, self.names)
                rss = proc.memory_info().rss
            except psutil.NoSuchProcess:
                continue
            name = self.names[proc.pid]
            self.peak_rss[name] = max(self.peak_rss.get(name, 0), rss)

    def _loop(self):
        while not self.stopping.wait(self.interval):
            self._sample()

    def _groups(self):
        groups = {}
        for proc in tree(self.root_pid) if self.root_pid else []:
            if proc.pid not in self.names:
                try:
                    self.names[proc.pid] = self.label(proc, self.names)
                except psutil.NoSuchProcess:
                    continue
            groups.setdefault(self.names[proc.pid], []).append(proc)
        for name, pid in self.extra.items():
            with contextlib.suppress(psutil.NoSuchProcess):
                groups[name] = [psutil.Process(pid)]
        groups.update(servers())
        return groups

    def __enter__(self):
        self._sample()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.thread.join()
        self.rss_mb = {name: rss / 1e6 for name, rss in self.peak_rss.items()}

    def cpu_start(self):
        """The start of the window CPU use is counted over (the measured one)."""
        self.started = time.monotonic()
        self.busy_before = machine_busy()
        self.groups = self._groups()
        self.cpu_before = {proc.pid: _cpu(proc) for procs in self.groups.values() for proc in procs}

    def cpu_end(self):
        """CPU use since `cpu_start`, per process, in % of one core."""
        elapsed = time.monotonic() - self.started
        cpu = {}
        for name, procs in self.groups.items():
            used = 0.0
            for proc in procs:
                before, after = self.cpu_before.get(proc.pid), _cpu(proc)
                if before is not None and after is not None:
                    used += after - before
            cpu[name] = 100 * used / elapsed
        machine = 100 * (machine_busy() - self.busy_before) / elapsed
        cpu["rest of the machine"] = max(0.0, machine - sum(cpu.values()))
        self.cpu_percent = cpu
        self.machine_percent = machine


def network_label(proc, known):
    """Names for the processes bin/run starts: honcho, which forks a honcho
    per Procfile line, each running its command through `sh -c`."""
    cmdline = " ".join(proc.cmdline())
    if proc.name() in ("sh", "dash", "bash"):
        return "sh -c (one per process)"
    if "honcho" in cmdline:
        parent = proc.parent()
        under_honcho = parent is not None and "honcho" in " ".join(parent.cmdline())
        return "honcho (one per process)" if under_honcho else "honcho (bin/run)"
    if "shared.commands.serve" in cmdline:
        return cmdline.split("shared.commands.serve", 1)[1].split()[0]
    if "gunicorn" in cmdline:
        return _gunicorn_label("gateway", proc, known)
    return proc.name()


def monolith_label(proc, known):
    return _gunicorn_label("monolith", proc, known)


def monolith_journey_label(proc, known):
    return _gunicorn_label("monolith-journey", proc, known)


def echo_label(proc, known):
    return "echo service"


def _gunicorn_label(system, proc, known):
    """The master is the gunicorn whose parent is not a gunicorn; workers are
    numbered as first seen."""
    parent = proc.parent()
    if (
        parent is None
        or parent.name() in ("sh", "dash", "bash")
        or "gunicorn" not in " ".join(parent.cmdline())
    ):
        return f"{system} master"
    workers = sum(1 for name in set(known.values()) if name.startswith(f"{system} worker"))
    return f"{system} worker {workers + 1}"
