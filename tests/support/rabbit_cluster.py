"""A RabbitMQ cluster of three nodes of its own, on this machine.

`with RabbitCluster() as cluster:` starts three `rabbitmq-server` nodes
(rn1@localhost, rn2@localhost, rn3@localhost) on free ports, joins rn2 and
rn3 to rn1 with `rabbitmqctl join_cluster`, and waits until all three run
as one cluster; on leaving (a failure too) it stops them and removes their
directories. Each node keeps its data, logs, pid file, configuration and an
empty plugin list under one temporary directory, and the nodes share an
Erlang cookie of their own (in that directory, used as HOME by the server
and by rabbitmqctl alike): the machine's own node (rabbit@localhost) cannot
be reached with it, so nothing here can stop, join or reset that node.

The scripts are called as /usr/lib/rabbitmq/bin has them (RABBITMQ_SBIN
overrides): Debian's /usr/sbin wrappers would run them as the rabbitmq
user, with that user's cookie and home.
"""

import contextlib
import json
import os
import pathlib
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

from tests.support.sinks import free_port

SBIN = pathlib.Path(os.environ.get("RABBITMQ_SBIN", "/usr/lib/rabbitmq/bin"))
DIRECTORY_PREFIX = "rabbit-cluster-"  # what marks a node of this harness's in a process's command line
CTL_TIMEOUT = 120


class ClusterUnavailable(RuntimeError):
    """The nodes did not start or form one cluster, or none answers."""


class Node:
    def __init__(self, number, home):
        self.name = f"rn{number}@localhost"
        self.port = free_port()  # AMQP
        self.dist_port = free_port()  # Erlang distribution
        self.home = home
        self.pid_file = home / f"rn{number}.pid"

    def uri(self, vhost="/", user="guest", password="guest"):
        return f"amqp://{user}:{password}@localhost:{self.port}/{'' if vhost == '/' else vhost}"

    def environment(self):
        conf = self.home / f"{self.name}.conf"
        conf.write_text(
            f"listeners.tcp.1 = 127.0.0.1:{self.port}\nlog.file.level = warning\nlog.console = false\n"
        )
        return dict(
            os.environ,
            HOME=str(self.home),
            RABBITMQ_NODENAME=self.name,
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_CONFIG_FILE=str(conf.with_suffix("")),  # rabbitmq-server adds .conf
            RABBITMQ_CONF_ENV_FILE=str(self.home / "rabbitmq-env.conf"),  # not the machine's own
            RABBITMQ_MNESIA_BASE=str(self.home / "mnesia"),
            RABBITMQ_LOG_BASE=str(self.home / "log"),
            RABBITMQ_PID_FILE=str(self.pid_file),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(self.home / "enabled_plugins"),
        )

    def pid(self):
        try:
            return int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None


class RabbitCluster:
    def __init__(self, size=3):
        self.home = pathlib.Path(tempfile.mkdtemp(prefix=DIRECTORY_PREFIX))
        cookie = self.home / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(20).upper())
        cookie.chmod(0o400)
        (self.home / "enabled_plugins").write_text("[].\n")
        (self.home / "rabbitmq-env.conf").write_text("")
        self.nodes = [Node(number, self.home) for number in range(1, size + 1)]

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    # -- rabbitmqctl

    def ctl(self, node, *args, timeout=CTL_TIMEOUT, check=True):
        """`rabbitmqctl -n <node> args...`; its standard output."""
        node = node.name if isinstance(node, Node) else node
        done = subprocess.run(
            [str(SBIN / "rabbitmqctl"), "-n", node, *args],
            env=dict(os.environ, HOME=str(self.home)),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and done.returncode:
            raise subprocess.CalledProcessError(done.returncode, done.args, done.stdout, done.stderr)
        return done.stdout

    def ctl_json(self, node, *args):
        return json.loads(self.ctl(node, *args, "--formatter", "json", "--quiet") or "null")

    # -- the cluster's life

    def start(self):
        kill_leftovers([node.name for node in self.nodes])
        with ThreadPoolExecutor(len(self.nodes)) as pool:
            list(pool.map(self._start_node, self.nodes))
        first = self.nodes[0]
        for node in self.nodes[1:]:
            self.ctl(node, "stop_app")
            self.ctl(node, "join_cluster", first.name)
            self.ctl(node, "start_app")
        deadline = time.monotonic() + CTL_TIMEOUT
        while sorted(self.running_nodes()) != sorted(node.name for node in self.nodes):
            if time.monotonic() > deadline:
                raise ClusterUnavailable(f"the nodes did not form one cluster: {self.running_nodes()}")
            time.sleep(0.5)

    def _start_node(self, node):
        subprocess.run(
            [str(SBIN / "rabbitmq-server"), "-detached"],
            env=node.environment(),
            cwd=self.home,
            check=True,
            capture_output=True,
            timeout=CTL_TIMEOUT,
        )
        try:
            self.ctl(
                node, "wait", str(node.pid_file), "--timeout", str(CTL_TIMEOUT), timeout=CTL_TIMEOUT + 10
            )
        except subprocess.SubprocessError as error:
            logs = "\n".join(
                path.read_text(errors="replace")[-2000:] for path in (self.home / "log").glob("*")
            )
            raise ClusterUnavailable(f"{node.name} did not start: {error}\n{logs}") from None

    def running_nodes(self, asking=None):
        """The nodes running in the cluster, as `asking` (the first node still up) sees it."""
        for node in [asking] if asking else self.nodes:
            try:
                return self.ctl_json(node, "cluster_status")["running_nodes"]
            except (subprocess.SubprocessError, ValueError, KeyError, TypeError):
                continue
        return []

    def close(self):
        """Stop every node (killing one that does not stop) and remove their directories."""
        with ThreadPoolExecutor(len(self.nodes)) as pool:
            list(pool.map(self._stop_node, self.nodes))
        shutil.rmtree(self.home, ignore_errors=True)

    def _stop_node(self, node):
        pid = node.pid()
        if pid is None:
            return
        with contextlib.suppress(subprocess.SubprocessError):
            self.ctl(node, "stop", str(node.pid_file), timeout=60)
        if _alive(pid) and _is_node_process(pid, node.name):
            os.kill(pid, signal.SIGKILL)

    # -- what a test needs to know

    def node(self, name):
        return next(node for node in self.nodes if node.name == name)

    def amqp_uri(self, vhost="/", first=0):
        """AMQP_URI naming every node (`;` between them), starting at node number `first` (0-based)."""
        order = self.nodes[first:] + self.nodes[:first]
        return ";".join(node.uri(vhost) for node in order)

    def up(self, patience=60):
        """The nodes whose RabbitMQ application runs, as the first node that
        answers says (a node whose application is stopped does not; a busy
        one may answer late: each is asked again for `patience` seconds)."""
        deadline = time.monotonic() + patience
        while True:
            for node in self.nodes:
                running = self.running_nodes(node)
                if running:
                    return [node for node in self.nodes if node.name in running]
            if time.monotonic() > deadline:
                raise ClusterUnavailable("no node of the cluster answers")
            time.sleep(1)

    def queues(self, vhost="/"):
        """Each queue of `vhost`: name, type, leader (quorum queues) and members, as a node still up says."""
        asking = self.up()[0]
        return self.ctl_json(
            asking, "list_queues", "-p", vhost, "name", "type", "leader", "members", "messages"
        )

    def connections_by_node(self):
        """How many client connections each node holds (by the port in each connection's name)."""
        asking = self.up()[0]
        by_port = {str(node.port): node.name for node in self.nodes}
        counts = {}
        for connection in self.ctl_json(asking, "list_connections", "name"):
            port = connection["name"].rsplit(":", 1)[-1].strip()
            counts[by_port.get(port, port)] = counts.get(by_port.get(port, port), 0) + 1
        return counts

    def stop_app(self, node):
        self.ctl(node, "stop_app")

    def start_app(self, node):
        self.ctl(node, "start_app")


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _node_home(pid, name):
    """The directory of process `pid` if it is a node of this harness's
    named `name` (the node's name is in its environment; its home, one of
    this harness's directories, on its command line), else None."""
    try:
        words = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        environment = pathlib.Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    home = pathlib.Path(
        next((words[i + 1] for i, word in enumerate(words[:-1]) if word == b"-home"), b"").decode(
            errors="replace"
        )
    )
    if f"RABBITMQ_NODENAME={name}".encode() in environment and home.name.startswith(DIRECTORY_PREFIX):
        return home
    return None


def _is_node_process(pid, name):
    return _node_home(pid, name) is not None


def kill_leftovers(names):
    """Kill what a previous run that was itself killed left running, and
    remove its directory: a process of a node named one of `names` whose
    home is one of this harness's directories (never another node, never
    another's process)."""
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        homes = [home for home in (_node_home(int(entry.name), name) for name in names) if home]
        if homes:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry.name), signal.SIGKILL)
            shutil.rmtree(homes[0], ignore_errors=True)
