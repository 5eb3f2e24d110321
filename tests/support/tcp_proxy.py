"""A TCP forwarder that can be cut and restored: from the point of view of
whoever connects through it, the server behind it goes down and comes back."""
import eventlet
from eventlet.green import socket


class TcpProxy:
    def __init__(self, target_host, target_port):
        self.target = (target_host, target_port)
        self.listener = eventlet.listen(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.up = True
        self.sockets = set()
        self.pipes = set()
        self.acceptor = eventlet.spawn(self._accept)

    def _accept(self):
        while True:
            client, _ = self.listener.accept()
            if not self.up:
                client.close()
                continue
            try:
                server = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            self.sockets.update((client, server))
            self.pipes.update((eventlet.spawn(self._pipe, client, server),
                               eventlet.spawn(self._pipe, server, client)))

    def _pipe(self, source, sink):
        try:
            while True:
                chunk = source.recv(65536)
                if not chunk:
                    break
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                self._close(sock)

    def _close(self, sock):
        self.sockets.discard(sock)
        try:
            sock.close()
        except OSError:
            pass

    def cut(self):
        """Drop every connection and refuse new ones."""
        self.up = False
        # Stop the readers before closing their sockets, so that no green
        # thread is left waiting on a file descriptor the system may reuse.
        for pipe in list(self.pipes):
            pipe.kill()
        self.pipes.clear()
        for sock in list(self.sockets):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._close(sock)

    def restore(self):
        self.up = True

    def close(self):
        self.cut()
        self.acceptor.kill()
        self.listener.close()
