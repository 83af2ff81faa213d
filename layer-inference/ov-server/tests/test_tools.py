"""Tool calling against the real model: what the server controls end to end.

A random-weight model never decides to call a tool by itself, so `auto` must
give plain text; a named tool_choice / `required` constrain generation to the
tool's JSON schema (OpenVINO structured output), so the call is real.
The parsing of a model's own <tool_call> output is covered by
test_tools_scripted.py with a scripted engine."""

import json

MODEL = "jerry-tiny"
TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "description": "weather for a city",
                                      "parameters": {"type": "object",
                                                     "properties": {"city": {"type": "string", "maxLength": 12}},
                                                     "required": ["city"], "additionalProperties": False}}},
    {"type": "function", "function": {"name": "get_time", "parameters": {
        "type": "object", "properties": {"tz": {"type": "string", "enum": ["UTC", "CET"]}},
        "required": ["tz"], "additionalProperties": False}}},
]
MSGS = [{"role": "user", "content": "weather in Paris?"}]


def test_auto_without_call_returns_plain_text(client):
    r = client.chat.completions.create(model=MODEL, messages=MSGS, tools=TOOLS, max_tokens=10,
                                       extra_body={"ignore_eos": True})
    c = r.choices[0]
    assert c.message.tool_calls is None
    assert c.message.content
    assert c.finish_reason == "length"


def test_tools_are_rendered_into_prompt(client):
    with_tools = client.chat.completions.create(model=MODEL, messages=MSGS, tools=TOOLS, max_tokens=1)
    without = client.chat.completions.create(model=MODEL, messages=MSGS, max_tokens=1)
    none = client.chat.completions.create(model=MODEL, messages=MSGS, tools=TOOLS, tool_choice="none",
                                          max_tokens=1)
    assert with_tools.usage.prompt_tokens > without.usage.prompt_tokens
    assert none.usage.prompt_tokens == without.usage.prompt_tokens
    assert none.choices[0].message.tool_calls is None


def test_named_tool_choice_forces_valid_call(client):
    r = client.chat.completions.create(model=MODEL, messages=MSGS, tools=TOOLS, max_tokens=200, temperature=0,
                                       tool_choice={"type": "function", "function": {"name": "get_weather"}})
    c = r.choices[0]
    assert c.finish_reason == "tool_calls"
    assert c.message.content is None
    (call,) = c.message.tool_calls
    assert call.type == "function" and call.function.name == "get_weather" and call.id.startswith("call_")
    args = json.loads(call.function.arguments)
    assert set(args) == {"city"} and isinstance(args["city"], str)


def test_named_tool_choice_streamed(client):
    chunks = list(client.chat.completions.create(
        model=MODEL, messages=MSGS, tools=TOOLS, max_tokens=200, temperature=0, stream=True,
        tool_choice={"type": "function", "function": {"name": "get_time"}}))
    calls = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert len(calls) == 1 and calls[0].index == 0 and calls[0].function.name == "get_time"
    assert json.loads(calls[0].function.arguments)["tz"] in ("UTC", "CET")
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert not "".join(c.choices[0].delta.content or "" for c in chunks)


def test_required_tool_choice_calls_a_declared_tool(client):
    r = client.chat.completions.create(model=MODEL, messages=MSGS, tools=TOOLS, max_tokens=300, temperature=0,
                                       tool_choice="required")
    c = r.choices[0]
    assert c.finish_reason == "tool_calls"
    assert c.message.tool_calls[0].function.name in {"get_weather", "get_time"}
    json.loads(c.message.tool_calls[0].function.arguments)
