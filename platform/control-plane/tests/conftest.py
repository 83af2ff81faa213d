"""A small but complete synthetic mesh, built the way contributors build one: a hand-written
gateway, then `homelab new` for the rest, then `homelab render`. It passes `homelab check`."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import pytest

from homelab.load.repo import load_repo
from homelab.render.plan import EXECUTABLE, render_all
from homelab.render.writer import write_all
from homelab.rules.base import Violation
from homelab.rules.engine import run_checks
from homelab.scaffold.new import NewService, plan_new

TODAY = dt.date(2026, 11, 27)

MESH = """\
name: testmesh
gateway:
  service: gw
  public_base_url: http://127.0.0.1:4000/v1
hosts:
  - name: box
    address: 127.0.0.1
    role: all-in-one
"""
PORTS = """\
# ledger
ports:
  - {host: box, port: 4000, service: gw, since: 2026-11-01}
  - {host: box, port: 4009, service: old-thing, status: retired, since: 2026-01-01, retired: 2026-06-01}
"""
APPROVALS = """\
approvals:
  - {id: LAN-0001, service: gw, host: box, who: tester, reviewer: lead, date: 2026-11-01, reason: clients on the LAN}
"""
GATEWAY_SPEC = """\
---
name: gw
kind: gateway
layer: gateway
description: Test gateway.
host: box
bind: 0.0.0.0
port: 4000
exposure: lan
approval: LAN-0001
endpoints:
  - {method: POST, path: /v1/chat/completions}
  - {method: GET, path: /health/liveliness}
health: {path: /health/liveliness}
env_file: config/env.local
env:
  - {name: LITELLM_MASTER_KEY, required: true, secret: true, file: config/env.local}
run:
  uv_project: .
  command: [scripts/start.sh, --port, "{port}"]
systemd: {unit: homelab-gw.service}
---
# gw
Prose for people.
"""
DOCS = {
    "docs/foundation/topology.md": "# Topology\n\nHand-written intro that render must keep.\n",
    "docs/PLATFORM_DOSSIER.md": "# Dossier\n\nHand-written prose.\n",
}


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True,
                          text=True).stdout


def write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def build_mesh(root: Path) -> Path:
    files = {"mesh/mesh.yaml": MESH, "mesh/ports.yaml": PORTS, "mesh/approvals.yaml": APPROVALS,
             ".gitignore": "env.local\n",
             "layer-gateway/gw/SERVICE_SPEC.md": GATEWAY_SPEC,
             "layer-gateway/gw/ARCHITECTURE.md": "# gw architecture\n",
             "layer-gateway/gw/AGENTS.md": "# gw agents\n",
             "layer-gateway/gw/pyproject.toml": "[project]\nname='gw'\n",
             "layer-gateway/gw/uv.lock": "version = 1\n",
             "layer-gateway/gw/config/router.yaml":
                 "# hand-tuned\nrouter_settings:\n  num_retries: 0  # fail fast\n"
                 "general_settings:\n  master_key: os.environ/LITELLM_MASTER_KEY\n",
             **DOCS}
    for rel, text in files.items():
        write(root, rel, text)
    for req in (NewService("backend", "ov", "Small model box.", models=[("jerry-small", "small-1b")],
                           today=TODAY, lock=False),
                NewService("optimizer", "opt", "Mixture of agents.", approaches=["moa"], today=TODAY,
                           lock=False),
                NewService("client", "agent", "Asks questions.", today=TODAY, lock=False),
                NewService("mcp-tool", "fetcher", "Fetches pages.", tools=["fetch"], today=TODAY,
                           lock=False)):
        write_all(root, plan_new(load_repo(root), req), EXECUTABLE)
    write_all(root, render_all(load_repo(root)), EXECUTABLE)
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "mesh")
    return root


@pytest.fixture(scope="session")
def _mesh_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_mesh(tmp_path_factory.mktemp("template"))


@pytest.fixture
def mesh(_mesh_template: Path, tmp_path: Path) -> Path:
    """A fresh copy per test (building once keeps the suite fast)."""
    root = tmp_path / "mesh"
    subprocess.run(["cp", "-a", str(_mesh_template), str(root)], check=True)
    return root


def violations(root: Path, base: str | None = None, *, history: bool = True) -> list[Violation]:
    return run_checks(load_repo(root), base, history=history)


def by_code(root: Path, code: str) -> list[Violation]:
    return [v for v in violations(root) if v.code == code]


def edit(root: Path, rel: str, old: str, new: str, count: int = 1) -> None:
    path = root / rel
    text = path.read_text(encoding="utf-8")
    assert old in text, f"fixture edit: {old!r} not in {rel}"
    path.write_text(text.replace(old, new, count), encoding="utf-8")


def rerender(root: Path) -> None:
    write_all(root, render_all(load_repo(root)), EXECUTABLE)
