"""A baseline the code under test did not build.

Every other test mesh is made by `homelab new` (plan_new) and `render_all` and then found clean by
`check`: a mistake shared by the renderer and the rules (a wrong port in a route, a key sent to
the wrong service) would pass all of them. Here a person wrote both the contracts and what the
derived files must say (router entries, env templates, units, MCP registry rows), read from the
contracts by hand. The renderer must produce exactly that, and `check` must find that mesh clean.
The synthetic mesh of conftest.py is held to the same hand-written expectations.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from homelab.load.repo import load_repo
from homelab.render.plan import EXECUTABLE, render_all
from homelab.render.writer import write_all
from homelab.rules.engine import run_checks

from conftest import APPROVALS, DOCS, GATEWAY_SPEC, git, write

MESH = """\
name: handmesh
gateway: {service: gw, public_base_url: "http://127.0.0.1:4000/v1"}
hosts:
  - {name: box, address: 127.0.0.1, role: all-in-one}
"""
PORTS = """\
ports:
  - {host: box, port: 4000, service: gw, since: 2026-11-01}
  - {host: box, port: 4010, service: ov, since: 2026-11-01}
  - {host: box, port: 4020, service: opt, since: 2026-11-01}
  - {host: box, port: 4030, service: agent, since: 2026-11-01}
  - {host: box, port: 4040, service: fetcher, since: 2026-11-01}
"""
# The gateway also holds the key it sends to ov (ov's gateway_auth_env).
GW = GATEWAY_SPEC.replace(
    "  - {name: LITELLM_MASTER_KEY, required: true, secret: true, file: config/env.local}\n",
    "  - {name: LITELLM_MASTER_KEY, required: true, secret: true, file: config/env.local}\n"
    "  - {name: OV_KEY, required: true, secret: true, file: config/env.local}\n").replace(
    "systemd: {unit: homelab-gw.service}\n", "upstreams: [ov, opt]\nsystemd: {unit: homelab-gw.service}\n")
SPECS = {
    "layer-inference/ov": """\
name: ov
kind: backend
layer: inference
description: Hand-written backend with two models and a key.
host: box
bind: 127.0.0.1
port: 4010
endpoints:
  - {method: POST, path: /v1/chat/completions}
  - {method: GET, path: /v1/models}
  - {method: GET, path: /health}
health: {path: /health}
env_file: /etc/homelab-llm/ov.env
env:
  - {name: OV_KEY, secret: true, file: /etc/homelab-llm/ov.env, description: Bearer key the gateway sends.}
  - {name: OV_THREADS, file: /etc/homelab-llm/ov.env, default: "2", description: Inference threads.}
run:
  command: [uv, run, ov, --host, "{bind}", --port, "{port}"]
systemd: {unit: homelab-ov.service}
gateway_auth_env: OV_KEY
models:
  - {name: jerry-small, upstream_id: small-1b}
  - {name: jerry-big, upstream_id: big-7b, fallbacks: [jerry-small]}
""",
    "layer-gateway/opt": """\
name: opt
kind: optimizer
layer: gateway
description: Hand-written optimizer with one approach.
host: box
bind: 127.0.0.1
port: 4020
endpoints:
  - {method: POST, path: /v1/chat/completions}
  - {method: GET, path: /v1/models}
  - {method: GET, path: /health}
health: {path: /health}
env_file: /etc/homelab-llm/opt.env
run:
  command: [uv, run, opt, --host, "{bind}", --port, "{port}"]
  after: [gw]
upstreams: [gw]
systemd: {unit: homelab-opt.service}
aliases:
  - {name: jerry-big-moa, approach: moa, target: jerry-big}
""",
    "layer-orchestration/agent": """\
name: agent
kind: client
layer: orchestration
description: Hand-written client of the gateway.
host: box
bind: 127.0.0.1
port: 4030
endpoints:
  - {method: GET, path: /health}
health: {path: /health}
env_file: /etc/homelab-llm/agent.env
env:
  - {name: AGENT_API_BASE, file: /etc/homelab-llm/agent.env, default: "http://127.0.0.1:4000/v1", description: Gateway URL.}
  - {name: AGENT_MODEL, file: /etc/homelab-llm/agent.env, default: jerry-big-moa, description: Model name.}
  - {name: AGENT_API_KEY, secret: true, file: /etc/homelab-llm/agent.env, description: Gateway key.}
run:
  command: [uv, run, agent, --host, "{bind}", --port, "{port}"]
  after: [gw]
upstreams: [gw]
systemd: {unit: homelab-agent.service}
client:
  api_base_env: AGENT_API_BASE
  model_env: AGENT_MODEL
  default_api_base: http://127.0.0.1:4000/v1
  default_model: jerry-big-moa
""",
    "layer-tools/fetcher": """\
name: fetcher
kind: mcp-tool
layer: tools
description: Hand-written MCP tool server.
host: box
bind: 127.0.0.1
port: 4040
endpoints:
  - {method: POST, path: /mcp}
  - {method: GET, path: /health}
health: {path: /health}
env_file: /etc/homelab-llm/fetcher.env
run:
  command: [uv, run, fetcher, --host, "{bind}", --port, "{port}"]
systemd: {unit: homelab-fetcher.service}
mcp:
  purpose: Read a page.
  transport: streamable-http
  path: /mcp
  stdio_command: [uv, run, fetcher, --transport, stdio]
  tools:
    - name: fetch
      description: Fetch a URL as text.
      inputs: {url: "string: the page"}
      outputs: the page's text
      failure_modes: [unreachable host]
""",
}

# ---- What a person reading the contracts above expects the derived files to say. ----
ROUTES = [  # router.yaml model_list: one entry per backend model, then per optimizer alias
    {"model_name": "jerry-small", "litellm_params": {
        "model": "openai/small-1b", "api_base": "http://127.0.0.1:4010/v1",
        "api_key": "os.environ/OV_KEY"}},
    {"model_name": "jerry-big", "litellm_params": {
        "model": "openai/big-7b", "api_base": "http://127.0.0.1:4010/v1",
        "api_key": "os.environ/OV_KEY"}},
    {"model_name": "jerry-big-moa", "litellm_params": {  # opt declares no key: LiteLLM needs one
        "model": "openai/moa-jerry-big", "api_base": "http://127.0.0.1:4020/v1",
        "api_key": "none"}},
]
FALLBACKS = [{"jerry-big": ["jerry-small"]}]
ENV_TEMPLATES = {  # the KEY=VALUE lines; secrets are left for the person installing it
    "layer-gateway/gw/config/env.local.example": {"LITELLM_MASTER_KEY": "", "OV_KEY": ""},
    "platform/ops/env/ov.env.example": {"OV_KEY": "", "OV_THREADS": "2"},
    "platform/ops/env/agent.env.example": {"AGENT_API_BASE": "http://127.0.0.1:4000/v1",
                                           "AGENT_MODEL": "jerry-big-moa", "AGENT_API_KEY": ""},
}
UNITS = {  # directives that follow from each contract (the unit has more, shared by all)
    "homelab-ov.service": {
        "ExecStart": ["/usr/bin/env uv run ov --host 127.0.0.1 --port 4010"],
        "WorkingDirectory": ["/opt/homelab-llm/layer-inference/ov"],
        "EnvironmentFile": ["-/etc/homelab-llm/ov.env"],
        "After": ["network-online.target"],
        "User": ["homelab"]},
    "homelab-opt.service": {
        "ExecStart": ["/usr/bin/env uv run opt --host 127.0.0.1 --port 4020"],
        "After": ["network-online.target homelab-gw.service"],
        "IPAddressDeny": ["any"], "IPAddressAllow": ["localhost"]},  # optimizers stay local
    "homelab-gw.service": {
        "ExecStart": ["/usr/bin/env scripts/start.sh --port 4000"],
        "EnvironmentFile": ["-/opt/homelab-llm/layer-gateway/gw/config/env.local"]},
}
REGISTRY = {"fetcher": {
    "transport": "streamable-http", "host": "box", "url": "http://127.0.0.1:4040/mcp",
    "port": 4040, "stdio": {"command": "uv", "args": ["run", "--project", "layer-tools/fetcher",
                                                      "fetcher", "--transport", "stdio"]}}}


def _write_hand_mesh(root: Path) -> None:
    files = {"mesh/mesh.yaml": MESH, "mesh/ports.yaml": PORTS, "mesh/approvals.yaml": APPROVALS,
             ".gitignore": "env.local\n", "layer-gateway/gw/SERVICE_SPEC.md": GW,
             "layer-gateway/gw/config/router.yaml":
                 "# hand-tuned\nrouter_settings:\n  num_retries: 0  # fail fast\n"
                 "general_settings:\n  master_key: os.environ/LITELLM_MASTER_KEY\n", **DOCS}
    for folder, spec in SPECS.items():
        name = folder.rsplit("/", 1)[1]
        files[f"{folder}/SERVICE_SPEC.md"] = f"---\n{spec}---\n# {name}\n"
    for folder in [*SPECS, "layer-gateway/gw"]:
        name = folder.rsplit("/", 1)[1]
        files.update({f"{folder}/AGENTS.md": f"# {name}: how to work on it\n",
                      f"{folder}/ARCHITECTURE.md": f"# {name}: how it is built\n",
                      f"{folder}/pyproject.toml": f"[project]\nname = '{name}'\n",
                      f"{folder}/uv.lock": "version = 1\n"})
    for rel, text in files.items():
        write(root, rel, text)


@pytest.fixture(scope="module")
def hand_mesh(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hand")
    _write_hand_mesh(root)
    write_all(root, render_all(load_repo(root)), EXECUTABLE)
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "hand mesh")
    return root


def _env_lines(path: Path) -> dict[str, str]:
    lines = [ln for ln in path.read_text().splitlines() if ln and not ln.startswith("#")]
    return dict(ln.split("=", 1) for ln in lines)


def _unit(path: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            out.setdefault(key, []).append(value)
    return out


def test_render_writes_what_a_person_expects(hand_mesh: Path) -> None:
    router_text = (hand_mesh / "layer-gateway/gw/config/router.yaml").read_text()
    router = yaml.safe_load(router_text)
    assert router["model_list"] == ROUTES
    assert router["router_settings"]["fallbacks"] == FALLBACKS
    assert "num_retries: 0  # fail fast" in router_text  # the hand-tuned part is kept
    for rel, expected in ENV_TEMPLATES.items():
        assert _env_lines(hand_mesh / rel) == expected, rel
    for unit, directives in UNITS.items():
        found = _unit(hand_mesh / "platform/ops/systemd" / unit)
        assert {k: found.get(k) for k in directives} == directives, unit
    servers = yaml.safe_load((hand_mesh / "layer-tools/registry.yaml").read_text())["servers"]
    assert {name: {k: row[k] for k in REGISTRY[name]} for name, row in servers.items()} == REGISTRY


def test_check_finds_the_hand_written_mesh_clean(hand_mesh: Path) -> None:
    violations = run_checks(load_repo(hand_mesh), None)
    assert violations == [], "\n".join(v.as_text() for v in violations)


@pytest.mark.parametrize(("rel", "old", "new", "code"), [
    # A route to the wrong port, a key sent to the wrong place, a unit running another command:
    ("layer-gateway/gw/config/router.yaml", "127.0.0.1:4010", "127.0.0.1:4020", "HL801"),
    ("layer-gateway/gw/config/router.yaml", "os.environ/OV_KEY", "none", "HL801"),
    ("platform/ops/systemd/homelab-ov.service", "--port 4010", "--port 4011", "HL801"),
    ("layer-tools/registry.yaml", "http://127.0.0.1:4040/mcp", "http://127.0.0.1:4041/mcp",
     "HL801"),
])
def test_check_flags_a_derived_file_that_differs_from_the_hand_written_one(
        hand_mesh: Path, tmp_path: Path, rel: str, old: str, new: str, code: str) -> None:
    root = tmp_path / "mesh"
    subprocess.run(["cp", "-a", str(hand_mesh), str(root)], check=True)
    path = root / rel
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, new))
    assert {(v.code, v.path) for v in run_checks(load_repo(root), None)} == {(code, rel)}


def test_synthetic_mesh_agrees_with_a_person_reading_its_ledger(mesh: Path) -> None:
    """conftest's mesh (made by `homelab new`) against expectations written here, with each
    service's port read from the ledger by plain YAML (not the control plane's loader)."""
    ledger = yaml.safe_load((mesh / "mesh/ports.yaml").read_text())["ports"]
    port = {e["service"]: e["port"] for e in ledger if e.get("status", "active") == "active"}
    router = yaml.safe_load((mesh / "layer-gateway/gw/config/router.yaml").read_text())
    assert router["model_list"] == [
        {"model_name": "jerry-small", "litellm_params": {
            "model": "openai/small-1b", "api_base": f"http://127.0.0.1:{port['ov']}/v1",
            "api_key": "none"}},
        {"model_name": "jerry-small-moa", "litellm_params": {
            "model": "openai/moa-jerry-small", "api_base": f"http://127.0.0.1:{port['opt']}/v1",
            "api_key": "none"}},
    ]
    agent_env = _env_lines(mesh / "platform/ops/env/agent.env.example")
    assert agent_env["AGENT_API_BASE"] == "http://127.0.0.1:4000/v1"  # mesh.yaml's gateway URL
    assert agent_env["AGENT_API_KEY"] == ""
    ov_unit = _unit(mesh / "platform/ops/systemd/homelab-ov.service")
    assert ov_unit["ExecStart"] == [f"/usr/bin/env uv run ov --host 127.0.0.1 --port {port['ov']}"]
    fetcher = yaml.safe_load((mesh / "layer-tools/registry.yaml").read_text())["servers"]["fetcher"]
    assert fetcher["url"] == f"http://127.0.0.1:{port['fetcher']}/mcp"
    assert fetcher["port"] == port["fetcher"]
