"""Fixtures: a two-host copy of this checkout, rendered, and bundles of its hosts."""

from __future__ import annotations

from pathlib import Path

import pytest
from homelab.deploy.bundle import bundle_files, plan_bundle
from homelab.deploy.model import Plan
from homelab.load.repo import load_repo
from homelab.render.plan import EXECUTABLE, render_all
from homelab.render.router import router_path
from homelab.render.writer import write_all

from .twohost import TwoHosts, copy_checkout, make_two_hosts

GW_ADDR, INF_ADDR = "10.250.77.1", "10.250.77.2"


def render(root: Path) -> None:
    write_all(root, render_all(load_repo(root)), EXECUTABLE)


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> TwoHosts:
    """Read-only for tests: copy it first if a test needs to change it."""
    root = copy_checkout(tmp_path_factory.mktemp("mesh"))
    two = make_two_hosts(root, GW_ADDR, INF_ADDR)
    render(root)
    return two


def plan_for(two: TwoHosts, host: str) -> Plan:
    repo = load_repo(two.root)
    current = (two.root / router_path(repo)).read_text(encoding="utf-8")
    return plan_bundle(repo, host, current)


@pytest.fixture(scope="module")
def bundles(mesh: TwoHosts, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each host's bundle written to disk by the real writer: {host: bundle dir}."""
    from homelab.deploy.writer import write_bundle

    out = {}
    for host in (mesh.gw_host, mesh.inf_host):
        files, executable = bundle_files(plan_for(mesh, host))
        out[host] = tmp_path_factory.mktemp(f"bundle-{host}")
        write_bundle(out[host], files, executable, force=True)
    return out
