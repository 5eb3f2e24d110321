"""The services' queues: quorum queues (replicated when RabbitMQ runs as a
cluster), and a dead-letter queue per service for the messages that failed
too often.

A message a handler keeps failing on (a payload no schema loads, a bug) is
requeued and tried again, DELIVERY_LIMIT times at most: then the broker
moves it to `dead-letters.<service>` (quorum queues' `x-delivery-limit`
with the `dead-letters` exchange), where `python -m shared.dead_letters`
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


def dead_letter_queue_name(service):
    return f"dead-letters.{service}"


def arguments(config, queue_name):
    """The arguments a service queue is declared with."""
    if config.get("QUEUE_TYPE", "quorum") != "quorum":
        return {}
    return {
        "x-queue-type": "quorum",
        "x-delivery-limit": int(config.get("DELIVERY_LIMIT", 5)),
        "x-dead-letter-exchange": DEAD_LETTERS.name,
        "x-dead-letter-routing-key": queue_name,
    }


def dead_letter_queue(config, service, queue_names):
    """The service's dead-letter queue, bound for each of its queues."""
    kind = {"x-queue-type": "quorum"} if config.get("QUEUE_TYPE", "quorum") == "quorum" else {}
    return Queue(dead_letter_queue_name(service), durable=True, queue_arguments=kind,
                 bindings=[binding(DEAD_LETTERS, routing_key=name) for name in sorted(queue_names)])


def service_queues(service_cls):
    """(queue name, exchange name, routing key) of each queue nameko declares
    for the service: its RPC queue and one per event handler."""
    from nameko.events import EventHandler
    from nameko.rpc import Rpc

    found = set()
    for method_name, method in inspect.getmembers(service_cls, inspect.isfunction):
        for entrypoint in getattr(method, "nameko_entrypoints", ()):
            if isinstance(entrypoint, Rpc):
                found.add((f"rpc-{service_cls.name}", "nameko-rpc", f"{service_cls.name}.*"))
            elif isinstance(entrypoint, EventHandler):
                found.add((f"evt-{entrypoint.source_service}-{entrypoint.event_type}--{service_cls.name}."
                           f"{method_name}", f"{entrypoint.source_service}.events", entrypoint.event_type))
    return sorted(found)


def ensure(connection, config, service_cls):
    """Declare every queue of the service as `arguments` says, with its
    dead-letter queue. A queue already there with other arguments (a classic
    queue from before, another delivery limit) cannot be changed in place: its
    messages are moved to a queue of the new kind under the same name, none
    lost. Run before the service starts (make run's and compose's preflight):
    a publisher meanwhile finds no queue bound, and the outbox keeps its events."""
    wanted = service_queues(service_cls)
    for name, exchange, routing_key in wanted:
        queue = Queue(name, Exchange(exchange, type="topic", durable=True), routing_key=routing_key,
                      durable=True, queue_arguments=arguments(config, name))
        try:
            queue(connection.channel()).declare()
        except PreconditionFailed:
            moved = _recreate(connection, queue)
            log.warning("queue %s made again with %s (%d message(s) kept)", name,
                        queue.queue_arguments or "classic arguments", moved)
    if arguments(config, "-"):
        dead_letter_queue(config, service_cls.name, [name for name, _, _ in wanted])(connection.channel()).declare()


def _recreate(connection, queue):
    holding = Queue(f"{queue.name}.moving", durable=True, queue_arguments={"x-queue-type": "quorum"})
    holding(connection.channel()).declare()
    moved = _move(connection, queue.name, holding.name)
    connection.channel().queue_delete(queue.name)
    queue(connection.channel()).declare()
    _move(connection, holding.name, queue.name)
    connection.channel().queue_delete(holding.name)
    return moved


def _move(connection, source, target):
    """Every message of `source` into `target`, each acked only once the
    broker confirmed its copy."""
    channel = connection.channel()
    channel.confirm_select()
    moved = 0
    while True:
        message = channel.basic_get(source, no_ack=False)
        if message is None:
            return moved
        channel.basic_publish(message, exchange="", routing_key=target)  # waits for the confirm
        channel.basic_ack(message.delivery_tag)
        moved += 1
