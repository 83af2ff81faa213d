"""Issue 10 item 2, the runtime's half: a health answer is not trusted blindly. When a gateway's
master is killed and its worker lives on, orphaned, on the port (and the restarted master
listens elsewhere, on the LAN), `status` must not call it healthy and `up` must repair it.

Runs in a private network namespace: the restarted master's random port is on a "LAN" address
that exists only inside it."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from meshkit.testing import Netns, netns_unavailable

from .conftest import write_mesh

pytestmark = pytest.mark.skipif(netns_unavailable() is not None, reason=str(netns_unavailable()))


@pytest.fixture
def ns() -> Iterator[Netns]:
    made = Netns.create("hl-own", lan=True)
    yield made
    made.close()


def status(ns: Netns, root: Path) -> tuple[int, dict]:
    out = ns.homelab(root, "status", "--json", timeout=120)
    return out.returncode, {s["service"]: s for s in json.loads(out.stdout)["services"]}


def test_orphaned_worker_on_the_port_is_not_healthy_and_up_repairs_it(ns: Netns, tmp_path: Path) -> None:
    mesh = write_mesh(tmp_path / "repo", gateway_extra=f', "--workers", "--fallback-bind", "{ns.lan}"')
    try:
        up = ns.homelab(mesh.root, "up")
        assert up.returncode == 0, up.stdout + up.stderr
        code, rows = status(ns, mesh.root)
        assert code == 0 and rows["fake-gw"]["healthy"] is True and rows["fake-gw"]["problem"] == ""
        master = rows["fake-gw"]["pid"]
        worker = next(p for p in ns.pids() if p != master and os.getpgid(p) == master)
        os.kill(master, signal.SIGKILL)  # only the master: its worker keeps the port
        # Until the restarted master listens: a new pid alone can be a master still starting,
        # before it binds its LAN socket (seen in CI under load).
        deadline = time.monotonic() + 60
        while True:
            code, rows = status(ns, mesh.root)
            if rows["fake-gw"]["pid"] not in (None, master) and "also listens on" in rows["fake-gw"]["problem"]:
                break
            assert time.monotonic() < deadline, rows
            time.sleep(0.5)
        gw = rows["fake-gw"]
        assert code == 1 and gw["healthy"] is False, gw
        assert f"port {mesh.ports['fake-gw']} is held by pid {worker} outside the supervised " \
               "process group" in gw["problem"]
        assert f"also listens on {ns.lan}:" in gw["problem"]  # the new master's LAN socket
        repaired = ns.homelab(mesh.root, "up")
        assert repaired.returncode == 0, repaired.stdout + repaired.stderr
        assert f"leftovers of an earlier start (pid {worker})" in repaired.stdout
        code, rows = status(ns, mesh.root)
        assert code == 0 and rows["fake-gw"]["healthy"] is True and rows["fake-gw"]["problem"] == ""
        assert worker not in ns.pids()
    finally:
        ns.homelab(mesh.root, "down", timeout=120)
