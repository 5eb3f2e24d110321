"""What says that a server (the broker, the database) went away.

Its own module, light on imports, so that the gateway and the commands can
tell a server away from a fault without taking in nameko's consumers.
"""

import socket

from amqp.exceptions import AMQPError
from kombu.exceptions import KombuError
from nameko.exceptions import RemoteError

from shared.contract.errors import DATABASE_AWAY

# What a broker that went away raises on the way out of a message (any
# socket error: only AMQP I/O is guarded with it).
BROKER_AWAY = (OSError, AMQPError, KombuError)
# What says that a server is away, wherever it is raised: a connection
# refused, reset or timed out, a name not resolved, the broker's own errors.
CONNECTION_LOST = (ConnectionError, TimeoutError, socket.gaierror, AMQPError, KombuError)


def server_away(error):
    """Whether `error` says a server (the database, the broker) is away,
    rather than that the work itself is wrong; also when another service
    said so over RPC (its database away, as nameko names the error)."""
    if isinstance(error, RemoteError):
        return error.exc_type in DATABASE_AWAY
    return isinstance(error, CONNECTION_LOST) or type(error).__name__ in DATABASE_AWAY
