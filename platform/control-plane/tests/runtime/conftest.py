"""Synthetic meshes for runtime tests: tiny fake services on free ports in a temp checkout,
never the contract ports of the real checkout (a developer's mesh may be running there)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from homelab.cli import cli
from meshkit.testing import free_port

from homelab.commands.run_cmd import COMMANDS

FAKE = Path(__file__).with_name("fake_service.py")

for _command in COMMANDS:
    cli.add_command(_command)


MESH_YAML = """\
name: testmesh
gateway: {{service: fake-gw, public_base_url: "http://127.0.0.1:{gw}/v1"}}
hosts:
  - {{name: local, address: 127.0.0.1, role: test}}
"""

BACKEND = """\
---
name: fake-backend
kind: backend
layer: inference
description: Fake backend for runtime tests.
host: local
bind: 127.0.0.1
port: {port}
health: {{path: /health, expect_status: 200, expect_body: '"status": "ok"'}}
env:
  - {{name: FAKE_API_KEY, secret: true, file: /nonexistent/homelab-test/fake-backend.env}}
  - {{name: FAKE_MODE, file: /nonexistent/homelab-test/fake-backend.env, default: "tiny"}}
run:
  uv_project: null
  command: [{python}, {fake}, --bind, "{{bind}}", --port, "{{port}}"{extra}]
models:
  - {{name: jerry-fake, upstream_id: fake}}
---
# fake-backend
"""

GATEWAY = """\
---
name: fake-gw
kind: gateway
layer: gateway
description: Fake gateway for runtime tests.
host: local
bind: 127.0.0.1
port: {port}
health: {{path: /health, expect_status: 200}}
env_file: config/env.local
env:
  - {{name: GW_MASTER_KEY, required: true, secret: true, file: config/env.local}}
  - {{name: FAKE_API_KEY, secret: true, file: config/env.local}}
run:
  uv_project: null
  command: [{python}, {fake}, --bind, "{{bind}}", --port, "{{port}}"{extra}]
  after: [fake-backend]
upstreams: [fake-backend]
---
# fake-gw
"""

UI = """\
---
name: fake-ui
kind: interface
layer: interface
description: Opt-in fake UI for runtime tests.
host: local
bind: 127.0.0.1
port: {port}
health: {{path: /health, expect_status: 200, required: false}}
env:
  - {{name: UI_API_KEY, secret: true, file: /nonexistent/homelab-test/fake-ui.env}}
run:
  uv_project: null
  command: [{python}, {fake}, --bind, "{{bind}}", --port, "{{port}}"]
  after: [fake-gw]
  autostart: false
upstreams: [fake-gw]
---
# fake-ui
"""


@dataclass
class FakeMesh:
    root: Path
    ports: dict[str, int]

    def run(self, *args: str) -> Result:
        return CliRunner().invoke(cli, ["--repo", str(self.root), *args], catch_exceptions=False)

    def status(self) -> dict:
        result = self.run("status", "--json")
        return {s["service"]: s for s in json.loads(result.stdout)["services"]}


def write_mesh(root: Path, *, backend_extra: str = "", gateway_extra: str = "") -> FakeMesh:
    ports = {"fake-backend": free_port(), "fake-gw": free_port(), "fake-ui": free_port()}
    py, fake = json.dumps(sys.executable), json.dumps(str(FAKE))
    (root / "mesh").mkdir(parents=True)
    (root / "mesh/mesh.yaml").write_text(MESH_YAML.format(gw=ports["fake-gw"]))
    (root / "mesh/ports.yaml").write_text("ports:\n" + "".join(
        f"  - {{host: local, port: {p}, service: {n}, since: 2026-11-27}}\n"
        for n, p in ports.items()))
    (root / "mesh/approvals.yaml").write_text("approvals: []\n")
    for rel, template, name in (("layer-inference/fake-backend", BACKEND, "fake-backend"),
                                ("layer-gateway/fake-gw", GATEWAY, "fake-gw"),
                                ("layer-interface/fake-ui", UI, "fake-ui")):
        (root / rel).mkdir(parents=True)
        extra = {"fake-backend": backend_extra, "fake-gw": gateway_extra}.get(name, "")
        (root / rel / "SERVICE_SPEC.md").write_text(
            template.format(port=ports[name], python=py, fake=fake, extra=extra))
    return FakeMesh(root, ports)


@pytest.fixture
def fake_mesh(tmp_path: Path) -> Iterator[FakeMesh]:
    mesh = write_mesh(tmp_path / "repo")
    yield mesh
    mesh.run("down")  # never leave a supervisord behind, whatever the test did
