"""AMQP_URI: one RabbitMQ node, or the nodes of a cluster separated by `;`.

    AMQP_URI=amqp://guest:guest@rabbit-1:5672/;amqp://guest:guest@rabbit-2:5672/;amqp://guest:guest@rabbit-3:5672/

This is kombu's own form: a kombu `Connection` made from it connects to the
first node and, when that one refuses or drops the connection, to the next
(round robin). nameko's consumers, publishers and standalone RPC proxy hand
the setting to kombu as it is, so they fail over with no code of ours; the
connections this project opens itself go through `connect`, which tries
every node once before it gives up. Each node's URL names its user,
password and vhost, the same on every node of a cluster.
"""

from urllib.parse import urlsplit

from kombu import Connection

SEPARATOR = ";"


def nodes(uri):
    """The URL of each node, in order."""
    found = [part.strip() for part in uri.split(SEPARATOR) if part.strip()]
    if not found:
        raise ValueError("AMQP_URI names no RabbitMQ node")
    return found


def normalised(uri):
    """`uri` as kombu wants it: the nodes' URLs with no blanks around them."""
    return SEPARATOR.join(nodes(uri))


def rotated(uri, first):
    """The same nodes, starting at the `first`-th (0-based, wrapping): a
    process given its own rotation connects first to a node of its own."""
    listed = nodes(uri)
    first %= len(listed)
    return SEPARATOR.join(listed[first:] + listed[:first])


def with_vhost(uri, vhost):
    """The same nodes, each with `vhost` as its virtual host."""
    return SEPARATOR.join(
        urlsplit(node)._replace(path="/" + vhost.lstrip("/")).geturl() for node in nodes(uri)
    )


def vhost(uri):
    """The virtual host (the first node's; a cluster's nodes share it)."""
    path = urlsplit(nodes(uri)[0]).path
    return path[1:] if len(path) > 1 else "/"


def safe(uri):
    """`uri` with every node's password hidden, for a message or a log line."""
    shown = []
    for node in nodes(uri):
        parts = urlsplit(node)
        if parts.password is not None:
            parts = parts._replace(netloc=f"{parts.username}:***@{parts.netloc.rsplit('@', 1)[-1]}")
        shown.append(parts.geturl())
    return SEPARATOR.join(shown)


def connect(uri, **options):
    """A kombu connection, connected: each node is tried once, in order,
    and the last one's error raised if none answers (kombu's own
    `Connection.channel()` tries two nodes only)."""
    connection = Connection(normalised(uri), **options)
    try:
        connection.ensure_connection(max_retries=len(nodes(uri)) - 1)
    except Exception:
        connection.release()
        raise
    return connection
