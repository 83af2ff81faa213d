"""Configuration rules without any network: gateway policy, registry, agent.json, precedence."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import yaml
from conftest import mcp_server, view_doc
from meshkit.view import load_view, parse

from tiny_agents import agentjson, gateway, registry
from tiny_agents.config import Options, resolve
from tiny_agents.errors import AgentError

REPO = Path(__file__).resolve().parents[3]
REAL_VIEW = REPO / "mesh" / "view.json"


def mesh_view(backend_port: int = 4010):
    """A view whose gateway is :4000 and whose backend ov-server listens on `backend_port`."""
    return parse(view_doc("http://127.0.0.1:4000/v1", 4000, backend_port, "m"), Path("view.json"))


@pytest.mark.parametrize("a, b", [
    ("http://127.0.0.1:4000/v1", "http://127.0.0.1:4000/v1/"),
    ("http://localhost:4000/v1", "http://127.0.0.1:4000/v1"),
    ("HTTP://LOCALHOST:4000/v1", "http://127.0.0.1:4000/v1"),
    ("http://gw.lan/v1", "http://gw.lan:80/v1"),
])
def test_normalise_equal(a, b):
    assert gateway.normalise(a) == gateway.normalise(b)


@pytest.mark.parametrize("a, b", [
    ("http://127.0.0.1:4000/v1", "http://127.0.0.1:4001/v1"),
    ("http://127.0.0.1:4000/v1", "https://127.0.0.1:4000/v1"),
    ("http://127.0.0.1:4000/v1", "http://127.0.0.1:4000/v2"),
    ("http://127.0.0.1:4000/v1", "http://10.0.0.5:4000/v1"),
])
def test_normalise_different(a, b):
    assert gateway.normalise(a) != gateway.normalise(b)


def test_check_api_base():
    info = mesh_view(4010)
    assert gateway.check_api_base("http://localhost:4000/v1/", "http://127.0.0.1:4000/v1", info) == "http://localhost:4000/v1"
    with pytest.raises(AgentError, match="that is the backend ov-server"):
        gateway.check_api_base("http://localhost:4010/v1", "http://127.0.0.1:4000/v1", info)
    with pytest.raises(AgentError, match="not the gateway"):
        gateway.check_api_base("http://127.0.0.1:8080/v1", "http://127.0.0.1:4000/v1", info)
    with pytest.raises(AgentError, match="invalid URL"):
        gateway.check_api_base("ftp://x", "http://127.0.0.1:4000/v1", info)


def test_real_view_forbids_backend_and_optimizer():
    info = load_view(REAL_VIEW)
    assert gateway.normalise(info.gateway_url) == "http://127.0.0.1:4000/v1"
    assert {(n.address, n.port): n.owner for n in info.never_call} == {
        ("127.0.0.1", 4010): "backend ov-server", ("127.0.0.1", 4011): "backend llamacpp-server",
        ("127.0.0.1", 4020): "optimizer optillm-proxy"}
    with pytest.raises(AgentError, match="optimizer optillm-proxy"):
        gateway.check_api_base("http://127.0.0.1:4020/v1", info.gateway_url, info)
    with pytest.raises(AgentError, match="not the gateway"):
        gateway.gateway_url(info, "http://127.0.0.1:4010/v1")


def test_real_registry_loads_both_transports():
    # The registry is generated AND committed (`homelab check` fails when it is missing or stale),
    # so a missing file is a failure here, never a skip.
    path = REPO / "layer-tools" / "registry.yaml"
    stdio = {s.name: s for s in registry.load(path)}
    assert {"web-fetch", "mesh-status"} <= set(stdio)
    assert stdio["web-fetch"].command == "uv" and stdio["web-fetch"].cwd == REPO
    http = {s.name: s for s in registry.load(path, transport="http")}
    assert http["web-fetch"].url == "http://127.0.0.1:4040/mcp"


def test_registry_errors_name_the_file_and_field(tmp_path):
    path = tmp_path / "registry.yaml"
    with pytest.raises(AgentError, match="registry.yaml.*--registry"):
        registry.load(path)
    path.write_text("servers: [a, b]\n")
    with pytest.raises(AgentError, match="`servers:` mapping"):
        registry.load(path)
    path.write_text(yaml.safe_dump({"servers": {"t": {"stdio": {"command": "x"}}}}))
    with pytest.raises(AgentError, match=r"servers\.t: no `url` for --transport http"):
        registry.load(path, transport="http")
    with pytest.raises(AgentError, match="--servers: nope not in"):
        registry.load(path, only=["nope"])
    with pytest.raises(AgentError, match="--transport must be"):
        registry.load(path, transport="carrier-pigeon")


def write_agent(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "agent.json"
    path.write_text(json.dumps(data))
    return path


def test_agent_json_flat_and_nested_servers(tmp_path):
    path = write_agent(tmp_path, {
        "model": "jerry-tiny", "endpointUrl": "http://127.0.0.1:4000/v1", "apiKey": "${input:my-key}",
        "servers": [{"type": "stdio", "command": "uv", "args": ["run", "x"], "env": {"A": "${input:my-key}"}},
                    {"type": "stdio", "config": {"command": "npx", "args": ["srv"]}},
                    {"type": "http", "url": "http://127.0.0.1:4041/mcp", "headers": {"X": "1"}},
                    {"type": "sse", "config": {"url": "http://127.0.0.1:9/sse"}}],
        "allowed_tools": ["fetch"]})
    agent = agentjson.load(path, {"MY_KEY": "sk-abc"})
    assert (agent.model, agent.api_key, agent.allowed_tools) == ("jerry-tiny", "sk-abc", ["fetch"])
    kinds = [(s.transport, s.command or s.url) for s in agent.servers]
    assert kinds == [("stdio", "uv"), ("stdio", "npx"), ("http", "http://127.0.0.1:4041/mcp"), ("http", "http://127.0.0.1:9/sse")]
    assert agent.servers[0].env == {"A": "sk-abc"} and agent.servers[0].cwd == tmp_path
    assert agent.servers[2].headers == {"X": "1"}


def test_agent_json_per_server_allowed_tools(tmp_path):
    """Hugging Face's agent.json restricts tools per server; every spelling we accept keeps it."""
    path = write_agent(tmp_path, {"servers": [
        {"type": "stdio", "command": "a", "allowed_tools": ["topology"]},
        {"type": "http", "config": {"url": "http://127.0.0.1:9/mcp", "allowed_tools": []}},
        {"type": "stdio", "command": "c"}]})
    servers = agentjson.load(path, {}).servers
    assert [s.allowed_tools for s in servers] == [frozenset({"topology"}), frozenset(), None]


def test_prompt_md_then_agents_md_next_to_agent_json(tmp_path):
    path = write_agent(tmp_path, {})
    assert agentjson.load(path, {}).system_prompt is None
    (tmp_path / "AGENTS.md").write_text("from AGENTS.md")
    assert agentjson.load(tmp_path, {}).system_prompt == "from AGENTS.md"
    (tmp_path / "PROMPT.md").write_text("from PROMPT.md")
    assert agentjson.load(path, {}).system_prompt == "from PROMPT.md"  # PROMPT.md wins, as in huggingface_hub


@pytest.mark.parametrize("data, message", [
    ({"servers": [{"type": "stdio", "command": "x", "allowed_tools": "fetch"}]},
     r"servers\[0\]: allowed_tools must be a list of tool names"),
    ({"servers": [{"type": "http", "config": {"url": "u", "allowed_tools": [1]}}]},
     r"servers\[0\]: allowed_tools must be a list"),
    ({"servers": {"a": {}}}, "servers must be a list"),
    ({"servers": [{"type": "stdio", "config": "x"}]}, "config must be an object"),
    ({"model": "m", "provider": "nebius"}, "`provider` 'nebius' would call a hosted service"),
    ({"apiKey": "${input:missing-key}"}, "needs environment variable MISSING_KEY"),
    ({"servers": [{"type": "stdio"}]}, r"servers\[0\]: a stdio server needs `command`"),
    ({"servers": [{"type": "ws", "url": "x"}]}, "unknown server type 'ws'"),
    ({"allowed_tools": "fetch"}, "allowed_tools must be a list"),
])
def test_agent_json_errors(tmp_path, data, message):
    with pytest.raises(AgentError, match=message):
        agentjson.load(write_agent(tmp_path, data), {})


def test_agent_json_bad_json_names_the_line(tmp_path):
    path = tmp_path / "agent.json"
    path.write_text('{\n  "model": "x",\n  oops\n}')
    with pytest.raises(AgentError, match="invalid JSON at line 3"):
        agentjson.load(path, {})


def test_shipped_agent_json_points_at_the_gateway():
    agent = agentjson.load(Path(__file__).parents[1] / "config" / "agent.json", {})
    assert gateway.normalise(agent.endpoint_url) == "http://127.0.0.1:4000/v1"
    assert {s.name for s in agent.servers} == {"web-fetch", "mesh-status"}


def fake_repo(tmp_path: Path) -> Path:
    """A checkout with only a mesh view (gateway :5000, one MCP server) and a registry file."""
    (tmp_path / "mesh").mkdir()
    doc = view_doc("http://127.0.0.1:5000/v1", 5000, 5010, "m", [mcp_server("only-one", "echo", [])])
    (tmp_path / "mesh" / "view.json").write_text(json.dumps(doc))
    (tmp_path / "layer-tools").mkdir()
    (tmp_path / "layer-tools" / "registry.yaml").write_text(textwrap.dedent("""\
        servers:
          only-one: {url: 'http://127.0.0.1:9/mcp', stdio: {command: echo}}
        """))
    return tmp_path


def view_env(root: Path) -> dict[str, str]:
    return {"HOMELAB_MESH_VIEW": str(root / "mesh" / "view.json")}


def test_missing_view_is_a_clear_error(tmp_path):
    with pytest.raises(AgentError, match="HOMELAB_MESH_VIEW is not set.*--mesh-view"):
        resolve(Options(no_tools=True), {})
    with pytest.raises(AgentError, match=r"view.json: not found"):
        resolve(Options(no_tools=True, mesh_view=str(tmp_path / "view.json")), {})


def test_precedence_flag_agent_env_default(tmp_path):
    root = fake_repo(tmp_path)
    env = view_env(root)
    cfg = resolve(Options(), env)
    assert (cfg.api_base, cfg.model, cfg.key_missing) == ("http://127.0.0.1:5000/v1", "jerry-chat", True)
    assert [s.name for s in cfg.servers] == ["only-one"] and cfg.servers[0].cwd == root
    cfg = resolve(Options(), {**env, "TINYAGENTS_MODEL": "jerry-env", "TINYAGENTS_API_KEY": "sk-env"})
    assert (cfg.model, cfg.api_key) == ("jerry-env", "sk-env")
    agent = write_agent(tmp_path, {"model": "jerry-agent", "apiKey": "sk-agent", "servers": []})
    cfg = resolve(Options(agent=str(agent)), {**env, "TINYAGENTS_MODEL": "jerry-env"})
    assert (cfg.model, cfg.api_key) == ("jerry-agent", "sk-agent")
    cfg = resolve(Options(agent=str(agent), model="jerry-flag"), env)
    assert cfg.model == "jerry-flag"


def test_agent_servers_replace_the_registry_unless_asked(tmp_path):
    root = fake_repo(tmp_path)
    agent = write_agent(tmp_path, {"servers": [{"type": "http", "url": "http://127.0.0.1:9/mcp", "name": "mine"}]})
    env = view_env(root)
    assert [s.name for s in resolve(Options(agent=str(agent)), env).servers] == ["mine"]
    both = resolve(Options(agent=str(agent), registry=str(root / "layer-tools" / "registry.yaml")), env)
    assert [s.name for s in both.servers] == ["mine", "only-one"]
    assert resolve(Options(agent=str(agent), no_tools=True), env).servers == []


def test_env_api_base_must_be_the_gateway(tmp_path):
    env = {**view_env(fake_repo(tmp_path)), "TINYAGENTS_API_BASE": "http://127.0.0.1:4000/v1"}
    with pytest.raises(AgentError, match=r"not the gateway \(http://127.0.0.1:5000/v1\)"):
        resolve(Options(no_tools=True), env)
    ok = resolve(Options(no_tools=True), {**env, "TINYAGENTS_GATEWAY_URL": "http://127.0.0.1:4000/v1"})
    assert ok.gateway == "http://127.0.0.1:4000/v1"


def test_unreachable_tool_server_is_a_clear_error(tmp_path):
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    root = fake_repo(tmp_path)
    (root / "layer-tools" / "registry.yaml").write_text(
        f"servers:\n  ghost: {{url: 'http://127.0.0.1:{closed}/mcp', stdio: {{command: /nonexistent/ghost-server}}}}\n")
    env = {"PATH": "/usr/bin:/bin", **view_env(root), "TINYAGENTS_SERVE_KEY": "k" * 32,
           "TINYAGENTS_REGISTRY": str(root / "layer-tools" / "registry.yaml")}
    cases = [("tools", "http", "ConnectError"), ("tools", "stdio", "No such file"), ("serve", "http", "ConnectError")]
    for command, transport, reason in cases:
        proc = subprocess.run([sys.executable, "-m", "tiny_agents.cli", command, "--transport", transport],
                              env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        assert proc.returncode == 2, proc.stderr
        assert "MCP server ghost" in proc.stderr and "is unreachable" in proc.stderr and reason in proc.stderr
        assert "Traceback" not in proc.stderr


def test_real_registry_stdio_servers_start_and_list_their_tools():
    """The rendered view's stdio commands (run from the repo root) really start the tools."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("TINYAGENTS_", "HOMELAB_", "VIRTUAL_ENV"))}
    env["HOMELAB_MESH_VIEW"] = str(REAL_VIEW)
    proc = subprocess.run([sys.executable, "-m", "tiny_agents.cli", "tools"], env=env, capture_output=True,
                          text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr[-3000:]
    listed = {line.split("\t")[0]: line.split("\t")[1] for line in proc.stdout.splitlines()}
    assert listed == {"fetch": "web-fetch", "list_models": "mesh-status", "service_health": "mesh-status",
                      "topology": "mesh-status"}


def test_per_server_allowed_tools_reach_the_real_tool_servers(tmp_path):
    """`tiny-agents tools --agent`: real MCP servers over stdio; each server offers only what its
    entry allows, and neither the global list nor --allowed-tools can widen that."""
    import subprocess
    import sys

    from conftest import tool_python

    (tmp_path / "repo").mkdir()
    root = fake_repo(tmp_path / "repo")
    folder = tmp_path / "agent"
    folder.mkdir()
    mesh_status, web_fetch = tool_python("mesh-status"), tool_python("web-fetch")
    write_agent(folder, {"endpointUrl": "http://127.0.0.1:5000/v1", "servers": [
        {"type": "stdio", "command": mesh_status, "args": ["-m", "mesh_status.cli"], "env": view_env(root),
         "allowed_tools": ["topology", "service_health"]},
        {"type": "stdio", "config": {"command": web_fetch, "args": ["-m", "web_fetch.cli"], "allowed_tools": []}}]})
    env = {"PATH": "/usr/bin:/bin", **view_env(root)}

    def tools(*flags: str) -> set[str]:
        proc = subprocess.run([sys.executable, "-m", "tiny_agents.cli", "tools", "--agent", str(folder), *flags],
                              env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return {line.split("\t")[0] for line in proc.stdout.splitlines()}

    assert tools() == {"topology", "service_health"}
    assert tools("--allowed-tools", "list_models,topology,fetch") == {"topology"}
