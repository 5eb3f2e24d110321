"""One POST of a webhook delivery, to the address `endpoints.check` found
allowed, with no redirect followed and at most 1 KB of the answer read."""

import contextlib
import dataclasses
import datetime
import email.utils

import eventlet
import urllib3

ANSWER_BYTES = 1024  # of the answer's body: enough to say why, never a whole page
EXCERPT_SECONDS = 1.0  # the most spent reading it: the status line alone decides


class Unreachable(Exception):
    """No answer: refused, reset, timed out, bad TLS. Worth trying again."""


@dataclasses.dataclass(frozen=True)
class Answer:
    status: int
    retry_after: str | None
    excerpt: str  # the start of the body, for the delivery log's last_error


def _host_header(endpoint):
    host = f"[{endpoint.host}]" if ":" in endpoint.host else endpoint.host
    default = 443 if endpoint.scheme == "https" else 80
    return host if endpoint.port == default else f"{host}:{endpoint.port}"


def _pool(endpoint, timeout, ca_file):
    """A one-connection pool to the checked address: the TLS server name and
    certificate check are the URL's host's, the socket goes to `address`."""
    options = {
        "port": endpoint.port,
        "maxsize": 1,
        "retries": False,
        "timeout": urllib3.Timeout(connect=timeout, read=timeout),
    }
    if endpoint.scheme == "https":
        return urllib3.HTTPSConnectionPool(
            endpoint.address,
            server_hostname=endpoint.host,
            assert_hostname=endpoint.host,
            cert_reqs="CERT_REQUIRED",
            ca_certs=ca_file or None,
            **options,
        )
    return urllib3.HTTPConnectionPool(endpoint.address, **options)


def post(endpoint, body, headers, timeout, ca_file=None):
    """The `Answer` of POSTing `body` (str) with `headers`; Unreachable when
    no status line came within `timeout` seconds, all in. The status
    decides: a body that is slow to follow it changes nothing (what of it
    comes within a second, up to 1 KB, is kept for a refusal's record)."""
    pool = _pool(endpoint, timeout, ca_file)
    try:
        with eventlet.Timeout(timeout, Unreachable(f"no answer within {timeout:g} s")):
            response = pool.urlopen(
                "POST",
                endpoint.target,
                body=body.encode(),
                redirect=False,
                preload_content=False,
                assert_same_host=False,
                headers={
                    **headers,
                    "Host": _host_header(endpoint),
                    "Content-Type": "application/json",
                    "User-Agent": "referral-network-webhooks/1",
                },
            )
        try:
            return Answer(
                response.status,
                response.headers.get("Retry-After"),
                "" if 200 <= response.status < 300 else _excerpt(response),
            )
        finally:
            response.close()  # the rest is never read
    except urllib3.exceptions.HTTPError as error:
        raise Unreachable(_reason(error)) from None
    except OSError as error:
        raise Unreachable(f"{type(error).__name__}: {error}") from None
    finally:
        pool.close()


def _excerpt(response):
    excerpt = b""
    with eventlet.Timeout(EXCERPT_SECONDS, False), contextlib.suppress(urllib3.exceptions.HTTPError, OSError):
        excerpt = response.read(ANSWER_BYTES, decode_content=False)
    return excerpt.decode("utf-8", "replace")


def _reason(error):
    cause = getattr(error, "reason", None) or error
    return f"{type(cause).__name__}: {cause}"


def retry_after_seconds(value, now, most):
    """Seconds a `Retry-After` header asks to wait (seconds or an HTTP date),
    at most `most`; None when it says nothing usable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), most)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return min(max(0.0, (when - now).total_seconds()), most)
