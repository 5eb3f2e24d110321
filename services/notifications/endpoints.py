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
import logging
import socket
import urllib.parse

log = logging.getLogger(__name__)


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


# IPv6 prefixes that carry an IPv4 address a gateway may reach for it:
# NAT64 (RFC 6052, RFC 8215) and the deprecated IPv4-compatible form.
NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


def is_public(address):
    """True for an address of the public internet, and only for one. An
    IPv6 address that embeds an IPv4 one (mapped, compatible, NAT64, 6to4,
    Teredo) is judged by that IPv4 address too."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if not ip.is_global or ip.is_multicast:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = [ip.ipv4_mapped, ip.sixtofour, ip.teredo and ip.teredo[1]]
        if ip in IPV4_COMPATIBLE or any(ip in network for network in NAT64):
            embedded.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        return all(is_public(str(inner)) for inner in embedded if inner is not None)
    return True


def check(url, allow_private=False):
    """The `Endpoint` to deliver `url` to, or Refused saying why not."""
    scheme, host, port, target = _split(url, allow_private)
    try:
        addresses = resolve(host, port)
    except (OSError, UnicodeError):
        addresses = []
    if not allow_private and not all(is_public(address) for address in addresses):
        # The address itself is not said: an agency could map the network's own names with it.
        log.warning("webhook host %r refused: it resolves to %s", host, addresses)
        raise Refused(
            f"The host {host!r} does not resolve to a public address: "
            "webhooks may only call the public internet."
        )
    if not addresses:
        raise Refused(f"The host {host!r} cannot be resolved.")
    return Endpoint(scheme, host, port, target, addresses[0])
