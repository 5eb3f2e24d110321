"""A TCP forwarder that can be cut and restored: from the point of view of
whoever connects through it, the server behind it goes down and comes back.

It runs in a process of its own (plain threads, no eventlet: the tests'
process is green, and its hub and a forwarder's sockets do not mix), told
on its standard input: "cut" drops every connection and refuses new ones,
"restore" lets them through again; it answers each once done. `Proxy(host,
port)` starts one and drives it:
    python -m tests.support.proxy_process TARGET_HOST TARGET_PORT LISTEN_PORT
prints "ready" once it listens."""

import contextlib
import pathlib
import socket
import subprocess
import sys
import threading

from tests.support.sinks import free_port

ROOT = pathlib.Path(__file__).resolve().parents[2]


class Proxy:
    """A forwarder process to host:port, listening on `self.port`."""

    def __init__(self, host, port):
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.proxy_process", host, str(port), str(self.port)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout.readline().strip() == "ready"

    def _tell(self, command):
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        assert self.process.stdout.readline().strip() == command  # done

    def cut(self):
        self._tell("cut")

    def restore(self):
        self._tell("restore")

    def close(self):
        self.process.kill()
        self.process.wait()


class Forwarder:
    def __init__(self, target, port):
        self.target = target
        self.up = True
        self.lock = threading.Lock()
        self.sockets = set()
        self.listener = socket.create_server(("127.0.0.1", port))

    def serve(self):
        while True:
            client, _ = self.listener.accept()
            try:
                server = socket.create_connection(self.target, timeout=5)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            with self.lock:  # a cut meanwhile: this connection is refused too
                if not self.up:
                    self.drop_locked(client, server)
                    continue
                self.sockets.update((client, server))
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self.pipe, args=(source, sink), daemon=True).start()

    def pipe(self, source, sink):
        try:
            while True:
                chunk = source.recv(65536)
                if not chunk:
                    break
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            self.drop(source, sink)

    def drop(self, *sockets):
        with self.lock:
            self.drop_locked(*sockets)

    def drop_locked(self, *sockets):
        for sock in sockets:
            self.sockets.discard(sock)
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def cut(self):
        with self.lock:
            self.up = False
            self.drop_locked(*list(self.sockets))

    def restore(self):
        self.up = True


def main():
    host, port, listen = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    forwarder = Forwarder((host, port), listen)
    threading.Thread(target=forwarder.serve, daemon=True).start()
    print("ready", flush=True)
    for line in sys.stdin:  # until the test closes it, or kills this process
        command = line.strip()
        {"cut": forwarder.cut, "restore": forwarder.restore}[command]()
        print(command, flush=True)


if __name__ == "__main__":
    main()
