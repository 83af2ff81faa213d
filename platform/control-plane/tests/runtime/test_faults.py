"""Faults on the real services (ov-server + LiteLLM gateway) in a private mesh: a fresh clone of
this checkout in its own network namespace, on the contract ports (meshkit.testing.PrivateMesh):
a backend killed mid-stream, a gateway killed, a port taken by a foreign process.

The clone adds a second backend, `ov-spare` (the same ov-server project on another port, serving
jerry-spare), and makes it jerry-tiny's fallback, so "the fallback keeps answering" is observable.
Skipped, with the reason, when the service folders are not runnable (no uv, no uv.lock, ...) or
no network namespace can be made (needs root).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from ruamel.yaml import YAML

from homelab.load.repo import load_repo
from meshkit.testing import PrivateMesh, free_port, netns_unavailable, wait_until

REAL_REPO = Path(__file__).resolve().parents[4]
NEEDED = {
    "layer-inference/ov-server": ["pyproject.toml", "uv.lock"],
    "layer-gateway/litellm-orch": ["pyproject.toml", "uv.lock", "scripts/start.sh",
                                   "config/router.yaml"],
}


def _not_runnable() -> str | None:
    if shutil.which("uv") is None:
        return "uv is not installed"
    for folder, files in NEEDED.items():
        missing = [f for f in files if not (REAL_REPO / folder / f).exists()]
        if missing:
            return f"{folder} is not runnable yet (missing {', '.join(missing)})"
    return netns_unavailable()


# Per test: `up` of three real services may take minutes on a loaded machine.
pytestmark = [pytest.mark.skipif(_not_runnable() is not None, reason=str(_not_runnable())),
              pytest.mark.timeout(1200)]

# Where the services inside the namespace find their machine-wide env files (mesh.etc).
ETC = "/etc/homelab-llm"

SPARE_SPEC = """\
---
name: ov-spare
kind: backend
layer: inference
description: Second ov-server instance for fault tests (fallback of jerry-tiny).
host: local
bind: 127.0.0.1
port: {port}
health: {{path: /health, expect_status: 200}}
env_file: {etc}/ov-server.env
env:
  - {{name: OV_SERVER_REGISTRY, file: {etc}/ov-server.env}}
  - {{name: OV_SERVER_MODEL_DIR, file: {etc}/ov-server.env, up_value: "{{state}}/models"}}
  - {{name: OV_SERVER_API_KEY, secret: true, file: {etc}/ov-server.env}}
run:
  uv_project: ../ov-server
  command: [uv, run, --project, ../ov-server, ov-server, serve,
            --host, "{{bind}}", --port, "{{port}}"]
gateway_auth_env: OV_SERVER_API_KEY
models:
  - {{name: jerry-spare, upstream_id: jerry-tiny}}
---
# ov-spare (test only)
"""

# Long answers even from random weights, so a stream is still running when the backend dies.
REGISTRY = """\
models:
  jerry-tiny: {builtin: jerry-tiny, default_max_tokens: 64, min_new_tokens: 7000}
"""


@dataclass
class Result:
    """What a CLI run inside the namespace gave (the shape of click's test Result)."""

    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@dataclass
class RealMesh:
    mesh: PrivateMesh
    ports: dict[str, int]
    key: str = ""

    @property
    def root(self) -> Path:
        return self.mesh.root

    @property
    def gateway(self) -> str:
        return f"http://127.0.0.1:{self.ports['litellm-orch']}"

    def run(self, *args: str) -> Result:
        done = self.mesh.homelab(*args, timeout=900)
        return Result(done.returncode, done.stdout, done.stderr)

    def status(self) -> dict:
        result = self.run("status", "--json")
        return {s["service"]: s for s in json.loads(result.stdout)["services"]}

    def chat(self, model: str, **extra: object) -> httpx.Response:
        with self.mesh.netns.entered():
            return httpx.post(f"{self.gateway}/v1/chat/completions", trust_env=False, timeout=60,
                              headers={"Authorization": f"Bearer {self.key}"},
                              json={"model": model, "max_tokens": 8,
                                    "messages": [{"role": "user", "content": "hi"}], **extra})

    def healthy(self) -> bool:
        """`health` passes for the services this module runs (the clone has the whole mesh; the
        others are not started, so the command's own exit code speaks of them too)."""
        rows = json.loads(self.run("health", "--json").stdout)
        return all(r["ok"] for r in rows if r["service"] in RUNS)

    def kill_group(self, service: str, pid: int | None = None) -> int:
        """Crash a service: SIGKILL its whole process group (uv run + the server)."""
        pid = pid or self.status()[service]["pid"]
        os.killpg(pid, signal.SIGKILL)
        return pid


def _add_spare(mesh: PrivateMesh, ports: dict[str, int]) -> None:
    (mesh.etc / "fault-registry.yaml").write_text(REGISTRY)
    (mesh.etc / "ov-server.env").write_text(f"OV_SERVER_REGISTRY={ETC}/fault-registry.yaml\n")
    with mesh.netns.entered():  # any port is free inside; this one is in no contract
        ports["ov-spare"] = free_port()
    spare = mesh.root / "layer-inference/ov-spare"
    spare.mkdir()
    (spare / "SERVICE_SPEC.md").write_text(SPARE_SPEC.format(port=ports["ov-spare"], etc=ETC))
    with (mesh.root / "mesh/ports.yaml").open("a") as fh:
        fh.write(f"  - {{host: local, port: {ports['ov-spare']}, service: ov-spare, "
                 "since: 2026-11-27}\n")
    # The gateway's router: jerry-spare served by ov-spare, and jerry-tiny falls back to it.
    # (In the real mesh `homelab render` writes these from the contracts' models/fallbacks.)
    router = mesh.root / "layer-gateway/litellm-orch/config/router.yaml"
    yaml = YAML()
    config = yaml.load(router.read_text())
    config["model_list"].append({"model_name": "jerry-spare", "litellm_params": {
        "model": "openai/jerry-tiny", "api_base": f"http://127.0.0.1:{ports['ov-spare']}/v1",
        "api_key": "os.environ/OV_SERVER_API_KEY"}})
    config["router_settings"]["fallbacks"] = [{"jerry-tiny": ["jerry-spare"]}]
    with router.open("w") as fh:
        yaml.dump(config, fh)


@pytest.fixture(scope="module")
def real_mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealMesh]:
    mesh = PrivateMesh.create(tmp_path_factory.mktemp("faults"), repo=REAL_REPO, prefix="hl-faults")
    try:
        repo = load_repo(mesh.root)
        ports = {name: repo.services[name].spec.port for name in ("ov-server", "litellm-orch")}
        mesh.presync([mesh.root / "layer-inference/ov-server", mesh.root / "layer-gateway/litellm-orch"])
        _add_spare(mesh, ports)
        # One LiteLLM worker starts in about half the time of two. `up` leaves an existing
        # env.local alone; the keys still reach the gateway through supervisord's environment.
        (mesh.root / "layer-gateway/litellm-orch/config/env.local").write_text("LITELLM_NUM_WORKERS=1\n")
        real = RealMesh(mesh, ports)
        yield real
        real.run("down")
    finally:
        mesh.close()


# Generous: on a loaded 2-core machine LiteLLM has been seen to need minutes to start.
RUNS = ("ov-server", "ov-spare", "litellm-orch")
ONLY = (*(a for name in RUNS for a in ("--only", name)), "--timeout", "600")


def _listening(real_mesh: RealMesh, port: int) -> bool:
    with real_mesh.mesh.netns.entered(), socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_foreign_port_names_service_and_starts_nothing(real_mesh: RealMesh) -> None:
    port = real_mesh.ports["litellm-orch"]
    with real_mesh.mesh.netns.entered():
        foreign = socket.create_server(("127.0.0.1", port))
    with foreign:
        result = real_mesh.run("up", *ONLY)
    assert result.exit_code == 1
    expected = f"error: port {port} (litellm-orch) is already in use by another process"
    assert expected in result.stderr
    assert not (real_mesh.root / ".homelab/run/supervisor.sock").exists()
    for name in ("ov-server", "ov-spare"):
        assert not _listening(real_mesh, real_mesh.ports[name])


def test_up_real_mesh(real_mesh: RealMesh) -> None:
    result = real_mesh.run("up", *ONLY)
    assert result.exit_code == 0, result.output
    assert "litellm-orch  healthy" in result.stdout
    # ov-server's contract run.prepare wrote jerry-tiny and converted jerry-chat's GGUF where the
    # runtime points OV_SERVER_MODEL_DIR.
    assert "prepare  ov-server: uv run ov-server prepare" in result.stdout
    assert (real_mesh.root / ".homelab/models/jerry-tiny.gguf").is_file()
    assert list((real_mesh.root / ".homelab/models/converted").glob("*/manifest.json"))
    secrets_env = real_mesh.root / ".homelab/secrets.env"
    real_mesh.key = dict(line.split("=", 1) for line in secrets_env.read_text().splitlines()
                         if "=" in line and not line.startswith("#"))["LITELLM_MASTER_KEY"]
    assert real_mesh.key.startswith("sk-")
    assert real_mesh.chat("jerry-tiny").status_code == 200
    again = real_mesh.run("up", *ONLY)
    assert again.exit_code == 0 and again.stdout.count("already running, healthy") == 3


def test_backend_killed_mid_stream(real_mesh: RealMesh) -> None:
    if not real_mesh.key:
        pytest.fail("the real mesh did not come up (see test_up_real_mesh)")
    pid = real_mesh.status()["ov-server"]["pid"]
    body = {"model": "jerry-tiny", "stream": True, "max_tokens": 7000,
            "messages": [{"role": "user", "content": "tell me a long story"}]}
    events: list[str] = []
    error: Exception | None = None
    killed_at = 0.0
    with real_mesh.mesh.netns.entered(), httpx.Client(trust_env=False, timeout=30) as client:
        with client.stream("POST", f"{real_mesh.gateway}/v1/chat/completions", json=body,
                           headers={"Authorization": f"Bearer {real_mesh.key}"}) as response:
            assert response.status_code == 200
            try:
                for line in response.iter_lines():
                    if line.startswith("data: "):
                        events.append(line[6:])
                    if len(events) == 5:
                        real_mesh.kill_group("ov-server", pid)
                        killed_at = time.monotonic()
            except httpx.HTTPError as exc:  # a cut stream is a clean, typed client error
                error = exc
    assert killed_at, "the stream ended before the backend could be killed"
    # The client learns the stream failed: an error event or a broken transfer, never [DONE].
    errored = error is not None or any('"error"' in e for e in events[5:])
    assert errored and "[DONE]" not in events[-1:], (len(events), events[-3:])

    # While ov-server is down the fallback answers jerry-tiny.
    fallback = real_mesh.chat("jerry-tiny")
    assert fallback.status_code == 200, fallback.text
    print(f"\nstream cut: {error!r}; last events {events[-2:]}; fallback headers "
          f"{ {k: v for k, v in fallback.headers.items() if 'fallback' in k or 'model' in k} }")
    assert int(fallback.headers.get("x-litellm-attempted-fallbacks", "0")) >= 1

    # supervisord restarts the backend; the mesh is healthy again.
    wait_until(lambda: real_mesh.healthy() and real_mesh.status()["ov-server"]["healthy"],
               "ov-server to be healthy", 600)
    recovered = time.monotonic() - killed_at
    print(f"\nov-server killed mid-stream: healthy again after {recovered:.1f} s")
    assert real_mesh.chat("jerry-tiny").status_code == 200


def test_gateway_killed_is_restarted_and_clients_recover(real_mesh: RealMesh) -> None:
    if not real_mesh.key:
        pytest.fail("the real mesh did not come up (see test_up_real_mesh)")
    old = real_mesh.kill_group("litellm-orch")
    killed_at = time.monotonic()

    def answered() -> bool:
        try:
            return real_mesh.chat("jerry-tiny").status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(answered, "the gateway to answer again", 600)
    recovered = time.monotonic() - killed_at
    print(f"\nlitellm-orch killed: answering again after {recovered:.1f} s")
    assert real_mesh.status()["litellm-orch"]["pid"] not in (None, old)
    assert real_mesh.healthy()
