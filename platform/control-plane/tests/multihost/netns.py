"""Two network namespaces joined by a veth pair: two real hosts with their own addresses on one
machine. Traffic stays inside them; nothing is routed to the machine's own network."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from meshkit.testing import netns_unavailable


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=check)


def unavailable() -> str | None:
    """Why namespaces cannot be used here, or None when they can."""
    if shutil.which("curl") is None:
        return "`curl` is missing (Debian package curl)"
    return netns_unavailable()


@dataclass
class Host:
    ns: str
    address: str


@dataclass
class Pair:
    """Namespaces, and the processes started in them (stopped by `close`, in reverse)."""

    a: Host
    b: Host
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @classmethod
    def create(cls, prefix: str = "hl") -> Pair:
        tag = secrets.token_hex(3)
        subnet = f"10.250.{int(tag[:2], 16) % 254 + 1}"
        pair = cls(Host(f"{prefix}-gw-{tag}", f"{subnet}.1"), Host(f"{prefix}-inf-{tag}", f"{subnet}.2"))
        try:
            for host in (pair.a, pair.b):
                _ip("netns", "add", host.ns)
            # Created straight inside the namespaces: nothing ever appears in the root namespace.
            _ip("link", "add", "name", f"hla{tag}", "netns", pair.a.ns, "type", "veth",
                "peer", "name", f"hlb{tag}", "netns", pair.b.ns)
            for host, dev in ((pair.a, f"hla{tag}"), (pair.b, f"hlb{tag}")):
                _ip("-n", host.ns, "addr", "add", f"{host.address}/24", "dev", dev)
                _ip("-n", host.ns, "link", "set", dev, "up")
                _ip("-n", host.ns, "link", "set", "lo", "up")
        except BaseException:
            pair.close()
            raise
        return pair

    def spawn(self, host: Host, cmd: list[str], *, cwd: Path, env: dict[str, str],
              log: Path) -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            proc = subprocess.Popen(["ip", "netns", "exec", host.ns, *cmd], cwd=cwd, env=env,
                                    stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        self.procs.append(proc)
        return proc

    def run(self, host: Host, cmd: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ip", "netns", "exec", host.ns, *cmd], capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)

    def close(self) -> None:
        for proc in reversed(self.procs):
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait(timeout=10)
        for host in (self.a, self.b):
            # Anything still running inside (e.g. a worker that left our process group) was
            # started by this test: stop it by pid, then remove the namespace (and its veth end).
            pids = _ip("netns", "pids", host.ns, check=False).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            _ip("netns", "del", host.ns, check=False)


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
