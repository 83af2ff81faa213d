"""End-to-end fixtures: the REAL gateway (the mesh's own, layer-gateway/litellm-orch: LiteLLM
behind our launcher and middleware, from its own environment) in front of a scripted backend,
the real MCP tool servers (uv projects in layer-tools/), a fake mesh repo whose contracts
describe exactly these processes, and a loopback page for web-fetch.
Everything listens on 127.0.0.1 on free ports; nothing uses the contract ports. Shared helpers
(free_port, ServerProcess, the recording OpenAI double) come from meshkit.testing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import scripted_backend
import uvicorn
import yaml
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from meshkit.testing import OpenAIDouble, ServerProcess, free_port, gateway_env
from meshkit.testing import spawn_gateway as spawn_gateway_process
from meshkit.testing.gateway import HEALTH as GATEWAY_HEALTH

HERE = Path(__file__).parent
SERVICE_DIR = HERE.parent
REPO = SERVICE_DIR.parent.parent
GATEWAY_SERVICE = REPO / "layer-gateway" / "litellm-orch"
MASTER_KEY = "sk-test-tiny-agents-master"
SERVE_KEY = "test-serve-key-for-http-mode-0001"  # homelab: allow-secret (a test value)
PAGE = """<!DOCTYPE html><html><head><title>Mesh Field Notes</title></head><body>
<nav>Home | About | Login</nav><article><h1>Mesh Field Notes</h1>
<p>The gateway is the only door into the mesh; every client calls it and nothing else.</p>
<p>Pelican-unique-marker-4242 is written only in this article, so an answer quoting it read the page.</p>
<p>Backends listen on loopback and tools are listed in the MCP registry with their failure modes.</p>
</article><footer>Cookie banner. Newsletter.</footer></body></html>"""


def serve_in_thread(app, port: int) -> uvicorn.Server:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "in-thread server did not start"
        time.sleep(0.02)
    return server


@pytest.fixture(scope="session")
def backend() -> Iterator[OpenAIDouble]:
    """The scripted backend (meshkit's recording OpenAI double playing scripted_backend.script)."""
    with scripted_backend.make_backend() as double:
        yield double


@pytest.fixture(scope="session")
def backend_url(backend: OpenAIDouble) -> str:
    return backend.base


@pytest.fixture(scope="session")
def page_url() -> str:
    async def page(_):
        return HTMLResponse(PAGE)
    port = free_port()
    server = serve_in_thread(Starlette(routes=[Route("/notes", page)]), port)
    yield f"http://127.0.0.1:{port}/notes"
    server.should_exit = True


def gateway_config(model_list: list[dict], request_timeout: int) -> dict:
    """The mesh's rendered router.yaml (auth, no telemetry, fail-fast routing: what users run)
    routing only `model_list`, without the mesh's fallbacks (they name models not served here)."""
    config = yaml.safe_load((GATEWAY_SERVICE / "config" / "router.yaml").read_text())
    config["model_list"] = model_list
    config["litellm_settings"]["request_timeout"] = request_timeout
    config["router_settings"]["fallbacks"] = []
    return config


def spawn_gateway(work: Path, model_list: list[dict], request_timeout: int) -> ServerProcess:
    """The gateway as `homelab up` starts it (meshkit.testing's starter: scripts/start.sh, the one
    litellm-orch's own suite uses), one worker, on a free loopback port. Started, not waited for."""
    if shutil.which("uv") is None:
        pytest.fail("uv is required to run the test gateway (pip install uv)")
    return spawn_gateway_process(REPO, work, gateway_config(model_list, request_timeout),
                                 gateway_env(LITELLM_MASTER_KEY=MASTER_KEY), workers=1)


@pytest.fixture(scope="session")
def gateway(backend_url, tmp_path_factory) -> Iterator[ServerProcess]:
    """The real gateway with one logical model, jerry-scripted -> the scripted backend."""
    work = tmp_path_factory.mktemp("gateway")
    with spawn_gateway(work, [{"model_name": "jerry-scripted", "litellm_params": {
            "model": "openai/jerry-scripted", "api_base": f"{backend_url}/v1",
            "api_key": scripted_backend.BACKEND_KEY}}], request_timeout=120) as gw:
        # First run syncs the gateway's environment (~1 min on a clean machine), then ~6 s start-up.
        gw.wait_healthy(GATEWAY_HEALTH, 300)
        yield gw


@pytest.fixture(scope="session")
def gateway_url(gateway: ServerProcess) -> str:
    return f"{gateway.base}/v1"


def fail_if_any_died(procs: list[ServerProcess]) -> None:
    """A server that died fails the test it died in, with its exit code and log tail; without
    this, every later test only says "unreachable" and the cause is lost with tmp."""
    dead = [p for p in procs if not p.alive()]
    if dead:
        pytest.fail("\n".join(f"the test {p.name} died (exit {p.popen.returncode}); log tail ({p.log}):\n"
                              f"{p.log_tail()}" for p in dead), pytrace=False)


@pytest.fixture(autouse=True)
def _gateway_outlives_the_test(request) -> Iterator[None]:
    yield
    if "gateway" in request.fixturenames:
        fail_if_any_died([request.getfixturevalue("gateway")])


def tool_python(name: str) -> str:
    """The interpreter of layer-tools/<name>'s own environment (synced on first use)."""
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    out = subprocess.run(["uv", "run", "--frozen", "--project", str(REPO / "layer-tools" / name), "python", "-c",
                          "import sys; print(sys.executable)"], env=env, capture_output=True, text=True,
                         timeout=600, stdin=subprocess.DEVNULL, check=True)
    return out.stdout.strip()


@dataclass(frozen=True)
class Mesh:
    root: Path  # a fake checkout: only mesh/view.json
    gateway_url: str
    backend_url: str
    page_url: str
    view: Path  # mesh/view.json (HOMELAB_MESH_VIEW): the agent's and mesh-status's mesh
    servers: tuple[ServerProcess, ...] = ()  # what must stay up for the test (fail_if_any_died)


def mcp_server(name: str, command: str, args: list[str]) -> dict:
    """One MCP server entry of a view, started over stdio with `command args`."""
    return {"name": name, "purpose": name, "transport": "streamable-http", "host": "local",
            "url": "http://127.0.0.1:9/mcp", "port": 9, "stdio": {"command": command, "args": args},
            "tools": []}


def view_doc(gateway_url: str, gw_port: int, backend_port: int, model: str,
             mcp: list[dict] | None = None) -> dict:
    """A mesh view (what `homelab render` writes to mesh/view.json): the gateway (our LiteLLM) and
    `ov-server` at `backend_port`, serving `model`, and the MCP servers `mcp`. Both the agent and
    the mesh-status it spawns read it (HOMELAB_MESH_VIEW)."""
    def service(name: str, kind: str, layer: str, port: int, health: str) -> dict:
        return {"name": name, "kind": kind, "layer": layer, "host": "local", "bind": "127.0.0.1",
                "port": port, "exposure": "localhost", "address": "127.0.0.1",
                "url": f"http://127.0.0.1:{port}",
                "health": {"url": f"http://127.0.0.1:{port}{health}",
                           "local_url": f"http://127.0.0.1:{port}{health}", "expect_status": 200,
                           "expect_body": "", "timeout_s": 3.0, "required": True, "auth_env": None},
                "upstreams": [], "autostart": True}

    return {"format": 1, "generated_by": "tests/conftest.py", "mesh": "testmesh",
            "gateway": {"service": "litellm-orch", "url": gateway_url},
            "hosts": [{"name": "local", "address": "127.0.0.1", "role": "everything"}],
            "services": [service("litellm-orch", "gateway", "gateway", gw_port, "/health/liveliness"),
                         service("ov-server", "backend", "inference", backend_port, "/health")],
            "routes": [{"name": model, "kind": "model", "service": "ov-server", "upstream_id": model,
                        "fallbacks": [], "approach": None, "target": None}],
            "mcp_servers": mcp or [],
            "never_call": [{"address": "127.0.0.1", "port": backend_port, "service": "ov-server",
                            "kind": "backend"}]}


def write_view(root: Path, gateway_url: str, gw_port: int, backend_port: int, model: str,
               mcp: list[dict] | None = None) -> Path:
    path = root / "mesh" / "view.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(view_doc(gateway_url, gw_port, backend_port, model, mcp)))
    return path


@pytest.fixture(scope="session")
def mesh(tmp_path_factory, gateway_url, backend_url, page_url) -> Mesh:
    """A fake checkout: its view says the gateway is our LiteLLM and jerry-tiny is served by
    `ov-server` at the scripted backend's address; its MCP servers are the REAL tool servers."""
    root = tmp_path_factory.mktemp("repo")
    gw_port = int(gateway_url.split(":")[2].split("/")[0])
    be_port = int(backend_url.rsplit(":", 1)[1])
    # The real tool servers, started with their own environment's interpreter: the same code the
    # registry's `uv run --project ...` starts, minus uv's per-spawn overhead (dozens of spawns
    # here). The `uv run` form itself is covered by test_config's real-view test and the
    # agent.json test. web-fetch gets WEB_FETCH_ALLOW from agent_env (the agent forwards it).
    web_fetch, mesh_status = tool_python("web-fetch"), tool_python("mesh-status")
    view = write_view(root, gateway_url, gw_port, be_port, "jerry-tiny", [
        mcp_server("web-fetch", web_fetch, ["-m", "web_fetch.cli", "--transport", "stdio"]),
        mcp_server("mesh-status", mesh_status, ["-m", "mesh_status.cli", "--transport", "stdio"])])
    return Mesh(root, gateway_url, backend_url, page_url, view)


def agent_env(mesh: Mesh, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TINYAGENTS_", "HOMELAB_", "WEB_FETCH_"))}
    env.pop("VIRTUAL_ENV", None)
    env.update({"HOMELAB_MESH_VIEW": str(mesh.view), "WEB_FETCH_ALLOW": "127.0.0.1",
                "TINYAGENTS_MODEL": "jerry-scripted",
                "TINYAGENTS_API_KEY": MASTER_KEY, "TINYAGENTS_SERVE_KEY": SERVE_KEY})
    env.update(extra)
    return env


def run_agent(mesh: Mesh, *args: str, env: dict[str, str] | None = None, input: str | None = None,
              timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tiny_agents.cli", *args], env=env or agent_env(mesh),
                          input=input, stdin=None if input is not None else subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout)


@contextmanager
def serving(mesh: Mesh, *args: str, env: dict[str, str] | None = None) -> Iterator[ServerProcess]:
    """`tiny-agents serve` on a free loopback port. Its output goes to a file, `.log` (a pipe
    nobody reads would fill up and block the server). Stopped and waited for however the block ends."""
    port = free_port()
    log = Path(tempfile.mkdtemp(prefix="tiny-agents-serve-")) / "serve.log"
    with ServerProcess.start("tiny-agents serve",
                             [sys.executable, "-m", "tiny_agents.cli", "serve", "--port", str(port), *args],
                             log=log, port=port, env=env or agent_env(mesh), timeout=120) as served:
        yield served


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
