"""The services' queues: quorum queues (replicated when RabbitMQ runs as a
cluster), and a dead-letter queue per service for the messages that failed
too often.

A message a handler keeps failing on (a payload no schema loads, a bug) is
requeued and tried again, DELIVERY_LIMIT times at most: then the broker
moves it to `dead-letters.<service>` (quorum queues' `x-delivery-limit`
with the `dead-letters` exchange), where `python -m shared.commands.dead_letters`
lists it and, once the cause is fixed, replays it. QUEUE_TYPE=classic
keeps RabbitMQ's classic queues (no delivery limit then).

The names are nameko's: `rpc-<service>` for calls, and
`evt-<source>-<event>--<service>.<method>` for each event handler.
"""

import inspect
import logging

from amqp.exceptions import PreconditionFailed
from kombu import Exchange, Queue, binding

log = logging.getLogger(__name__)

DEAD_LETTERS = Exchange("dead-letters", type="direct", durable=True)
DEAD_LETTER_KEY = "x-dead-letter-routing-key"  # what marks a queue whose failures are set aside
QUORUM = {"x-queue-type": "quorum"}


def dead_letter_queue_name(service):
    return f"dead-letters.{service}"


def arguments(config, queue_name, dead_letters=True):
    """The arguments a service queue is declared with: a quorum queue (with
    QUEUE_TYPE=quorum) whose messages, if `dead_letters`, are set aside after
    DELIVERY_LIMIT failed deliveries. RPC queues have no delivery limit: a
    call is never requeued (its failure is its answer)."""
    if config["QUEUE_TYPE"] != "quorum":
        return {}
    if not dead_letters:
        return dict(QUORUM)
    return dict(
        QUORUM,
        **{
            "x-delivery-limit": int(config["DELIVERY_LIMIT"]),
            "x-dead-letter-exchange": DEAD_LETTERS.name,
            DEAD_LETTER_KEY: queue_name,
        },
    )


def dead_letter_queue(service, queue_names):
    """The service's dead-letter queue (quorum), bound for each of its queues."""
    return Queue(
        dead_letter_queue_name(service),
        durable=True,
        queue_arguments=dict(QUORUM),
        bindings=[binding(DEAD_LETTERS, routing_key=name) for name in sorted(queue_names)],
    )


def service_queues(config, service_cls):
    """Each queue nameko declares for the service, as the service declares it
    (its RPC queue, and one per event handler of the pooled kind, the only
    kind the services use), with what it is bound to."""
    from nameko.events import SERVICE_POOL, EventHandler
    from nameko.rpc import Rpc, get_rpc_exchange
    from nameko.standalone.events import get_event_exchange

    found = {}
    for method_name, method in inspect.getmembers(service_cls, inspect.isfunction):
        for entrypoint in getattr(method, "nameko_entrypoints", ()):
            if isinstance(entrypoint, Rpc):
                name = f"rpc-{service_cls.name}"
                found[name] = Queue(
                    name,
                    get_rpc_exchange(config),
                    routing_key=f"{service_cls.name}.*",
                    durable=True,
                    queue_arguments=arguments(config, name, dead_letters=False),
                )
            elif isinstance(entrypoint, EventHandler) and entrypoint.handler_type == SERVICE_POOL:
                name = f"evt-{entrypoint.source_service}-{entrypoint.event_type}--{service_cls.name}.{method_name}"
                transient = getattr(entrypoint, "transient", False)
                found[name] = Queue(
                    name,
                    get_event_exchange(entrypoint.source_service, config),
                    routing_key=entrypoint.event_type,
                    durable=not transient,
                    queue_arguments={} if transient else arguments(config, name),
                )
    return [found[name] for name in sorted(found)]


def ensure(connection, config, service_cls):
    """Declare every queue of the service as the service declares it, with
    its dead-letter queue. A queue already there with other arguments (a
    classic queue from before, another delivery limit) cannot be changed in
    place: it is made again under the same name, its messages moved through
    a holding queue bound as it is (so nothing published meanwhile is lost,
    at worst delivered twice, which consumers recognise by event id). A
    holding queue left by an interrupted run is emptied into its queue first.
    Run before the services start (make run's and compose's preflight)."""
    wanted = service_queues(config, service_cls)
    for queue in wanted:
        try:
            queue(connection.channel()).declare()
        except PreconditionFailed:
            moved = _recreate(connection, queue)
            log.warning(
                "queue %s made again with %s (%d message(s) kept)",
                queue.name,
                queue.queue_arguments or "classic arguments",
                moved,
            )
        _drain_holding(connection, queue)
    dead_lettered = [queue.name for queue in wanted if DEAD_LETTER_KEY in (queue.queue_arguments or {})]
    if dead_lettered:
        dead_letter_queue(service_cls.name, dead_lettered)(connection.channel()).declare()


def _holding(queue):
    return Queue(
        f"{queue.name}.moving",
        queue.exchange,
        routing_key=queue.routing_key,
        durable=True,
        queue_arguments=dict(QUORUM),
    )


def _recreate(connection, queue):
    holding = _holding(queue)
    holding(connection.channel()).declare()  # bound: takes what is published meanwhile
    moved = _move(connection, queue.name, holding.name)
    connection.channel().queue_delete(queue.name)
    queue(connection.channel()).declare()
    _drain_holding(connection, queue)
    return moved


def _drain_holding(connection, queue):
    holding = _holding(queue)
    channel = connection.channel()
    try:
        channel.queue_declare(holding.name, passive=True)
    except Exception:
        return  # none: the usual case
    channel = connection.channel()
    channel.queue_unbind(holding.name, queue.exchange.name, queue.routing_key)
    _move(connection, holding.name, queue.name)
    connection.channel().queue_delete(holding.name)


def _move(connection, source, target):
    """Every message of `source` into `target`, each acked only once the
    broker confirmed its copy."""
    channel = connection.channel()
    moved = 0
    while True:
        message = channel.basic_get(source, no_ack=False)
        if message is None:
            return moved
        channel.basic_publish_confirm(message, exchange="", routing_key=target)
        channel.basic_ack(message.delivery_tag)
        moved += 1
