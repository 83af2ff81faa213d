"""The whole path, all real: agent -> LiteLLM gateway -> scripted backend (plays the model) ->
agent -> MCP tool servers (web-fetch, mesh-status over stdio/HTTP) -> back to the model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from conftest import MASTER_KEY, REPO, SERVE_KEY, agent_env, run_agent, serving

from meshkit.testing import OpenAIDouble, ServerProcess, free_port

QUESTION = "[scenario:mesh] is jerry-tiny up, and where does it run?"
SERVE_AUTH = {"Authorization": f"Bearer {SERVE_KEY}"}


def result_of(proc: subprocess.CompletedProcess) -> dict:
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def expected_mesh_answer(mesh) -> str:
    port = mesh.backend_url.rsplit(":", 1)[1]
    return f"jerry-tiny is up: it is served by ov-server on host local at 127.0.0.1:{port}."


def test_multi_step_tool_loop_through_the_gateway(mesh, backend: OpenAIDouble):
    before = len(backend.calls)
    out = result_of(run_agent(mesh, "run", "--json", QUESTION))
    assert [c["name"] for c in out["tool_calls"]] == ["list_models", "service_health"]
    assert out["tool_calls"][1]["arguments"] == {"service": "jerry-tiny"}
    assert not any(c["is_error"] for c in out["tool_calls"])
    assert out["answer"] == expected_mesh_answer(mesh)
    assert (out["steps"], out["stopped"]) == (3, "answer")
    # What the backend saw came through the gateway: 3 model calls, the tools offered, the
    # tool results sent back in the conversation.
    seen = [c.body for c in backend.calls[before:]]
    assert len(seen) == 3 and all(r["model"] == "jerry-scripted" for r in seen)
    offered = {t["function"]["name"] for t in seen[0]["tools"]}
    assert offered == {"fetch", "list_models", "service_health", "topology"}
    tool_msgs = [m for m in seen[-1]["messages"] if m["role"] == "tool"]
    assert len(tool_msgs) == 2 and "jerry-tiny" in tool_msgs[0]["content"]


def test_answer_streams_to_the_terminal(mesh):
    proc = run_agent(mesh, "run", QUESTION, "--servers", "mesh-status")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout == expected_mesh_answer(mesh) + "\n"
    assert "[tool] list_models" in proc.stderr and "[tool] service_health" in proc.stderr


def test_non_streaming_mode(mesh):
    out = result_of(run_agent(mesh, "run", "--json", "--no-stream", "--servers", "mesh-status", QUESTION))
    assert out["answer"] == expected_mesh_answer(mesh)


def test_fetch_tool_reads_a_local_page(mesh):
    out = result_of(run_agent(mesh, "run", "--json", "--servers", "web-fetch",
                              f"[scenario:fetch] summarise url={mesh.page_url}"))
    assert [c["name"] for c in out["tool_calls"]] == ["fetch"]
    assert out["tool_calls"][0]["arguments"] == {"url": mesh.page_url}
    assert out["answer"] == "The page 'Mesh Field Notes' mentions Pelican-unique-marker-4242."


def test_tool_error_is_fed_back_to_the_model(mesh):
    out = result_of(run_agent(mesh, "run", "--json", "--servers", "web-fetch", "[scenario:refused] read the admin page"))
    assert out["tool_calls"][0]["is_error"] is True
    assert out["answer"].startswith("The tool said: ERROR: ")
    assert "blocked address: 10.0.0.1 is private" in out["answer"]


def test_several_tool_calls_in_one_turn(mesh):
    out = result_of(run_agent(mesh, "run", "--json", "--servers", "mesh-status", "[scenario:parallel] models and topology"))
    assert [c["name"] for c in out["tool_calls"]] == ["list_models", "topology"]
    assert out["answer"] == "I received 2 tool results." and out["steps"] == 2


def test_unknown_tool_is_reported_to_the_model(mesh):
    out = result_of(run_agent(mesh, "run", "--json", "--servers", "mesh-status", "[scenario:unknown-tool] go"))
    assert out["tool_calls"][0]["is_error"] is True
    assert "unknown tool 'no_such_tool'" in out["answer"]


def test_step_limit_stops_a_model_that_never_answers(mesh):
    proc = run_agent(mesh, "run", "--json", "--max-steps", "3", "--servers", "mesh-status", "[scenario:forever] loop")
    assert proc.returncode == 1
    out = json.loads(proc.stdout)
    assert (out["steps"], out["stopped"], len(out["tool_calls"])) == (3, "max_steps", 3)
    assert "stopped after 3 steps" in proc.stderr


@pytest.mark.parametrize("base, message", [
    ("backend", "that is the backend ov-server; clients call the gateway only"),
    ("http://127.0.0.1:9/v1", "it is not the gateway"),
    ("https://api.openai.com/v1", "it is not the gateway"),
])
def test_refuses_a_base_url_that_is_not_the_gateway(mesh, backend: OpenAIDouble, base, message):
    before = len(backend.calls)
    base = f"{mesh.backend_url}/v1" if base == "backend" else base
    proc = run_agent(mesh, "run", "--no-tools", "[scenario:plain] hi", env=agent_env(mesh, TINYAGENTS_API_BASE=base))
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr
    assert len(backend.calls) == before  # nothing was sent anywhere


def test_gateway_override_cannot_point_at_a_backend(mesh):
    proc = run_agent(mesh, "run", "--no-tools", "hi",
                     env=agent_env(mesh, TINYAGENTS_GATEWAY_URL=f"{mesh.backend_url}/v1",
                                   TINYAGENTS_API_BASE=f"{mesh.backend_url}/v1"))
    assert proc.returncode == 2 and "is the backend ov-server, not the gateway" in proc.stderr


def test_gateway_override_for_a_mesh_whose_gateway_lives_elsewhere(mesh):
    """The real checkout's mesh says :4000; the override points the agent at the test gateway."""
    env = agent_env(mesh, TINYAGENTS_GATEWAY_URL=mesh.gateway_url, TINYAGENTS_API_BASE=mesh.gateway_url,
                    HOMELAB_MESH_VIEW=str(REPO / "mesh" / "view.json"))
    out = result_of(run_agent(mesh, "run", "--json", "--no-tools", "[scenario:plain] hi", env=env))
    assert out["answer"] == "Hello from the scripted backend."


def test_trailing_slash_and_localhost_are_the_same_gateway(mesh):
    base = mesh.gateway_url.replace("127.0.0.1", "localhost") + "/"
    out = result_of(run_agent(mesh, "run", "--json", "--no-tools", "[scenario:plain] hi",
                              env=agent_env(mesh, TINYAGENTS_API_BASE=base)))
    assert out["answer"] == "Hello from the scripted backend."


def test_wrong_key_is_a_clear_gateway_error(mesh):
    proc = run_agent(mesh, "run", "--no-tools", "hi", env=agent_env(mesh, TINYAGENTS_API_KEY="sk-wrong"))
    assert proc.returncode == 1 and "gateway answered 4" in proc.stderr and "Traceback" not in proc.stderr


def test_http_transport_to_a_running_tool_server(mesh, tmp_path):
    port = free_port()
    env = {**os.environ, "HOMELAB_MESH_VIEW": str(mesh.view)}
    env.pop("VIRTUAL_ENV", None)
    cmd = ["uv", "run", "--frozen", "--project", str(_tools_dir() / "mesh-status"), "mesh-status",
           "--transport", "streamable-http", "--port", str(port)]
    with ServerProcess.start("mesh-status", cmd, log=tmp_path / "mesh-status.log", port=port, env=env, timeout=120):
        registry = tmp_path / "layer-tools" / "registry.yaml"
        registry.parent.mkdir()
        registry.write_text(json.dumps({"servers": {"mesh-status": {"url": f"http://127.0.0.1:{port}/mcp"}}}))
        out = result_of(run_agent(mesh, "run", "--json", "--transport", "http", "--registry", str(registry), QUESTION))
        assert [c["name"] for c in out["tool_calls"]] == ["list_models", "service_health"]
        assert out["answer"] == expected_mesh_answer(mesh)


def _tools_dir() -> Path:
    return REPO / "layer-tools"


def test_hugging_face_agent_json(mesh, backend: OpenAIDouble, tmp_path):
    folder = tmp_path / "my-agent"
    folder.mkdir()
    (folder / "agent.json").write_text(json.dumps({
        "model": "jerry-scripted",
        "endpointUrl": mesh.gateway_url,
        "apiKey": "${input:gateway-key}",
        "inputs": [{"type": "promptString", "id": "gateway-key", "description": "gateway key", "password": True}],
        "servers": [{"type": "stdio", "config": {
            "command": "uv",
            "args": ["run", "--frozen", "--project", str(_tools_dir() / "mesh-status"), "mesh-status", "--transport", "stdio"],
            "env": {"HOMELAB_MESH_VIEW": str(mesh.view)}}}],
        "allowed_tools": ["list_models", "service_health"],
    }))
    (folder / "PROMPT.md").write_text("You answer questions about the mesh.")
    before = len(backend.calls)
    env = agent_env(mesh, GATEWAY_KEY=MASTER_KEY, TINYAGENTS_MODEL="not-used", TINYAGENTS_API_KEY="")
    out = result_of(run_agent(mesh, "run", "--json", "--agent", str(folder), QUESTION, env=env))
    assert out["answer"] == expected_mesh_answer(mesh)
    first = backend.calls[before].body
    assert {t["function"]["name"] for t in first["tools"]} == {"list_models", "service_health"}
    assert first["messages"][0] == {"role": "system", "content": "You answer questions about the mesh."}


def test_agent_json_pointing_elsewhere_is_refused(mesh, tmp_path):
    path = tmp_path / "agent.json"
    path.write_text(json.dumps({"model": "Qwen/Qwen2.5-72B-Instruct", "endpointUrl": "https://router.huggingface.co/v1",
                                "servers": []}))
    proc = run_agent(mesh, "run", "--agent", str(path), "hi")
    assert proc.returncode == 2 and "refusing base URL https://router.huggingface.co/v1" in proc.stderr


def test_chat_mode_answers_each_line_and_exits_on_eof(mesh):
    proc = run_agent(mesh, "chat", "--servers", "mesh-status",
                     input=f"{QUESTION}\n\n[scenario:plain] hello\n")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.splitlines() == [expected_mesh_answer(mesh), "Hello from the scripted backend."]


def test_chat_mode_with_closed_stdin_exits_at_once(mesh):
    proc = run_agent(mesh, "chat", "--no-tools", timeout=60)
    assert proc.returncode == 0 and proc.stdout == ""


def test_http_mode(mesh):
    with serving(mesh, "--servers", "mesh-status") as served:
        base = served.base
        health = httpx.get(f"{base}/health").json()
        assert health["status"] == "ok" and "list_models" in health["tools"] and health["model"] == "jerry-scripted"
        r = httpx.post(f"{base}/run", json={"question": QUESTION}, headers=SERVE_AUTH, timeout=120)
        assert r.status_code == 200, r.text
        assert r.json()["answer"] == expected_mesh_answer(mesh)
        assert [c["name"] for c in r.json()["tool_calls"]] == ["list_models", "service_health"]
        bad = httpx.post(f"{base}/run", json={"max_steps": 0, "question": "x"}, headers=SERVE_AUTH)
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "max_steps"
        bad = httpx.post(f"{base}/run", content=b"not json", headers={**SERVE_AUTH, "Content-Type": "application/json"})
        assert bad.status_code == 400 and set(bad.json()["error"]) == {"message", "type", "param", "code"}


HOSTILE = [
    # (what, request kwargs, status, param): each must be refused before the agent runs.
    ("no key", {"json": {"question": QUESTION}}, 401, "Authorization"),
    ("DNS rebinding", {"json": {"question": QUESTION}, "headers": {**SERVE_AUTH, "Host": "rebind.evil.example:4030"}}, 421, "Host"),
    ("cross-site page", {"json": {"question": QUESTION}, "headers": {**SERVE_AUTH, "Origin": "https://evil.example"}}, 403, "Origin"),
    ("cross-site form, no key", {"content": b'{"question": "[scenario:mesh] x"}',
                                 "headers": {"Content-Type": "text/plain", "Origin": "https://evil.example"}}, 403, "Origin"),
    ("text/plain body", {"content": b'{"question": "[scenario:mesh] x"}',
                         "headers": {**SERVE_AUTH, "Content-Type": "text/plain"}}, 415, "Content-Type"),
    ("deeply nested JSON", {"content": b"[" * 200_000 + b"]" * 200_000,
                            "headers": {**SERVE_AUTH, "Content-Type": "application/json"}}, 400, None),
    ("JSON array", {"json": [QUESTION], "headers": SERVE_AUTH}, 400, None),
]


def test_http_mode_refuses_hostile_requests_and_keeps_serving(mesh, backend: OpenAIDouble):
    """Each refusal: OpenAI-shaped error with the right status, nothing reached the gateway, and
    the next normal request is still answered by the same process."""
    with serving(mesh, "--servers", "mesh-status") as served:
        base, proc = served.base, served.popen
        for what, kwargs, status, param in HOSTILE:
            before = len(backend.calls)
            r = httpx.post(f"{base}/run", timeout=60, **kwargs)
            assert r.status_code == status, (what, r.status_code, r.text[:300])
            err = r.json()["error"]
            assert set(err) == {"message", "type", "param", "code"} and err["param"] == param, (what, err)
            assert len(backend.calls) == before, f"{what}: the agent called the model"
            ok = httpx.post(f"{base}/run", json={"question": "[scenario:plain] hi"}, headers=SERVE_AUTH, timeout=120)
            assert ok.status_code == 200 and ok.json()["answer"] == "Hello from the scripted backend.", (what, ok.text)
            assert proc.poll() is None
    assert "Traceback" not in served.log.read_text()


def test_http_mode_refuses_a_lan_bind(mesh):
    proc = run_agent(mesh, "serve", "--host", "0.0.0.0", "--no-tools", timeout=60)
    assert proc.returncode == 2 and "binds loopback only" in proc.stderr


def test_no_outbound_connection_except_the_gateway(mesh, tmp_path):
    """With stdio tools (pipes), the agent's only TCP peer is the gateway."""
    log = tmp_path / "connects.jsonl"
    env = agent_env(mesh, CONNECT_AUDIT_LOG=str(log))
    proc = subprocess.run([sys.executable, str(Path(__file__).parent / "connect_audit.py"), "run", "--json", QUESTION],
                          env=env, capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)
    assert result_of(proc)["answer"] == expected_mesh_answer(mesh)
    peers = {tuple(json.loads(line)) for line in log.read_text().splitlines()}
    gateway_port = int(mesh.gateway_url.split(":")[2].split("/")[0])
    assert peers == {("127.0.0.1", gateway_port)}, peers
