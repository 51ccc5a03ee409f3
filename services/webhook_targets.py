"""Where a shop's webhook may point: an http(s) URL whose host is on the public internet,
so that no shop can make the bot call into the network it runs in."""

import asyncio
import ipaddress
import socket
from urllib.parse import SplitResult, urlsplit

from services.errors import ErrorCode, InvalidInput

URL_MAX = 2000
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse(url: str) -> SplitResult:
    """The URL's parts, if it is one a webhook can go to; else InvalidInput."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  # a port that is not a number raises here
    except ValueError:
        raise InvalidInput(ErrorCode.WEBHOOK_URL_INVALID, reason="it is not a URL") from None
    if len(url) > URL_MAX or not url.isascii() or any(c.isspace() for c in url):
        raise InvalidInput(ErrorCode.WEBHOOK_URL_INVALID, reason="it is not a URL")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(ErrorCode.WEBHOOK_URL_INVALID, reason="it must be http(s)://host/…")
    if parts.username is not None or parts.password is not None:
        raise InvalidInput(ErrorCode.WEBHOOK_URL_INVALID, reason="it may not hold a login")
    return parts


# IPv6 ranges that carry an IPv4 address to reach (NAT64, 6to4, Teredo, IPv4-compatible,
# IPv4-translated):
# through them a public-looking address may lead inside. No webhook needs them.
_TUNNELS = tuple(
    ipaddress.ip_network(n)
    for n in (
        "64:ff9b::/96",
        "64:ff9b:1::/48",
        "2002::/16",
        "2001::/32",
        "::/96",
        "::ffff:0:0:0/96",
    )
)


def is_private(address: Address) -> bool:
    """Loopback, private, link-local, shared, reserved, multicast, or an IPv6 tunnel to
    IPv4: not the internet."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        elif any(address in tunnel for tunnel in _TUNNELS):
            return True
    return not address.is_global or address.is_multicast


def refused(host: str) -> bool:
    """Whether `host` is an address (not a name) that a webhook may not go to."""
    address = literal(host)
    return address is not None and is_private(address)


def literal(host: str) -> Address | None:
    """The address a host names literally, if it is one."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


async def addresses(host: str, port: int) -> list[Address]:
    """What `host` resolves to; empty if it does not."""
    if (address := literal(host)) is not None:
        return [address]
    loop = asyncio.get_running_loop()
    try:
        found = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in found]


async def check(url: str, *, allow_private: bool) -> None:
    """Refuse a URL a webhook may not go to (InvalidInput), resolving its host."""
    parts = parse(url)
    if allow_private:
        return
    assert parts.hostname is not None
    port = parts.port or (443 if parts.scheme == "https" else 80)
    found = await addresses(parts.hostname, port)
    if not found:
        raise InvalidInput(ErrorCode.WEBHOOK_URL_INVALID, reason="its host does not resolve")
    if any(is_private(address) for address in found):
        raise InvalidInput(ErrorCode.WEBHOOK_URL_PRIVATE)
