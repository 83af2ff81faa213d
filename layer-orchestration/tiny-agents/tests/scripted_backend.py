"""The script of the backend that sits BEHIND the real gateway (meshkit's recording OpenAI
double plays the server; this module decides what it answers).

The built-in tiny model cannot choose tools, so this backend plays the model: the first user
message names a scenario (`[scenario:NAME]`), and each request answers the next planned step:
tool calls, then a final answer computed from the tool results it was sent back. The double
records every request so tests can assert what the gateway forwarded."""

from __future__ import annotations

import json
import re
from typing import Any

from meshkit.testing import Call, OpenAIDouble, Reply

BACKEND_KEY = "scripted-backend-key"
MODEL = "jerry-scripted"


def _tool_messages(messages: list[dict[str, Any]]) -> list[str]:
    return [m.get("content") or "" for m in messages if m.get("role") == "tool"]


def _json_of(text: str) -> Any:
    """The JSON of a tool result: the whole text, or what follows a one-line summary (mesh-status)."""
    try:
        return json.loads(text)
    except ValueError:
        return json.loads(text.split("\n", 1)[1])


def _question(messages: list[dict[str, Any]]) -> str:
    """The latest user message: in interactive mode earlier questions stay in the history."""
    return next((m.get("content") or "" for m in reversed(messages) if m.get("role") == "user"), "")


def _current_turn(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=0)
    return messages[last_user:]


def _answer_mesh(messages):
    models_json, health_json = _tool_messages(messages)[-2:]
    models = _json_of(models_json)
    tiny = next(m for m in models if m["name"] == "jerry-tiny")
    health = _json_of(health_json)[0]
    state = "up" if health["healthy"] else "down"
    return (f"jerry-tiny is {state}: it is served by {tiny['service']} on host {tiny['host']} "
            f"at {tiny['address']}:{tiny['port']}.")


def _answer_fetch(messages):
    page = _json_of(_tool_messages(messages)[-1])
    marker = re.search(r"Pelican-unique-marker-\d+", page["text"])
    return f"The page '{page['title']}' mentions {marker.group(0) if marker else 'nothing special'}."


def _answer_echo_error(messages):
    return "The tool said: " + _tool_messages(messages)[-1]


def _answer_count(messages):
    return f"I received {len(_tool_messages(messages))} tool results."


def plan(scenario: str, question: str, step: int) -> dict[str, Any]:
    """Step `step` (0-based count of assistant turns so far) of a scenario."""
    url = (re.search(r"url=(\S+)", question) or [None, ""])[1]
    plans: dict[str, list[dict[str, Any]]] = {
        "mesh": [{"calls": [("list_models", {})]},
                 {"calls": [("service_health", {"service": "jerry-tiny"})]},
                 {"answer": _answer_mesh}],
        "fetch": [{"calls": [("fetch", {"url": url})]}, {"answer": _answer_fetch}],
        "refused": [{"calls": [("fetch", {"url": "http://10.0.0.1/admin"})]}, {"answer": _answer_echo_error}],
        "parallel": [{"calls": [("list_models", {}), ("topology", {})]}, {"answer": _answer_count}],
        "unknown-tool": [{"calls": [("no_such_tool", {"x": 1})]}, {"answer": _answer_echo_error}],
        "plain": [{"answer": lambda _m: "Hello from the scripted backend."}],
    }
    if scenario == "forever":
        return {"calls": [("list_models", {})]}
    steps = plans.get(scenario, plans["plain"])
    return steps[min(step, len(steps) - 1)]


def script(call: Call) -> Reply:
    """The next planned step of the scenario the latest question names."""
    messages = call.messages
    question = _question(messages)
    scenario = (re.search(r"\[scenario:([a-z-]+)\]", question) or [None, "plain"])[1]
    step = sum(1 for m in _current_turn(messages) if m.get("role") == "assistant")
    action = plan(scenario, question, step)
    usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    if "answer" in action:
        return Reply(action["answer"](messages), usage=usage)
    return Reply(None, tool_calls=list(action["calls"]), usage=usage)


def make_backend() -> OpenAIDouble:
    """The double (not started), answering with `script` and only to BACKEND_KEY."""
    return OpenAIDouble(script, api_key=BACKEND_KEY, models=(MODEL,))
