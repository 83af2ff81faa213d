"""Tool-call shaping with a scripted engine standing in for a model that
decides to call tools: the "model" replies with the last user message
verbatim, so each test scripts the exact generation and checks how the server
turns it into OpenAI `tool_calls` (non-streamed and streamed)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
import uvicorn
from meshkit.testing import free_port
from openai import OpenAI

from ov_server.app import create_app
from ov_server.config import Settings
from ov_server.engine import Finish, SamplingParams, Sequence, Tokens
from ov_server.registry import ModelSpec
from ov_server.textproc import Detokenizer

TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}},
         {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}]


class _Handle:
    def __init__(self) -> None:
        self.cancelled = threading.Event()

    def cancel(self) -> None:
        self.cancelled.set()


class ScriptedEngine:
    """Byte-level 'tokenizer'; generation = the last user message, 3 bytes a step."""

    def __init__(self, model_id: str, spec: ModelSpec, model_dir: Path) -> None:
        self.model_id = model_id
        self.spec = spec
        self.context_length = 4096
        self.generated_tokens = 0
        self._active = 0

    @property
    def active(self) -> int:
        return self._active

    def render(self, messages, tools):
        self._script = next(m["content"] for m in reversed(messages) if m["role"] == "user")
        return json.dumps({"messages": messages, "tools": tools})

    def encode(self, prompt):
        return list(prompt.encode())

    def detokenizer(self):
        return Detokenizer(lambda ids: bytes(ids).decode("utf-8", errors="replace"))

    def submit(self, prompt_ids, params: SamplingParams, sink):
        seq = Sequence(sink)
        seq.handle = _Handle()
        data = list(self._script.encode())
        self._active += 1

        def run() -> None:
            limit = params.max_new_tokens
            out = data[:limit]
            for i in range(0, len(out), 3):
                if seq.handle.cancelled.is_set():
                    seq.done = True
                    seq.push(Finish("cancelled"))
                    self._active -= 1
                    return
                seq.push(Tokens(out[i:i + 3]))
                time.sleep(0.001)
            seq.done = True
            self._active -= 1
            seq.push(Finish("length" if len(data) > limit else "stop"))

        threading.Thread(target=run, daemon=True).start()
        return seq

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def scripted(tmp_path_factory):
    settings = Settings(registry_path=None, model_dir=tmp_path_factory.mktemp("m"), api_key=None, env_file=None)
    app = create_app(settings, engine_factory=ScriptedEngine)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    client = OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0, timeout=30)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if client.models.list().data:
                break
        except Exception:
            pass
        time.sleep(0.05)
    yield client
    server.should_exit = True
    t.join(10)


def ask(client, script, **kw):
    return client.chat.completions.create(model="jerry-tiny", messages=[{"role": "user", "content": script}],
                                          tools=kw.pop("tools", TOOLS), max_tokens=kw.pop("max_tokens", 500), **kw)


def stream_ask(client, script, **kw):
    chunks = list(ask(client, script, stream=True, **kw))
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    calls = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    return content, calls, finish


CALL = '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>'


def test_tool_call_parsed(scripted):
    r = ask(scripted, CALL)
    c = r.choices[0]
    assert c.finish_reason == "tool_calls" and c.message.content is None
    (call,) = c.message.tool_calls
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Paris"}
    assert call.id.startswith("call_")


def test_tool_call_streamed_after_text(scripted):
    content, calls, finish = stream_ask(scripted, "Let me check. " + CALL)
    assert content == "Let me check. "
    assert len(calls) == 1 and calls[0].index == 0 and calls[0].function.name == "get_weather"
    assert json.loads(calls[0].function.arguments) == {"city": "Paris"}
    assert finish == ["tool_calls"]


def test_parallel_calls_and_bare_json(scripted):
    two = CALL + '<tool_call>{"name": "get_time", "arguments": {}}</tool_call>'
    calls = ask(scripted, two).choices[0].message.tool_calls
    assert [c.function.name for c in calls] == ["get_weather", "get_time"]
    _, scalls, _ = stream_ask(scripted, two)
    assert [c.index for c in scalls] == [0, 1]
    bare = ask(scripted, '{"name": "get_time", "arguments": {"tz": "UTC"}}')
    assert bare.choices[0].message.tool_calls[0].function.name == "get_time"
    _, bcalls, finish = stream_ask(scripted, '{"name": "get_time", "arguments": {"tz": "UTC"}}')
    assert bcalls[0].function.name == "get_time" and finish == ["tool_calls"]


@pytest.mark.parametrize("script", ["plain answer", '<tool_call>{"name": "rm_rf", "arguments": {}}</tool_call>',
                                    '{"json": "but not a call"}', "<tool_call>{broken"])
def test_non_calls_stay_text(scripted, script):
    r = ask(scripted, script)
    assert r.choices[0].message.tool_calls is None
    assert r.choices[0].message.content == script and r.choices[0].finish_reason == "stop"
    content, calls, finish = stream_ask(scripted, script)
    assert content == script and calls == [] and finish == ["stop"]


def test_tool_choice_none_never_parses(scripted):
    r = ask(scripted, CALL, tool_choice="none")
    assert r.choices[0].message.tool_calls is None and r.choices[0].message.content == CALL


def test_truncated_call_is_length_not_tool_calls(scripted):
    r = ask(scripted, CALL, max_tokens=20)
    assert r.choices[0].finish_reason == "length"
    assert r.choices[0].message.tool_calls is None


def test_line_breaks_in_model_output_do_not_split_a_streamed_event(scripted):
    """U+0085, U+2028 and U+2029 are line breaks to `str.splitlines()`, which httpx's `iter_lines`
    (and the clients built on it) use to read SSE; a model that emits one must not cut an event."""
    import httpx

    text = "a\u2028b\x85c\u2029d é"
    body = {"model": "jerry-tiny", "messages": [{"role": "user", "content": text}], "stream": True}
    got, events = "", 0
    with httpx.stream("POST", f"{scripted.base_url}chat/completions", json=body, timeout=30) as r:
        for line in r.iter_lines():
            if line == "data: [DONE]" or not line:
                continue
            assert line.startswith("data: "), f"not an SSE data line: {line!r}"
            events += 1
            chunk = json.loads(line[6:])  # fails on half an event
            if chunk["choices"]:
                got += chunk["choices"][0]["delta"].get("content") or ""
    assert got == text and events >= 3
