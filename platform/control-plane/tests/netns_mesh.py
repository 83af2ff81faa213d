"""One private network namespace for a test mesh: its own loopback (so the mesh's fixed ports,
4000, 4010 ..., collide with nobody's) and one veth pair (both ends inside) with a private address (a "LAN"
that exists only inside it). Everything started in it is stopped when it is closed.

Kept small on purpose: the shared netns helper of the end-to-end suite can replace it.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

CLI = [sys.executable, "-m", "homelab.cli_entry"]


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=check)


def unavailable() -> str | None:
    """Why a namespace cannot be made here (None when it can)."""
    if os.geteuid() != 0:
        return "needs root to create a network namespace (ip netns add)"
    if shutil.which("ip") is None:
        return "`ip` is missing (Debian package iproute2)"
    probe = f"hlc-probe-{secrets.token_hex(3)}"
    made = _ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"`ip netns add` does not work here: {made.stderr.strip()}"
    _ip("netns", "del", probe, check=False)
    return None


@dataclass
class Netns:
    name: str
    lan: str  # an address on the namespace's dummy interface (not loopback)

    @classmethod
    def create(cls, prefix: str = "hlc") -> Netns:
        tag = secrets.token_hex(3)
        ns = cls(f"{prefix}-{tag}", f"10.251.{int(tag[:2], 16) % 254 + 1}.1")
        try:
            _ip("netns", "add", ns.name)
            _ip("-n", ns.name, "link", "set", "lo", "up")
            # A veth pair with both ends inside (no dummy module everywhere): a "LAN" address
            # that exists only in this namespace.
            _ip("-n", ns.name, "link", "add", "lan0", "type", "veth", "peer", "name", "lan1")
            _ip("-n", ns.name, "addr", "add", f"{ns.lan}/24", "dev", "lan0")
            for dev in ("lan0", "lan1"):
                _ip("-n", ns.name, "link", "set", dev, "up")
        except BaseException:
            ns.close()
            raise
        return ns

    def argv(self, cmd: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.name, *cmd]

    def run(self, cmd: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 900, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(cmd), cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=timeout, input=input,
                              stdin=None if input is not None else subprocess.DEVNULL)

    def homelab(self, root: Path, *args: str, timeout: float = 900,
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """The CLI, run inside the namespace as a user would run it."""
        base = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "HOMELAB_REPO")}
        return self.run([*CLI, "--repo", str(root), *args], cwd=root, env={**base, **(env or {})},
                        timeout=timeout)

    def pids(self) -> list[int]:
        out = _ip("netns", "pids", self.name, check=False).stdout.split()
        return [int(p) for p in out if p.isdigit()]

    def close(self) -> None:
        """Stop everything still running inside (TERM, then KILL), then delete the namespace."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            pids = self.pids()
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + 5
            while self.pids() and time.monotonic() < deadline:
                time.sleep(0.1)
        _ip("netns", "del", self.name, check=False)
