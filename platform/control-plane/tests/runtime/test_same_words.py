"""`homelab up`, `homelab health` and mesh-status word one failure with the same sentence: all
three probe with meshkit.probe, from the same view. A real backend process runs but listens on
another port than its contract says, so its health URL refuses connections."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from .conftest import free_port, write_mesh

REPO = Path(__file__).resolve().parents[4]
ASK_MESH_STATUS = """
import anyio
from mcp import Client
from mesh_status.server import build_server

async def main():
    async with Client(build_server()) as client:
        result = await client.call_tool("service_health", {"service": "fake-backend"})
        print(result.content[0].text)

anyio.run(main)
"""


@pytest.mark.timeout(600)
def test_up_health_and_mesh_status_share_the_sentence(tmp_path: Path) -> None:
    elsewhere = free_port()
    mesh = write_mesh(tmp_path / "repo", backend_extra=f', --port, "{elsewhere}"')
    port = mesh.ports["fake-backend"]
    sentence = f"http://127.0.0.1:{port}/health: connection refused by 127.0.0.1:{port}"
    try:
        up = mesh.run("up", "--only", "fake-backend", "--timeout", "3")
        assert up.exit_code == 1 and sentence in up.output, up.output

        health = mesh.run("health")
        assert health.exit_code == 1 and f"fake-backend: {sentence}" in health.stdout, health.stdout

        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "HOMELAB_MESH_VIEW")}
        env["HOMELAB_MESH_VIEW"] = str(mesh.root / "mesh/view.json")  # what `up` gave it
        asked = subprocess.run(["uv", "run", "--frozen", "--project", str(REPO / "layer-tools/mesh-status"),
                                "python", "-c", ASK_MESH_STATUS], env=env, capture_output=True,
                               text=True, timeout=540, stdin=subprocess.DEVNULL)
        assert asked.returncode == 0, asked.stderr[-3000:]
        assert sentence in asked.stdout, asked.stdout
    finally:
        mesh.run("down")
