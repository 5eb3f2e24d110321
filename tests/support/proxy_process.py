"""A TCP forwarder in a process of its own (plain threads, no eventlet), cut
and restored by signals: SIGUSR1 drops every connection and refuses new
ones, SIGUSR2 lets them through again. For tests whose own process is green:
    python -m tests.support.proxy_process TARGET_HOST TARGET_PORT LISTEN_PORT
It prints "ready" once it listens."""
import signal
import socket
import sys
import threading


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
            if not self.up:
                client.close()
                continue
            try:
                server = socket.create_connection(self.target, timeout=5)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            with self.lock:
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
        for sock in sockets:
            with self.lock:
                self.sockets.discard(sock)
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def cut(self, *_):
        self.up = False
        with self.lock:
            every = list(self.sockets)
        self.drop(*every)

    def restore(self, *_):
        self.up = True


def main():
    host, port, listen = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    forwarder = Forwarder((host, port), listen)
    signal.signal(signal.SIGUSR1, forwarder.cut)
    signal.signal(signal.SIGUSR2, forwarder.restore)
    print("ready", flush=True)
    forwarder.serve()


if __name__ == "__main__":
    main()
