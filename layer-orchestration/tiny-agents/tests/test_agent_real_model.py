"""The agent on the real model, with no scripted double anywhere: tiny-agents -> real LiteLLM ->
real ov-server (jerry-chat, SmolLM2-135M) and the real mesh-status MCP server (tests/realmesh.py).

A fixed set of questions about the mesh; only what must always hold is asserted (every tool call
parses and names an offered tool, no 5xx, the run ends with an answer). How many answers are
right is bench/bench_agent.py's business: a 135M model's answers are not an invariant."""

from __future__ import annotations

import json

import httpx
import pytest
from conftest import MASTER_KEY, agent_env, fail_if_any_died, run_agent
from realmesh import DEFAULT_TOOLS, MESH_TOOLS, MODEL, QUESTIONS, real_mesh

MAX_STEPS = 4


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    with real_mesh(tmp_path_factory.mktemp("realmesh")) as m:
        yield m


@pytest.fixture(autouse=True)
def _mesh_outlives_the_test(request):
    """ov-server or the gateway dying fails the test it died in, with its log tail."""
    yield
    if "live" in request.fixturenames:
        fail_if_any_died(list(request.getfixturevalue("live").servers))


def test_offered_tools_are_mesh_status_tools(live):
    proc = run_agent(live, "tools", "--servers", "mesh-status", env=agent_env(live, TINYAGENTS_MODEL=MODEL))
    assert proc.returncode == 0, proc.stderr
    for name in MESH_TOOLS:
        assert name in proc.stdout


def test_questions_about_the_mesh_keep_the_invariants(live):
    assert len(QUESTIONS) >= 10
    env = agent_env(live, TINYAGENTS_MODEL=MODEL)
    for question, _ in QUESTIONS:
        proc = run_agent(live, "run", "--json", "--servers", "mesh-status", "--max-steps", str(MAX_STEPS), question,
                         env=env, timeout=300)
        # A 5xx anywhere (gateway or backend) or an unparsable stream ends the run with exit 1.
        assert proc.returncode == 0, (question, proc.stderr[-3000:])
        out = json.loads(proc.stdout)
        assert out["stopped"] == "answer" and out["steps"] <= MAX_STEPS
        assert isinstance(out["answer"], str) and out["answer"].strip(), (question, out)
        # The first step requires a call: the model looked something up before answering.
        assert out["tool_calls"], (question, out)
        for call in out["tool_calls"]:
            assert call["name"] in MESH_TOOLS, (question, call)
            assert isinstance(call["arguments"], dict), (question, call)  # the JSON the model emitted parsed


def test_default_servers_keep_the_invariants(live):
    """What a user runs: no --servers, so web-fetch (network cut) is offered beside mesh-status.
    Three questions keep it short; which tool the model picks is the bench's figure."""
    env = agent_env(live, TINYAGENTS_MODEL=MODEL)
    for question in ("is jerry-chat up?", "Is the gateway up?", "Which models does the gateway serve?"):
        proc = run_agent(live, "run", "--json", "--max-steps", str(MAX_STEPS), question, env=env, timeout=300)
        assert proc.returncode == 0, (question, proc.stderr[-3000:])
        out = json.loads(proc.stdout)
        assert out["stopped"] == "answer" and isinstance(out["answer"], str) and out["answer"].strip(), (question, out)
        assert out["tool_calls"], (question, out)
        for call in out["tool_calls"]:
            assert call["name"] in DEFAULT_TOOLS and isinstance(call["arguments"], dict), (question, call)


def test_is_jerry_chat_up_calls_mesh_status_streamed_and_not(live):
    env = agent_env(live, TINYAGENTS_MODEL=MODEL)
    for extra in ([], ["--no-stream"]):
        proc = run_agent(live, "run", *extra, "--servers", "mesh-status", "--max-steps", str(MAX_STEPS),
                         "is jerry-chat up?", env=env, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "[tool] " in proc.stderr and proc.stdout.strip()
        called = {line.split()[1] for line in proc.stderr.splitlines() if line.startswith("[tool] ")}
        assert called <= MESH_TOOLS


def test_gateway_passes_tool_choice_through(live):
    """`required` through LiteLLM still means a call to an offered tool (ov-server constrains it)."""
    tools = [{"type": "function", "function": {"name": "service_health", "parameters": {
        "type": "object", "properties": {"service": {"enum": ["ov-server", "litellm-orch"]}}}}}]
    # A bounded argument: with a free string a sampled call can run past max_tokens, and a cut
    # call is (rightly) dropped with finish_reason "length" (seen once in CI).
    r = httpx.post(f"{live.gateway_url}/chat/completions", headers={"Authorization": f"Bearer {MASTER_KEY}"},
                   json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "tools": tools,
                         "tool_choice": "required", "parallel_tool_calls": False, "max_tokens": 64}, timeout=120)
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["finish_reason"] == "tool_calls", r.text
    calls = r.json()["choices"][0]["message"]["tool_calls"]
    assert len(calls) == 1 and calls[0]["function"]["name"] == "service_health"
    assert isinstance(json.loads(calls[0]["function"]["arguments"]), dict)
