"""`homelab new`: the contributor guide as one command; the result passes `check` at once, is
wired into the contracts that depend on it, and follows the ledger's port layout."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import edit, git, violations
from test_bad_input import run_cli

from homelab.load.repo import load_repo
from homelab.testrun import suites

GW = "layer-gateway/gw/SERVICE_SPEC.md"
AGENT = "layer-orchestration/agent/SERVICE_SPEC.md"


def front(mesh: Path, rel: str) -> dict:
    return yaml.safe_load((mesh / rel).read_text().split("---")[1])


def ledger_port(mesh: Path, service: str) -> int:
    ledger = yaml.safe_load((mesh / "mesh/ports.yaml").read_text())["ports"]
    mine = [p for p in ledger if p["service"] == service]
    assert len(mine) == 1
    return mine[0]["port"]


def test_new_backend_with_fallback_and_auth_is_wired_everywhere(mesh: Path) -> None:
    code, out, err = run_cli(mesh, "new", "backend", "demo", "-d", "Demo box", "--model",
                             "jerry-demo=demo-7b", "--fallback", "jerry-small", "--gateway-auth")
    assert code == 0, out + err
    assert violations(mesh) == []
    assert violations(mesh, base="HEAD") == []  # appending to the ledger is fine in review
    spec = front(mesh, "layer-inference/demo/SERVICE_SPEC.md")
    assert spec["models"] == [{"name": "jerry-demo", "upstream_id": "demo-7b", "fallbacks": ["jerry-small"]}]
    assert spec["gateway_auth_env"] == "DEMO_API_KEY"
    assert spec["test"] == {"command": ["uv", "run", "pytest", "-q"]}
    # The gateway calls it, starts after it, and sends it a key it declares.
    gw = front(mesh, GW)
    assert "demo" in gw["upstreams"] and "demo" in gw["run"]["after"]
    assert {"name": "DEMO_API_KEY", "required": True, "secret": True, "file": "config/env.local",
            "description": "Key the gateway sends to demo."} in gw["env"]
    router = yaml.safe_load((mesh / "layer-gateway/gw/config/router.yaml").read_text())
    entry = next(m for m in router["model_list"] if m["model_name"] == "jerry-demo")
    assert entry["litellm_params"] == {"model": "openai/demo-7b", "api_key": "os.environ/DEMO_API_KEY",
                                       "api_base": f"http://127.0.0.1:{ledger_port(mesh, 'demo')}/v1"}
    assert {"jerry-demo": ["jerry-small"]} in router["router_settings"]["fallbacks"]
    assert router["router_settings"]["num_retries"] == 0  # the hand-tuned rest is kept
    # The server lists what the gateway sends (the upstream id), not the public name.
    server = (mesh / "layer-inference/demo/src/demo/server.py").read_text()
    assert "MODELS = ('demo-7b',)" in server and 'KEY_ENV = "DEMO_API_KEY"' in server
    assert "demo" in [s.name for s in suites(load_repo(mesh))]  # `./homelab test demo` works
    for rel in ("platform/ops/systemd/homelab-demo.service", "platform/ops/env/demo.env.example",
                "layer-inference/demo/tests/test_demo.py", "layer-inference/demo/uv.lock"):
        assert (mesh / rel).is_file(), rel
    assert '"demo|box|' in (mesh / "platform/ops/scripts/healthcheck.sh").read_text()
    assert "| demo |" in (mesh / "docs/foundation/topology.md").read_text()
    lock = (mesh / "layer-inference/demo/uv.lock").read_text()
    assert 'name = "pytest"' in lock  # locked for real: `uv run --frozen pytest` works


@pytest.mark.parametrize(("kind", "block"), [("backend", 4010), ("optimizer", 4020),
                                             ("client", 4030), ("mcp-tool", 4040)])
def test_new_ports_follow_the_ledgers_layout(mesh: Path, kind: str, block: int) -> None:
    """40x0-40x9 by kind; the fixture has one service of each kind at 40x0 already."""
    extra = ["--approach", "bon"] if kind == "optimizer" else []
    code, out, err = run_cli(mesh, "new", kind, "two", "-d", "A second one.", *extra)
    assert code == 0, out + err
    assert ledger_port(mesh, "two") == block + 1


def test_new_port_skips_retired_ports(mesh: Path) -> None:
    edit(mesh, "mesh/ports.yaml", "ports:\n", "ports:\n  - {host: box, port: 4011, service: gone, "
         "status: retired, since: 2026-01-01, retired: 2026-02-01}\n")
    code, out, err = run_cli(mesh, "new", "backend", "b2", "-d", "Second backend.")
    assert code == 0, out + err
    assert ledger_port(mesh, "b2") == 4012


@pytest.mark.parametrize("kind", ["client", "optimizer", "mcp-tool"])
def test_every_kind_passes_check(mesh: Path, kind: str) -> None:
    extra = ["--approach", "bon"] if kind == "optimizer" else []  # moa is served by the fixture's
    code, out, err = run_cli(mesh, "new", kind, f"x-{kind.replace('-', '')}", "-d", "Does x.", *extra)
    assert code == 0, out + err
    assert violations(mesh) == []
    folder = next(mesh.glob("layer-*/x-*"))
    for doc in ("SERVICE_SPEC.md", "AGENTS.md", "ARCHITECTURE.md"):
        assert "TODO" not in (folder / doc).read_text()


def test_new_mcp_tool_is_a_real_server_in_the_registry_and_its_agents(mesh: Path) -> None:
    edit(mesh, AGENT, "default_model: jerry-small", "default_model: jerry-small\n  mcp_registry: true")
    edit(mesh, AGENT, "upstreams: [gw]", "upstreams: [gw, fetcher]")
    edit(mesh, AGENT, "  after: [gw]", "  after: [gw, fetcher]")
    assert violations(mesh) == [v for v in violations(mesh) if v.code == "HL801"]
    code, out, err = run_cli(mesh, "new", "mcp-tool", "clock", "-d", "Tells the time.", "--tool", "get_time")
    assert code == 0, out + err
    assert violations(mesh) == []
    agent = front(mesh, AGENT)
    assert agent["upstreams"] == ["gw", "fetcher", "clock"] and agent["run"]["after"] == ["gw", "fetcher", "clock"]
    registry = yaml.safe_load((mesh / "layer-tools/registry.yaml").read_text())["servers"]["clock"]
    assert registry["url"] == "http://127.0.0.1:4041/mcp"
    tool = registry["tools"]["get_time"]
    assert set(tool["inputs"]) == {"text", "times"} and "TODO" not in str(registry)
    folder = mesh / "layer-tools/clock"
    server = (folder / "src/clock/server.py").read_text()
    assert "from mcp.server.mcpserver import MCPServer" in server and "TOOLS = ('get_time',)" in server
    assert '@server.custom_route("/health"' in server
    pyproject = (folder / "pyproject.toml").read_text()
    reference = (Path(__file__).resolve().parents[3] / "layer-tools/mesh-status/pyproject.toml").read_text()
    mcp_pin = next(line.strip().rstrip(",") for line in reference.splitlines() if '"mcp==' in line)
    assert mcp_pin in pyproject  # the SDK version the mesh's tools pin
    test = (folder / "tests/test_clock.py").read_text()
    assert "StdioServerParameters" in test and "test_streamable_http" in test


def test_new_stdio_only_tool_has_no_port(mesh: Path) -> None:
    before = (mesh / "mesh/ports.yaml").read_text()
    code, out, err = run_cli(mesh, "new", "mcp-tool", "notes", "-d", "Searches notes.", "--transport",
                             "stdio", "--tool", "search_notes")
    assert code == 0, out + err
    assert (mesh / "mesh/ports.yaml").read_text() == before
    spec = front(mesh, "layer-tools/notes/SERVICE_SPEC.md")
    assert "port" not in spec and "systemd" not in spec and spec["run"]["autostart"] is False
    assert spec["mcp"]["stdio_command"] == ["uv", "run", "notes", "--transport", "stdio"]
    assert violations(mesh) == []


def test_lan_backend_refused_without_approval(mesh: Path) -> None:
    code, _, err = run_cli(mesh, "new", "backend", "lanbox", "-d", "x", "--bind", "0.0.0.0")
    assert code == 2 and "--bind: binding 0.0.0.0 exposes lanbox on the LAN" in err
    assert git(mesh, "status", "--porcelain") == ""


def test_lan_backend_with_recorded_approval(mesh: Path) -> None:
    code, out, err = run_cli(mesh, "new", "backend", "lanbox", "-d", "GPU box.", "--bind", "0.0.0.0",
                             "--approved-by", "alice", "--reviewer", "bob", "--reason", "GPU box serves the LAN")
    assert code == 0, out + err
    approvals = yaml.safe_load((mesh / "mesh/approvals.yaml").read_text())["approvals"]
    assert approvals[-1] | {"date": None} == {"id": "LAN-0002", "service": "lanbox", "host": "box",
                                              "who": "alice", "reviewer": "bob", "date": None,
                                              "reason": "GPU box serves the LAN"}
    assert violations(mesh) == []


def test_optimizer_can_never_be_lan(mesh: Path) -> None:
    code, _, err = run_cli(mesh, "new", "optimizer", "opt2", "-d", "x", "--bind", "0.0.0.0",
                           "--approved-by", "a", "--reviewer", "b", "--reason", "c")
    assert code == 2 and "an optimizer binds loopback only" in err
    assert git(mesh, "status", "--porcelain") == ""


@pytest.mark.parametrize(("args", "message"), [
    (["backend", "Bad_Name", "-d", "x"], "NAME: lowercase letters"),
    (["backend", "ov", "-d", "x"], "NAME: a service named ov exists"),
    (["backend", "b2"], "--description: say in one line what b2 does"),
    (["backend", "b2", "-d", "TODO later"], "--description: a description is what the service does"),
    (["backend", "b2", "-d", "x", "--model", "nope"], "--model: expected PUBLIC=UPSTREAM_ID"),
    (["backend", "b2", "-d", "x", "--model", "gpt4=x"], "--model: public name 'gpt4' does not match"),
    (["backend", "b2", "-d", "x", "--model", "jerry-small=x"], "--model: public name 'jerry-small' is already served"),
    (["backend", "b2", "-d", "x", "--fallback", "jerry-nope"], "--fallback: 'jerry-nope' is not a public model name"),
    (["client", "c2", "-d", "x", "--fallback", "jerry-small"], "--fallback: only for backend services"),
    (["client", "c2", "-d", "x", "--gateway-auth"], "--gateway-auth: only for backend and optimizer"),
    (["mcp-tool", "t2", "-d", "x", "--tool", "Get-Time"], "--tool: tool name 'Get-Time'"),
    (["optimizer", "o2", "-d", "x", "--approach", "moa"], "--approach: public name 'jerry-small-moa' is already served"),
    (["backend", "b2", "-d", "x", "--port", "4000"], "--port: box:4000 is already in the ledger"),
    (["backend", "b2", "-d", "x", "--port", "4009"], "--port: box:4009 is already in the ledger"),
    (["backend", "b2", "-d", "x", "--host", "mars"], "--host: unknown host 'mars'"),
    (["backend", "b2", "-d", "x", "--approval", "LAN-0001", "--bind", "0.0.0.0"], "--approval: LAN-0001 is not an approval for b2"),
    (["backend", "b2", "-d", "x", "--bind", "0.0.0.0", "--approved-by", "al", "--reviewer", "Al", "--reason", "r"],
     "--reviewer: the reviewer must be someone other than the requester"),
])
def test_bad_arguments_name_the_parameter(mesh: Path, args: list[str], message: str) -> None:
    code, out, err = run_cli(mesh, "new", *args)
    assert code == 2, out + err
    assert message in err and "Traceback" not in err
    assert git(mesh, "status", "--porcelain") == ""


def test_new_backend_on_a_copy_of_this_repository(tmp_path: Path) -> None:
    """The issue's done-criterion, on the real mesh rather than the synthetic one."""
    import shutil
    import subprocess

    repo = Path(__file__).resolve().parents[3]
    listed = subprocess.run(["git", "-C", str(repo), "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], capture_output=True, check=True).stdout
    copy = tmp_path / "repo"
    for rel in filter(None, listed.decode().split("\0")):
        if (repo / rel).is_file():
            (copy / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(repo / rel, copy / rel)
    git(copy, "init", "-q")
    git(copy, "add", "-A")
    code, out, err = run_cli(copy, "new", "backend", "demo", "-d", "Demo.", "--model", "jerry-demo=demo-1b",
                             "--fallback", "jerry-tiny")
    assert code == 0, out + err
    assert violations(copy) == []
    router = yaml.safe_load((copy / "layer-gateway/litellm-orch/config/router.yaml").read_text())
    assert "jerry-demo" in [m["model_name"] for m in router["model_list"]]
    assert {"jerry-demo": ["jerry-tiny"]} in router["router_settings"]["fallbacks"]
    assert ledger_port(copy, "demo") == 4012  # the next free in the inference block (4011: llamacpp-server)
    assert '"demo|local|' in (copy / "platform/ops/scripts/healthcheck.sh").read_text()
    assert "homelab-demo.service" in (copy / "platform/ops/scripts/restart-all.sh").read_text()
    assert (copy / "platform/ops/systemd/homelab-demo.service").is_file()
    assert "| demo |" in (copy / "docs/foundation/topology.md").read_text()
    assert "[demo]" in (copy / "docs/PLATFORM_DOSSIER.md").read_text()
