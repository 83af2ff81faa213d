"""Addresses compared one way everywhere: `homelab check` (HL401) and every client (tiny-agents)
ask `owner()` whether a URL or host:port reaches a service clients must never call.

Hosts are canonical before comparing: lower case, no IPv6 brackets, IP literals in their
compressed form (so `0:0::1` is `::1`). A localhost name may resolve to 127.0.0.1 or ::1, so it
matches a service on either.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

LOCALHOST_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
LOOPBACKS = ("127.0.0.1", "::1")


@dataclass(frozen=True, order=True)
class NeverCall:
    """One address:port of a service a client must reach only through the gateway."""

    address: str  # canonical (see canonical_host)
    port: int
    service: str
    kind: str

    @property
    def owner(self) -> str:
        return f"{self.kind} {self.service}"


def canonical_host(host: str) -> str:
    host = host.strip().strip("[]").lower()
    try:
        return ipaddress.ip_address(host).compressed
    except ValueError:
        return host


def is_wildcard(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.strip("[]")).is_unspecified
    except ValueError:
        return False


def hostport(url: str) -> tuple[str, int] | None:
    """(canonical host, port) of an http(s) URL; None when it is not one."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return canonical_host(parts.hostname), port or (443 if parts.scheme == "https" else 80)


def reached_at(bind: str, host_address: str | None) -> list[str]:
    """The canonical addresses a service bound to `bind` answers on, as clients name them: a
    wildcard bind answers on its host's address and on loopback (both families for `::`)."""
    if is_wildcard(bind):
        found = {"127.0.0.1"} | ({"::1"} if ":" in bind else set())
        if host_address:
            found.add(canonical_host(host_address))
        return sorted(found)
    return [canonical_host(bind)]


def owner(host: str, port: int, never_call: Iterable[NeverCall]) -> NeverCall | None:
    """The entry `host:port` reaches, if any."""
    name = canonical_host(host)
    candidates = set(LOOPBACKS) if name in LOCALHOST_NAMES else {name}
    return next((n for n in never_call if n.port == port and n.address in candidates), None)


def url_owner(url: str, never_call: Iterable[NeverCall]) -> NeverCall | None:
    found = hostport(url)
    return owner(*found, never_call) if found else None
