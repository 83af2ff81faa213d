"""Is a port free, and if not, which process holds it (from /proc, Linux)."""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
from pathlib import Path


def in_use(bind: str, port: int) -> bool:
    """True when something already listens on (bind, port) in a way that blocks our bind.

    SO_REUSEADDR mirrors what servers do, so a TIME_WAIT leftover is not reported as taken.
    """
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((bind, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def _listening_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if len(cols) > 9 and cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(cols[9])  # state 0A = LISTEN
    return inodes


def listener_pids(port: int) -> set[int]:
    """Pids with a socket listening on `port` (only processes we may inspect)."""
    return set().union(*socket_owners(_listening_inodes(port)).values())


def parent_pid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def descends_from(pid: int, ancestor: int) -> bool:
    seen = 0
    while pid and pid != 1 and seen < 64:
        if pid == ancestor:
            return True
        pid = parent_pid(pid) or 0
        seen += 1
    return False


def process_group_members(pgids: set[int]) -> list[int]:
    """Live pids whose process group is one of `pgids` (what stopasgroup/killasgroup signal)."""
    out = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        # fields[0] = state, [1] = ppid, [2] = pgrp; zombies are already dead.
        if fields[0] != "Z" and int(fields[2]) in pgids:
            out.append(int(proc.name))
    return out


def marked_processes(name: str, value: str) -> list[int]:
    """Live pids whose environment has name=value (only processes we may inspect)."""
    needle = f"{name}={value}".encode()
    out = []
    me = os.getpid()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == me:
            continue
        try:
            if needle in (proc / "environ").read_bytes().split(b"\0"):
                state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if state != "Z":
                    out.append(int(proc.name))
        except OSError:
            continue
    return out


def _address(hex_addr: str) -> str:
    """/proc/net/tcp's little-endian hex address as text (IPv4 or IPv6)."""
    raw = bytes.fromhex(hex_addr)
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(words))


def listening_sockets() -> list[tuple[str, int, str]]:
    """(address, port, socket inode) of every listening TCP socket in this network namespace."""
    out = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if len(cols) > 9 and cols[3] == "0A":
                addr, port = cols[1].rsplit(":", 1)
                out.append((_address(addr), int(port, 16), cols[9]))
    return out


def socket_owners(inodes: set[str]) -> dict[str, set[int]]:
    """socket inode -> pids holding it (only processes we may inspect)."""
    owners: dict[str, set[int]] = {}
    if not inodes:
        return owners
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    owners.setdefault(target[8:-1], set()).add(int(proc.name))
        except OSError:
            continue
    return owners


def process_group(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[2])
    except (OSError, IndexError, ValueError):
        return None
