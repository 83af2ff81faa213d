"""Which addresses a fetch may connect to.

The check runs on the resolved IP addresses, at connection time (see `netguard.py`), so a
hostname that resolves to loopback, a redirect into a private range and DNS answers that change
between check and connect (rebinding) are all refused: we connect to the very address we checked.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Cloud instance-metadata endpoints (AWS/GCP/Azure/OpenStack, AWS IPv6, Alibaba). They get
# their own reason and are never opened by a hostname allow-list entry, only by an IP/CIDR one.
METADATA = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)
NAT64 = ipaddress.ip_network("64:ff9b::/96")


class Refused(Exception):
    """A target the policy refuses; the message is shown to the model as the tool error."""


def embedded_v4(ip: IPAddress) -> IPAddress:
    """The IPv4 address hidden in an IPv6 form (mapped ::ffff:a.b.c.d, 6to4, NAT64), else ip."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.sixtofour is not None:
            return ip.sixtofour
        if ip in NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def blocked_reason(ip: IPAddress) -> str | None:
    """Why this address is refused by default, or None when it is a public unicast address."""
    inner = embedded_v4(ip)
    for candidate in (inner, ip):  # the embedded IPv4 names the real target
        if candidate in METADATA:
            return "cloud-metadata"
        if candidate.is_loopback:
            return "loopback"
        if candidate.is_link_local:
            return "link-local"
        if candidate.is_multicast:
            return "multicast"
        if candidate.is_unspecified:
            return "unspecified"
        if candidate.is_private:
            return "private"
        if not candidate.is_global or candidate.is_reserved:
            return "reserved/non-global"
    return None


@dataclass(frozen=True)
class AllowList:
    """Explicit opt-in for local targets: hostnames (exact, case-insensitive) and IPs/CIDRs."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[Network, ...] = field(default_factory=tuple)

    @classmethod
    def parse(cls, text: str) -> AllowList:
        hosts: set[str] = set()
        networks: list[Network] = []
        for raw in text.replace(";", ",").split(","):
            item = raw.strip()
            if not item:
                continue
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
                continue
            except ValueError:
                pass
            if "/" in item or ":" in item or " " in item:
                raise ValueError(f"{item!r} is neither a hostname nor an IP address/CIDR")
            hosts.add(item.lower().rstrip("."))
        return cls(frozenset(hosts), tuple(networks))

    def permits(self, host: str, ip: IPAddress) -> bool:
        if any(ip in net or embedded_v4(ip) in net for net in self.networks):
            return True
        return host.lower().rstrip(".") in self.hosts and ip not in METADATA

    def __bool__(self) -> bool:
        return bool(self.hosts or self.networks)


def check(host: str, ip: IPAddress, allow: AllowList) -> None:
    """Raise Refused unless `ip` (resolved from `host`) may be contacted."""
    reason = blocked_reason(ip)
    if reason is not None and not allow.permits(host, ip):
        shown = host if host == str(ip) else f"{host} ({ip})"
        raise Refused(
            f"blocked address: {shown} is {reason}; local targets need an explicit "
            "WEB_FETCH_ALLOW entry"
        )
