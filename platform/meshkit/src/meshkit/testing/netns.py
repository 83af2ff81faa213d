"""A private network namespace for a test mesh (needs root: `ip netns add`; CI runs as root).

Inside, loopback is the namespace's own: a mesh gets the real contract ports (127.0.0.1:4000,
:4010, ...) to itself, colliding with nobody's mesh, so nothing has to be rewritten to run on
other ports. It has no route out, so whatever runs inside also proves it works offline. With
`lan=True` it also gets a veth pair (both ends inside) with a private address: a "LAN" that
exists only in the namespace. Everything started inside is stopped when it is closed.

Three ways in:
- `ns.run(cmd)` / `ns.argv(cmd)`: a command run with `ip netns exec`;
- `ns.homelab(root, *args)`: the control plane's CLI, inside, as a user would run it;
- `with ns.entered(): ...`: the calling THREAD's sockets (and the processes it starts) are in
  the namespace until the block ends, e.g. for an HTTP client in the test itself.
"""

from __future__ import annotations

import ctypes
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

CLONE_NEWNET = 0x40000000
HOMELAB_CLI = [sys.executable, "-m", "homelab.cli_entry"]


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=check,
                          stdin=subprocess.DEVNULL)


def netns_unavailable() -> str | None:
    """Why a private network namespace cannot be made here, or None when it can (the reason is
    what a skip says)."""
    if os.geteuid() != 0:
        return "needs root to create network namespaces (ip netns add)"
    for tool, package in (("ip", "iproute2"), ("ss", "iproute2"), ("unshare", "util-linux")):
        if shutil.which(tool) is None:
            return f"`{tool}` is missing (Debian package {package})"
    probe = f"hl-probe-{secrets.token_hex(3)}"
    made = _ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"`ip netns add` does not work here: {made.stderr.strip()}"
    _ip("netns", "del", probe, check=False)
    return None


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


@dataclass
class Netns:
    """One network namespace: loopback up, optionally a private LAN address (`lan`)."""

    name: str
    lan: str = ""  # an address on the namespace's veth (not loopback), when made with lan=True

    @classmethod
    def create(cls, prefix: str = "hl-ns", *, lan: bool = False) -> Netns:
        tag = secrets.token_hex(3)
        ns = cls(f"{prefix}-{tag}", f"10.251.{int(tag[:2], 16) % 254 + 1}.1" if lan else "")
        _ip("netns", "add", ns.name)
        try:
            _ip("-n", ns.name, "link", "set", "lo", "up")
            if lan:  # a veth pair with both ends inside (no dummy kernel module needed)
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
                env: dict[str, str] | None = None,
                cli: list[str] | None = None) -> subprocess.CompletedProcess[str]:
        """The control plane's CLI (this interpreter's `homelab` unless `cli` says otherwise)
        on the checkout `root`, run inside the namespace."""
        base = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "HOMELAB_REPO")}
        return self.run([*(cli or HOMELAB_CLI), "--repo", str(root), *args], cwd=root,
                        env={**base, **(env or {})}, timeout=timeout)

    @contextmanager
    def entered(self) -> Iterator[None]:
        """Run the block with the calling thread in the namespace: sockets it opens and
        processes it starts are inside (sockets stay there after the block)."""
        with open("/proc/thread-self/ns/net", "rb") as home, \
                open(f"/run/netns/{self.name}", "rb") as target:
            _setns(target.fileno())
            try:
                yield
            finally:
                _setns(home.fileno())

    def pids(self) -> list[int]:
        """Every process living in the namespace (whatever session or process group it made)."""
        out = _ip("netns", "pids", self.name, check=False).stdout.split()
        return sorted(int(p) for p in out if p.isdigit())

    def listeners(self) -> list[str]:
        """`ss` lines of every listening TCP/UDP socket in the namespace (with their process)."""
        out = subprocess.run(self.argv(["ss", "-H", "-l", "-t", "-u", "-n", "-p"]),
                             capture_output=True, text=True, timeout=30, check=True,
                             stdin=subprocess.DEVNULL).stdout
        return [line for line in out.splitlines() if line.strip()]

    def kill_all(self, grace_s: float = 5.0) -> list[int]:
        """TERM every process inside, KILL what is left after `grace_s`; returns who was found."""
        found = self.pids()
        for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10.0)):
            for pid in self.pids():
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + wait
            while self.pids() and time.monotonic() < deadline:
                time.sleep(0.1)
        return found

    def close(self) -> None:
        """Stop everything still running inside, then delete the namespace."""
        self.kill_all()
        _ip("netns", "del", self.name, check=False)

    def __enter__(self) -> Netns:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
