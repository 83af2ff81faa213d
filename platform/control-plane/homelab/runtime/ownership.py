"""Is a service's port really served by the service? A health answer proves only that *some*
process answers: after a gateway's master is killed, its orphaned workers keep answering on the
port while supervisord runs a new master elsewhere. So the runtime checks who listens: the
contract's port must be held by the program's own process group (supervisord makes each program
a group leader, pid == pgid; `uv run` and workers inherit the group), and the group must not
listen on other non-loopback ports (a LAN socket the contract does not declare)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from homelab.runtime import procfs


@dataclass(frozen=True)
class PortCheck:
    ok: bool
    problem: str = ""  # why the contract port is not (only) ours
    strangers: tuple[int, ...] = ()  # pids outside the group holding the contract port
    extra: tuple[str, ...] = field(default=())  # "0.0.0.0:36360": undeclared LAN listeners


def _covers(bind: str, address: str) -> bool:
    """Would a socket on `address` take connections meant for `bind` (same or wildcard)?"""
    a, b = ipaddress.ip_address(address), ipaddress.ip_address(bind)
    return a == b or a.is_unspecified or b.is_unspecified


def check(bind: str, port: int, pid: int | None) -> PortCheck:
    """Who holds `bind:port`, and what else the group of `pid` (0/None: not running) listens on."""
    sockets = procfs.listening_sockets()
    inodes = {inode for _, _, inode in sockets}
    owners = procfs.socket_owners(inodes)
    group = {p for p in {q for qs in owners.values() for q in qs}
             if pid and procfs.process_group(p) == pid}
    on_port = {q for addr, prt, inode in sockets if prt == port and _covers(bind, addr)
               for q in owners.get(inode, set())}
    strangers = tuple(sorted(on_port - group))
    problem = ""
    if strangers:
        who = ", ".join(map(str, strangers))
        problem = (f"port {port} is held by pid {who} outside the supervised process group"
                   if pid else f"port {port} answers from pid {who}, but the service is not running")
    elif pid and not on_port & group:
        problem = f"no process of its group listens on port {port}"
    extra = tuple(sorted({f"{addr}:{prt}" for addr, prt, inode in sockets
                          if owners.get(inode, set()) & group and prt != port
                          and not ipaddress.ip_address(addr).is_loopback}))
    if extra:
        problem = "; ".join(p for p in (problem, f"also listens on {', '.join(extra)}, which its "
                                                 "contract does not declare") if p)
    return PortCheck(not problem, problem, strangers, extra)
