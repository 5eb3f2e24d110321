"""The messages the services set aside, for an operator.

    python -m shared.commands.dead_letters list [SERVICE]
    python -m shared.commands.dead_letters replay [SERVICE] [--event-id ID]

`list` shows each message of `dead-letters.<service>` (the queue it came
from, its event's id and type, when and how often it failed) and leaves it
there; `replay`, once the cause is fixed, puts each back on the queue it
came from (acking it here only once the broker confirmed the copy), where
the service handles it as new. Events carry ids and statuses, never a
returnee's data, so nothing shown here is personal.
"""

import argparse
import json
import sys

from shared import config
from shared.commands.services import SERVICES
from shared.plumbing import amqp_uri, queues


def _each(channel, service):
    """Every message now in the service's dead-letter queue, unacked."""
    name = queues.dead_letter_queue_name(service)
    try:
        channel.queue_declare(name, passive=True)
    except Exception:
        return
    while True:
        message = channel.basic_get(name, no_ack=False)
        if message is None:
            return
        yield message


def describe(service, message):
    headers = message.headers or {}
    deaths = headers.get("x-death") or [{}]
    try:
        payload = json.loads(message.body)
    except (TypeError, ValueError):
        payload = {}
    payload = payload if isinstance(payload, dict) else {}
    return {
        "service": service,
        "queue": headers.get("x-first-death-queue") or deaths[0].get("queue"),
        "event_id": payload.get("event_id"),
        "event_type": payload.get("event_type") or message.delivery_info.get("routing_key"),
        "reason": headers.get("x-first-death-reason") or deaths[0].get("reason"),
        "deliveries": headers.get("x-delivery-count"),
        "set_aside_at": str(deaths[0].get("time") or ""),
    }


def listing(connection, services):
    found = []
    for service in services:
        channel = connection.channel()
        found += [describe(service, message) for message in _each(channel, service)]
        channel.close()  # unacked: every message stays where it was
    return found


def replay(connection, services, event_id=None):
    """Put the dead letters (those of `event_id` only, if given) back on the
    queues they came from; returns what was replayed."""
    replayed = []
    for service in services:
        channel = connection.channel()
        for message in _each(channel, service):
            described = describe(service, message)
            if (event_id and described["event_id"] != event_id) or not described["queue"]:
                continue
            headers = {
                key: value for key, value in (message.headers or {}).items() if not key.startswith("x-")
            }
            message.properties["application_headers"] = headers
            channel.basic_publish_confirm(message, exchange="", routing_key=described["queue"])
            channel.basic_ack(message.delivery_tag)
            replayed.append(described)
        channel.close()  # those passed over go back to the dead-letter queue
    return replayed


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("action", choices=("list", "replay"))
    parser.add_argument("service", nargs="?", choices=sorted(SERVICES), help="one service (default: all)")
    parser.add_argument("--event-id", help="replay only this event")
    args = parser.parse_args(argv)
    services = [args.service] if args.service else sorted(SERVICES)
    with amqp_uri.connect(config.load()["AMQP_URI"], connect_timeout=5) as connection:
        found = (
            listing(connection, services)
            if args.action == "list"
            else replay(connection, services, args.event_id)
        )
    for each in found:
        print(json.dumps(each, default=str))
    print(f"{len(found)} message(s) {'set aside' if args.action == 'list' else 'replayed'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
