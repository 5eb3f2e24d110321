"""Where a webhook may point: server-side request forgery refused.

A webhook's URL is a partner's, but the request leaves from inside the
network: a URL naming (or resolving to) a loopback, private, link-local,
shared or metadata address would let an agency probe or call what only the
network's own machines can reach. So a URL must be https and every address
its host resolves to must be a global one; the check is made when the
webhook is made and again at every delivery, on the addresses the delivery
then connects to (a DNS answer that changes cannot point it inward).
`WEBHOOK_ALLOW_PRIVATE` lifts both rules, for development and tests only.
"""
import dataclasses
import ipaddress
import socket
import urllib.parse


class Refused(Exception):
    """The URL may not be called; the message says why, for the partner."""


@dataclasses.dataclass(frozen=True)
class Endpoint:
    scheme: str
    host: str  # as written (the Host header and the TLS server name)
    port: int
    target: str  # path and query
    address: str  # the checked address to connect to


def resolve(host, port):
    """Every address `host` resolves to (the one place DNS is asked)."""
    return [info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


def _split(url, allow_private):
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise Refused(f"This is not a URL: {error}.") from None
    schemes = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in schemes:
        raise Refused("A webhook's URL must be https.")
    if not parts.hostname:
        raise Refused("A webhook's URL must name a host.")
    if parts.username is not None or parts.password is not None:
        raise Refused("A webhook's URL may not hold a user name or password.")
    if parts.fragment:
        raise Refused("A webhook's URL may not have a fragment (#...).")
    port = port or (443 if parts.scheme == "https" else 80)
    target = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
    return parts.scheme, parts.hostname, port, target


def is_public(address):
    """True for an address of the public internet, and only for one."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check(url, allow_private=False, resolver=None):
    """The `Endpoint` to deliver `url` to, or Refused saying why not."""
    scheme, host, port, target = _split(url, allow_private)
    try:
        addresses = (resolver or resolve)(host, port)
    except (OSError, UnicodeError) as error:
        raise Refused(f"The host {host!r} cannot be resolved ({error}).") from None
    if not addresses:
        raise Refused(f"The host {host!r} cannot be resolved.")
    if not allow_private:
        inward = [address for address in addresses if not is_public(address)]
        if inward:
            raise Refused(f"The host {host!r} resolves to an address that is not public ({inward[0]}): "
                          "webhooks may only call the public internet.")
    return Endpoint(scheme, host, port, target, addresses[0])
