"""Errors that cross the RPC boundary.

nameko sends a raised exception to the caller by its import path; registering
each with `deserialize_to_instance` makes the caller raise the same class with
the same arguments, so the gateway can map it to an HTTP problem.
"""

from nameko.exceptions import deserialize_to_instance


class ServiceError(Exception):
    """Base of the errors a service raises on purpose."""

    status = 500
    title = "Internal error"

    def __init__(self, detail, errors=None):
        # Only what is there goes into args: nameko sends args across RPC as
        # strings where they are not JSON (None would arrive as "None").
        super().__init__(detail, *([errors] if errors else []))
        self.detail = detail
        self.errors = errors or None


@deserialize_to_instance
class InvalidInput(ServiceError):
    """A value is not acceptable; `errors` maps field paths to messages."""

    status = 422
    title = "Unprocessable content"


@deserialize_to_instance
class NotFound(ServiceError):
    status = 404
    title = "Not found"


@deserialize_to_instance
class Forbidden(ServiceError):
    status = 403
    title = "Forbidden"


@deserialize_to_instance
class Conflict(ServiceError):
    status = 409
    title = "Conflict"


@deserialize_to_instance
class Unavailable(ServiceError):
    """The change is made, but could not yet be announced; asking again
    finishes it."""

    status = 503
    title = "Service unavailable"


EXPECTED = (InvalidInput, NotFound, Forbidden, Conflict, Unavailable)


# What a service raises when its database is away, by the names nameko
# gives exceptions across RPC (SQLAlchemy's and its pool's): worth trying
# again later, never a 500.
DATABASE_AWAY = frozenset({"OperationalError", "InterfaceError", "DisconnectionError", "TimeoutError"})
