"""Where a request came from, behind a load balancer or reverse proxy: the client's address,
and whether it reached us over TLS.

`X-Forwarded-For` and `X-Forwarded-Proto` are believed only when the connection comes from a
trusted proxy (SANTAMON_TRUSTED_PROXIES): anyone else could write anything into them and so
escape the failed-authentication limit or put words in the request log.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from aiohttp import web

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def forwarded(request: web.Request, trusted: Sequence[Network]) -> tuple[str | None, bool] | None:
    """The client's address and whether its connection is TLS, as the trusted proxy that
    connected to us tells them; None when the connection does not come from one."""
    peer = parse_address(request.remote) if trusted and request.remote else None
    if peer is None or not _is_trusted(peer, trusted):
        return None
    client = client_address(request.remote, request.headers.getall("X-Forwarded-For", []),
                            trusted)
    # The nearest proxy's word counts: it terminated the client's connection (or passed on
    # what the one before it said).
    protos = ",".join(request.headers.getall("X-Forwarded-Proto", []))
    return client, request.secure or protos.rsplit(",", 1)[-1].strip().lower() == "https"


def client_address(peer: str | None, forwarded_for: Sequence[str],
                   trusted: Sequence[Network]) -> str | None:
    """Each proxy appends the address it received the request from, so the list is read from
    the right: the first address that is not a trusted proxy is the client, since everything
    to its left was written by that client and may be made up. A malformed entry ends the
    walk at the last address a trusted proxy vouched for."""
    peer_ip = parse_address(peer) if peer else None
    if peer_ip is None or not _is_trusted(peer_ip, trusted):
        return peer
    client = str(peer_ip)
    for header in reversed(forwarded_for):
        for hop in reversed(header.split(",")):
            ip = parse_address(hop)
            if ip is None:
                return client
            client = str(ip)
            if not _is_trusted(ip, trusted):
                return client
    return client


def parse_address(text: str) -> IPAddress | None:
    """An address as proxies write them: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1` or
    `[2001:db8::1]:4711`; an IPv4 address mapped into IPv6 is the IPv4 address."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        ip = ipaddress.ip_address(text.partition("%")[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _is_trusted(ip: IPAddress, trusted: Sequence[Network]) -> bool:
    return any(ip in network for network in trusted)
