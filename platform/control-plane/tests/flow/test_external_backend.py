"""A backend the mesh does not run, end to end, on a private copy of this repository in a private
network namespace: `homelab new backend ov-ext --external URL` declares a real ov-server (serving
jerry-tiny) that this test starts and stops itself; `up` brings the real LiteLLM gateway up
while it is absent (a warning, not a failure), then waits for it once it runs; the server checks
a key, which the operator puts in the gateway's env file (`--gateway-auth`); the official
`openai` client chats with its model through the gateway; `health --models`, `status` and
mesh-status report it up, then down (in their words) when the test kills it, while the gateway
keeps serving the mesh's own backend (a scaffolded echo backend).

The steps share one mesh and run in file order; a step whose prerequisite failed is skipped with
the reason.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from meshkit.testing import Netns, ServerProcess, netns_unavailable
from meshkit.testing.netns import HOMELAB_CLI as CLI

REAL_REPO = Path(__file__).resolve().parents[4]
CLIENTS = Path(__file__).with_name("clients")
GATEWAY = "http://127.0.0.1:4000/v1"
EXT_PORT = 4999  # inside the namespace: nobody else's
# The key the external server expects; the operator puts it in the gateway's env file.
EXT_KEY = "ext-key-set-by-hand"
OV = "layer-inference/ov-server"
RUN = ["litellm-orch", "alpha"]


def _why_not() -> str | None:
    if shutil.which("uv") is None:
        return "uv is not installed"
    return netns_unavailable()


pytestmark = pytest.mark.skipif(_why_not() is not None, reason=str(_why_not()))


@dataclass
class Ext:
    root: Path
    ns: Netns
    work: Path
    done: set[str] = field(default_factory=set)
    key: str = ""
    server: ServerProcess | None = None

    def require(self, *steps: str) -> None:
        missing = [s for s in steps if s not in self.done]
        if missing:
            pytest.skip(f"needs the earlier step(s) {', '.join(missing)}")

    def env(self) -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "HOMELAB_REPO")}

    def homelab(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*CLI, "--repo", str(self.root), *args], cwd=self.root,
                              env=self.env(), capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)

    def mesh(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        return self.ns.homelab(self.root, *args, timeout=timeout)

    def in_env(self, project: str, *cmd: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        env = {**self.env(), "HOMELAB_MESH_VIEW": str(self.root / "mesh/view.json")}
        return self.ns.run(["uv", "run", "--frozen", "--quiet", "--project", str(self.root / project),
                            *cmd], cwd=self.root, env=env, timeout=timeout)

    def chat(self, model: str) -> subprocess.CompletedProcess[str]:
        return self.in_env("layer-gateway/litellm-orch", "python", str(CLIENTS / "openai_chat.py"),
                           GATEWAY, self.key, model, "hello")

    def sync(self, *projects: str) -> None:
        """uv environments, outside the namespace (it has no route to the package index)."""
        for project in projects:
            ok(subprocess.run(["uv", "sync", "--frozen", "--quiet", "--project",
                               str(self.root / project)], cwd=self.root, env=self.env(),
                              capture_output=True, text=True, timeout=900))

    def models(self) -> dict[str, dict]:
        out = self.mesh("health", "--models", "--json", timeout=120)
        return {m["name"]: m for m in json.loads(out.stdout)}

    def status(self) -> tuple[int, dict[str, dict]]:
        out = self.mesh("status", "--json", timeout=120)
        return out.returncode, {s["service"]: s for s in json.loads(out.stdout)["services"]}

    def start_external(self) -> None:
        """The real ov-server serving jerry-tiny, started by hand (not by the mesh)."""
        models = self.work / "models"
        ok(subprocess.run(["uv", "run", "--frozen", "--quiet", "--project", str(self.root / OV),
                           "ov-server", "build-tiny-model", str(models)], env=self.env(),
                          capture_output=True, text=True, timeout=600))
        registry = self.work / "registry.yaml"
        registry.write_text(yaml.safe_dump({"models": {"jerry-tiny": {
            "builtin": "jerry-tiny", "default_max_tokens": 8,
            "properties": {"INFERENCE_NUM_THREADS": 1, "ENABLE_CPU_PINNING": False,
                           "INFERENCE_PRECISION_HINT": "f32"}}}}))
        env = {**self.env(), "OV_SERVER_MODEL_DIR": str(models), "OV_SERVER_API_KEY": EXT_KEY}
        cmd = ["uv", "run", "--frozen", "--quiet", "--project", str(self.root / OV), "ov-server",
               "serve", "--host", "127.0.0.1", "--port", str(EXT_PORT), "--registry", str(registry)]
        with self.ns.entered():
            self.server = ServerProcess.start("ov-ext", cmd, log=self.work / "ov-ext.log",
                                              port=EXT_PORT, env=env, timeout=300)


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def _copy_repo(dst: Path) -> None:
    listed = subprocess.run(["git", "-C", str(REAL_REPO), "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], capture_output=True, check=True).stdout
    for rel in filter(None, listed.decode().split("\0")):
        if (REAL_REPO / rel).is_file():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REAL_REPO / rel, dst / rel)


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), "-c", "user.name=maintainer", "-c",
                    "user.email=m@example.invalid", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def ext(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ext]:
    work = tmp_path_factory.mktemp("ext")
    root = work / "homelab-llm"
    _copy_repo(root)
    spec = root / "layer-gateway/litellm-orch/SERVICE_SPEC.md"  # one worker: half the start time
    spec.write_text(spec.read_text().replace(
        '{name: LITELLM_NUM_WORKERS, file: config/env.local, default: "2"',
        '{name: LITELLM_NUM_WORKERS, file: config/env.local, default: "1"'))
    subprocess.run([*CLI, "--repo", str(root), "render"], check=True, capture_output=True)
    _git(root, "init", "-q")
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "the mesh as cloned")
    made = Ext(root, Netns.create("hlext"), work)
    try:
        yield made
    finally:
        if made.server is not None:
            made.server.stop()
        made.mesh("down", timeout=300)
        made.ns.close()


def test_declare_it(ext: Ext) -> None:
    ok(ext.homelab("new", "backend", "alpha", "-d", "Echo backend of the mesh.",
                   "--model", "jerry-alpha=alpha-1"))
    out = ok(ext.homelab("new", "backend", "ov-ext", "--external",
                         f"http://127.0.0.1:{EXT_PORT}/v1", "--model", "jerry-ext=jerry-tiny",
                         "--managed-by", "an ov-server started by the test", "--gateway-auth"))
    assert "created layer-inference/ov-ext/ (3 files)" in out
    folder = ext.root / "layer-inference/ov-ext"
    assert sorted(p.name for p in folder.iterdir()) == ["AGENTS.md", "ARCHITECTURE.md",
                                                         "SERVICE_SPEC.md"]
    assert ok(ext.homelab("check")) == ""
    assert ok(ext.homelab("render")) == ""  # nothing left to render
    view = json.loads((ext.root / "mesh/view.json").read_text())
    svc = next(s for s in view["services"] if s["name"] == "ov-ext")
    assert svc["managed"] == "external" and svc["url"] == f"http://127.0.0.1:{EXT_PORT}"
    assert {"address": "127.0.0.1", "port": EXT_PORT, "service": "ov-ext", "kind": "backend"} \
        in view["never_call"]
    ext.done.add("declared")


@pytest.mark.timeout(1200)
def test_up_without_it_warns_and_the_gateway_serves(ext: Ext) -> None:
    ext.require("declared")
    ext.sync(*(f"layer-gateway/{n}" if n == "litellm-orch" else f"layer-inference/{n}" for n in RUN),
             OV, "layer-tools/mesh-status")
    # A short wait keeps the test quick; the contract's default is 15 s.
    spec = ext.root / "layer-inference/ov-ext/SERVICE_SPEC.md"
    spec.write_text(spec.read_text().replace("api_path: /v1}", "api_path: /v1, wait_s: 2}"))
    out = ext.mesh("up", "--only", "litellm-orch", "--only", "alpha", "--timeout", "600",
                   timeout=1800)
    ok(out)
    warning = next((l for l in out.stderr.splitlines() if l.startswith("warning: ov-ext")), "")
    assert "ov-ext (external, not run by the mesh: an ov-server started by the test)" in warning, \
        out.stderr
    assert f"http://127.0.0.1:{EXT_PORT}/health" in warning and "start it where it runs" in warning
    assert "`homelab up --skip ov-ext` not to wait for it" in warning
    assert "litellm-orch starts without it" in warning
    assert re.search(r"litellm-orch\s+healthy", out.stdout), out.stdout
    assert "ov-server" not in out.stdout  # nothing else was started
    secrets = (ext.root / ".homelab/secrets.env").read_text().splitlines()
    ext.key = next(l.split("=", 1)[1] for l in secrets if l.startswith("LITELLM_MASTER_KEY="))
    assert json.loads(ok(ext.chat("jerry-alpha")))["content"] == "alpha (alpha-1) echoes: hello"
    assert ext.models()["jerry-ext"]["state"] == "down"
    # The operator gives the gateway the key the external server expects (`up` generated a random
    # one, which that server would refuse): the gateway's env file wins over secrets.env.
    env_local = ext.root / "layer-gateway/litellm-orch/config/env.local"
    text, n = re.subn(r"(?m)^OV_EXT_API_KEY=.*$", f"OV_EXT_API_KEY={EXT_KEY}", env_local.read_text())
    assert n == 1, env_local.read_text()
    env_local.write_text(text)
    ext.done.add("up")


@pytest.mark.timeout(900)
def test_started_by_hand_it_is_routed_and_up(ext: Ext) -> None:
    ext.require("up")
    ext.start_external()
    # `up` again: the external backend is waited for and found; the gateway restarts with the key.
    out = ok(ext.mesh("up", "--only", "litellm-orch", "--only", "alpha", "--timeout", "600",
                      timeout=900))
    assert re.search(r"ov-ext\s+external, healthy in [0-9.]+ s \(not run by the mesh\)", out), out
    assert "litellm-orch: restarting: changed since it started" in out, out
    # The server checks the key: without it, refused; through the gateway (which sends it), served.
    direct = ext.ns.run([sys.executable, "-c", DIRECT_CALL, str(EXT_PORT)], timeout=60)
    assert direct.stdout.strip() == "401", direct.stdout + direct.stderr
    chat = json.loads(ok(ext.chat("jerry-ext")))
    assert chat["content"] and chat["stream"]  # jerry-tiny's text is gibberish by design
    assert {"jerry-ext", "jerry-alpha"} <= set(chat["models"])
    assert ext.models()["jerry-ext"] == {"name": "jerry-ext", "state": "up", "path": "ov-ext"}
    _, rows = ext.status()  # exit 1: the rest of the mesh (ov-server ...) is not up here
    assert rows["ov-ext"]["state"] == "EXTERNAL" and rows["ov-ext"]["healthy"] is True
    assert rows["ov-ext"]["pid"] is None and rows["ov-ext"]["autostart"] is False
    ext.done.add("routed")


def test_stopped_it_is_reported_down_and_the_rest_serves(ext: Ext) -> None:
    ext.require("routed")
    assert ext.server is not None
    ext.server.stop()
    ext.server = None
    models = ext.models()
    assert models["jerry-ext"]["state"] == "down" and "ov-ext is down" in models["jerry-ext"]["path"]
    assert models["jerry-alpha"]["state"] == "up"
    health = ext.mesh("health", timeout=120)
    assert health.returncode == 1 and "ov-ext" in health.stdout  # a required probe failed
    _, rows = ext.status()
    row = rows["ov-ext"]
    assert row["healthy"] is False and "start it where it runs" in row["problem"]
    assert "not run by the mesh" in row["problem"]
    assert row["autostart"] is False  # what `status` counts for its exit code: never an external
    failed = ext.chat("jerry-ext")
    assert failed.returncode != 0  # the gateway answers with an error for its name
    assert json.loads(ok(ext.chat("jerry-alpha")))["content"] == "alpha (alpha-1) echoes: hello"
    # Known to be off: `up --skip` does not wait for it, and says so.
    again = ext.mesh("up", "--only", "litellm-orch", "--only", "alpha", "--skip", "ov-ext",
                     timeout=600)
    assert re.search(r"ov-ext\s+external, not waited for \(--skip\)", ok(again)), again.stdout
    assert "warning: ov-ext" not in again.stderr
    # mesh-status (reads the view) says it in words.
    words = ext.in_env("layer-tools/mesh-status", "python", "-c", MESH_STATUS_WORDS)
    text = ok(words)
    assert "ov-ext (" in text and "external, not run by the mesh" in text and "DOWN" in text, text


DIRECT_CALL = """
import json, sys, urllib.error, urllib.request
body = json.dumps({"model": "jerry-tiny", "messages": [{"role": "user", "content": "hi"}]}).encode()
req = urllib.request.Request(f"http://127.0.0.1:{sys.argv[1]}/v1/chat/completions", data=body,
                             headers={"Content-Type": "application/json"})
try:
    print(urllib.request.urlopen(req, timeout=30).status)
except urllib.error.HTTPError as exc:
    print(exc.code)
"""

MESH_STATUS_WORDS = """
import asyncio
from meshkit.view import load_view
from mesh_status import health, summaries, views
view = load_view()
rows = asyncio.run(health.check(health.probe_targets(view)))
rows = [r for r in rows if r["service"] == "ov-ext"]
print(summaries.health_summary(view, rows, "ov-ext", views.list_models(view)))
"""
