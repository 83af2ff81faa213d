"""Tool calls on the real chat model (jerry-chat, SmolLM2-135M): in every tool_choice mode, every
call the server returns parses, names an offered tool and has arguments valid against that tool's
schema, because generation is constrained (toolcalls.py); `none` never calls. No scripted double:
the model decides. Only invariants are asserted (what a 135M model says is not)."""

from __future__ import annotations

import json

import httpx
import pytest
from conftest import start_server, stop_server
from jsonschema import Draft202012Validator

MODEL = "jerry-chat"
TOOLS = [
    {"type": "function", "function": {
        "name": "service_health", "description": "Live health of every service (or one service or model).",
        "parameters": {"type": "object", "properties": {"service": {"type": "string", "maxLength": 40}},
                       "additionalProperties": False}}},
    {"type": "function", "function": {
        "name": "list_models", "description": "Model names the gateway serves.",
        "parameters": {"type": "object", "properties": {}, "additionalProperties": False}}},
    {"type": "function", "function": {
        "name": "fetch", "description": "Fetch a web page as text.",
        "parameters": {"type": "object", "required": ["url"], "additionalProperties": False,
                       "properties": {"url": {"type": "string", "pattern": "^https?://", "maxLength": 60},
                                      "max_chars": {"type": "integer", "minimum": 1, "maximum": 5000}}}}},
]
SCHEMAS = {t["function"]["name"]: t["function"]["parameters"] for t in TOOLS}
QUESTIONS = ["is jerry-chat up?", "Which models does the gateway serve?", "Read https://example.org for me.",
             "What is the capital of France?"]
NAMED = {"type": "function", "function": {"name": "fetch"}}


@pytest.fixture(scope="module")
def chat_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("chat")
    registry = tmp / "registry.yaml"
    registry.write_text(f"models:\n  {MODEL}:\n    builtin: {MODEL}\n")
    server = start_server(tmp, env_lines={"OV_SERVER_REGISTRY": str(registry)})
    yield server
    stop_server(server)


def post(server, body: dict) -> dict:
    r = httpx.post(server.base + "/v1/chat/completions", json={"model": MODEL, **body}, timeout=120)
    assert r.status_code == 200, r.text
    return r.json()


def stream(server, body: dict) -> tuple[str, list[dict], str]:
    """(content, tool calls assembled from deltas, finish_reason)."""
    content, calls, finish = "", {}, None
    with httpx.stream("POST", server.base + "/v1/chat/completions", json={"model": MODEL, "stream": True, **body},
                      timeout=120) as r:
        assert r.status_code == 200, r.read()
        for line in r.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            assert "error" not in chunk, chunk
            choice = chunk["choices"][0]
            delta = choice["delta"]
            content += delta.get("content") or ""
            for tc in delta.get("tool_calls") or []:
                slot = calls.setdefault(tc["index"], {"id": "", "function": {"name": "", "arguments": ""}})
                slot["id"] = tc.get("id") or slot["id"]
                slot["function"]["name"] += tc["function"].get("name") or ""
                slot["function"]["arguments"] += tc["function"].get("arguments") or ""
            finish = choice["finish_reason"] or finish
    return content, [calls[i] for i in sorted(calls)], finish


def check_calls(calls: list[dict], finish: str, offered: set[str]) -> None:
    for call in calls:
        name = call["function"]["name"]
        assert name in offered, name
        assert call["id"].startswith("call_")
        args = json.loads(call["function"]["arguments"])  # parses
        errors = [e.message for e in Draft202012Validator(SCHEMAS[name]).iter_errors(args)]
        assert not errors, (name, args, errors)
    if calls and finish != "length":
        assert finish == "tool_calls"
    if not calls:
        assert finish in ("stop", "length")


MODES = [("auto", {}), ("required", {}), ("required", {"parallel_tool_calls": False}), ("named", {}), ("none", {})]


@pytest.mark.parametrize("mode, extra", MODES, ids=[m + ("-single" if e else "") for m, e in MODES])
@pytest.mark.parametrize("streamed", [False, True], ids=["json", "sse"])
def test_every_call_parses_and_names_an_offered_tool(chat_server, mode, extra, streamed):
    offered = set(SCHEMAS)
    choice = NAMED if mode == "named" else mode
    for i, question in enumerate(QUESTIONS):
        # Greedy and sampled: the grammar, not the model's habits, is what must hold.
        body = {"messages": [{"role": "user", "content": question}], "tools": TOOLS, "tool_choice": choice,
                "max_tokens": 64, "temperature": 0 if i % 2 == 0 else 1.0, "seed": i, **extra}
        if streamed:
            content, calls, finish = stream(chat_server, body)
        else:
            msg = (c := post(chat_server, body)["choices"][0])["message"]
            calls, finish, content = msg.get("tool_calls") or [], c["finish_reason"], msg["content"]
        check_calls(calls, finish, {"fetch"} if mode == "named" else offered)
        if mode in ("required", "named") and finish != "length":
            assert calls, (question, content)
            assert not content
        if mode == "named" or extra.get("parallel_tool_calls") is False:
            assert len(calls) <= 1
        if mode == "none":
            assert not calls


def test_agent_loop_history_renders_and_calls_stay_valid(chat_server):
    """A second turn carrying the first call and its result (a template without tool support:
    both are folded into text) still gets schema-valid calls, and a `none` turn answers."""
    history = [{"role": "user", "content": "is jerry-chat up?"}]
    first = post(chat_server, {"messages": history, "tools": TOOLS, "tool_choice": "required",
                               "parallel_tool_calls": False, "max_tokens": 96, "temperature": 0})
    msg = first["choices"][0]["message"]
    check_calls(msg["tool_calls"], first["choices"][0]["finish_reason"], set(SCHEMAS))
    history += [msg, {"role": "tool", "tool_call_id": msg["tool_calls"][0]["id"],
                      "content": json.dumps([{"service": "ov-server", "healthy": True, "status": 200}])}]
    for choice in ("auto", "required"):
        r = post(chat_server, {"messages": history, "tools": TOOLS, "tool_choice": choice, "max_tokens": 96,
                               "temperature": 0})
        c = r["choices"][0]
        check_calls(c["message"].get("tool_calls") or [], c["finish_reason"], set(SCHEMAS))
        assert r["usage"]["prompt_tokens"] > first["usage"]["prompt_tokens"]  # the result is in the prompt
    r = post(chat_server, {"messages": history, "tools": TOOLS, "tool_choice": "none", "max_tokens": 48,
                           "temperature": 0})
    assert r["choices"][0]["message"].get("tool_calls") is None and r["choices"][0]["message"]["content"]
