"""A pooled, thread-safe RPC client for the gateway's request threads.

nameko's standalone `ClusterRpcProxy` holds one connection and one reply
queue and serves one thread at a time, so the pool lends each request thread
a proxy of its own and takes it back afterwards. A proxy whose connection
broke (a broker restart) is dropped, and the next request gets a fresh one:
the gateway outlives the broker without being restarted.

Each proxy keeps its worker context data in a dict of the pool's own, which
the borrower fills before its calls (the request id): nameko sends that data
as AMQP headers with every call the proxy makes.
"""

import contextlib
import logging
import queue
import threading

from nameko.exceptions import RemoteError, RpcTimeout, UnknownService
from nameko.standalone.rpc import ClusterRpcProxy

from shared.contract.errors import (
    DATABASE_AWAY,  # (importing shared.contract.errors registers the errors that cross RPC)
)
from shared.plumbing.away import BROKER_AWAY

log = logging.getLogger(__name__)


class ServiceUnavailable(Exception):
    """A service or the broker did not answer in time."""


class BrokerUnavailable(ServiceUnavailable):
    """RabbitMQ itself cannot be reached."""


class ServiceTimeout(ServiceUnavailable):
    """A service did not answer within the timeout (it may be down or stuck)."""


class RpcPool:
    def __init__(self, config, timeout, size=16):
        self.config = {"AMQP_URI": config["AMQP_URI"]}
        self.timeout = timeout
        self.idle = queue.LifoQueue()
        self.size = size
        self.lock = threading.Lock()
        self.created = 0

    def _new(self):
        context = {}  # nameko keeps this very dict as the proxy's context data
        holder = ClusterRpcProxy(self.config, context_data=context, timeout=self.timeout)
        return holder, holder.start(), context

    def _take(self):
        try:
            return self.idle.get_nowait()
        except queue.Empty:
            pass
        with self.lock:
            grow = self.created < self.size
            if grow:
                self.created += 1
        if not grow:
            return self.idle.get()
        try:
            return self._new()
        except Exception:
            with self.lock:
                self.created -= 1
            raise

    def _drop(self, entry):
        with self.lock:
            self.created -= 1
        with contextlib.suppress(Exception):
            entry[0].stop()

    @contextlib.contextmanager
    def proxy(self, context_data=None):
        """`with pool.proxy({"request_id": ...}) as rpc: rpc.agencies.get_agency(...)`:
        every call made through `rpc` carries `context_data`."""
        try:
            entry = self._take()
        except Exception as error:
            log.warning("cannot reach RabbitMQ: %s", error)
            raise BrokerUnavailable("The message broker is not reachable.") from None
        context = entry[2]
        context.clear()  # nothing of the previous borrower's request
        context.update(context_data or {})
        try:
            yield entry[1]
        except UnknownService as error:
            self.idle.put(entry)
            raise ServiceUnavailable(f"The {error.args[0]} service is not running.") from None
        except RemoteError as error:
            self.idle.put(entry)
            if error.exc_type in DATABASE_AWAY:
                log.warning("a service cannot reach its database: %s", error.exc_type)
                raise ServiceUnavailable(
                    "A service cannot reach its database just now; try again soon."
                ) from None
            raise
        except RpcTimeout:
            self._drop(entry)  # a late reply would confuse the next borrower
            raise ServiceTimeout(f"A service did not answer within {self.timeout:g} s.") from None
        except BROKER_AWAY as error:
            self._drop(entry)
            log.warning("RPC connection lost: %s", error)
            raise BrokerUnavailable("The message broker is not reachable.") from None
        except BaseException:
            self.idle.put(entry)
            raise
        else:
            self.idle.put(entry)

    def close(self):
        while True:
            try:
                entry = self.idle.get_nowait()
            except queue.Empty:
                return
            self._drop(entry)
