"""Parse and check a chat completion body before LiteLLM sees it.

Why here: LiteLLM answers a JSON array body with a 500, forwards `NaN` to the backend (500),
reads invalid JSON as "missing messages", and with `drop_params: true` silently drops a parameter
of the wrong type (`tools: "x"` -> a 200 answer without tools). Each of those is the client's
mistake, so it gets a 400 that names the parameter. Only types are checked here: what a value
means (a tool's schema, a role's content) stays the backend's business.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from .errors import GatewayError

# Deeper than any real request (a tool schema nests a few levels) and far below the depth at
# which Python's own recursion would fail somewhere in LiteLLM.
MAX_DEPTH = 64


def _reject_constant(name: str) -> Any:
    raise GatewayError(400, f"The request body contains {name}, which is not valid JSON; send a finite number "
                            "or null.", None, "invalid_json")


def parse_body(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object; GatewayError(400) for anything else."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise GatewayError(400, f"The request body is not UTF-8 (byte {exc.start}); send JSON encoded as UTF-8.",
                           None, "invalid_json") from None
    try:
        payload = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise _too_deep() from None
    except json.JSONDecodeError as exc:
        raise GatewayError(400, f"The request body is not valid JSON: {exc.msg} at line {exc.lineno} column "
                                f"{exc.colno}.", None, "invalid_json") from None
    if not isinstance(payload, dict):
        raise GatewayError(400, f"The request body must be a JSON object, got {_kind(payload)}; send "
                                '{"model": ..., "messages": [...]}.', None, "invalid_json")
    if _depth(payload) > MAX_DEPTH:
        raise _too_deep()
    return payload


def _too_deep() -> GatewayError:
    return GatewayError(400, f"The request body is nested more than {MAX_DEPTH} levels deep; no chat request needs "
                             "that, flatten it.", None, "invalid_json")


def _depth(value: Any) -> int:
    """Nesting depth of lists/dicts, without recursion (a hostile body must not exhaust the stack)."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > deepest:
            deepest = depth
            if deepest > MAX_DEPTH:
                return deepest
        children: Iterable[Any] = item.values() if isinstance(item, dict) else item
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    return deepest


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_str_list(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(s, str) for s in v)


# Top-level parameter -> (accepts the value?, what it must be), for the parameters LiteLLM would
# drop or pass on wrongly typed. Others (user, metadata, logprobs...) are left to LiteLLM and the
# backend: refusing a harmless field some client fills its own way would break that client.
# null is always accepted: OpenAI clients send explicit nulls for unset parameters.
_TYPES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "stream": (lambda v: isinstance(v, bool), "a boolean"),
    "stream_options": (lambda v: isinstance(v, dict), "an object"),
    "max_tokens": (_is_int, "an integer"),
    "max_completion_tokens": (_is_int, "an integer"),
    "n": (_is_int, "an integer"),
    "seed": (_is_int, "an integer"),
    "temperature": (_is_number, "a number"),
    "top_p": (_is_number, "a number"),
    "presence_penalty": (_is_number, "a number"),
    "frequency_penalty": (_is_number, "a number"),
    "stop": (lambda v: isinstance(v, str) or _is_str_list(v), "a string or an array of strings"),
    "response_format": (lambda v: isinstance(v, dict), "an object"),
    "tool_choice": (lambda v: isinstance(v, (str, dict)), 'a string ("none", "auto", "required") or an object'),
}


def _bad(param: str, must: str, got: Any) -> GatewayError:
    return GatewayError(400, f"'{param}' must be {must}, got {_kind(got)}.", param, "invalid_type")


def check_chat(body: dict[str, Any], known_models: Iterable[str]) -> None:
    """Raise GatewayError for a chat body whose parameters have the wrong type, or an unknown model."""
    model = body.get("model")
    if model is None:
        raise GatewayError(400, "'model' is required; GET /v1/models lists the models this mesh serves.",
                           "model", "missing_parameter")
    if not isinstance(model, str):
        raise _bad("model", "a string", model)
    known = sorted(known_models)
    if model not in known:
        served = ", ".join(known) if known else "none"
        raise GatewayError(404, f"The model '{model[:100]}' does not exist on this mesh; it serves: {served}.",
                           "model", "model_not_found")
    _check_messages(body.get("messages"))
    _check_tools(body.get("tools"))
    for param, (accepts, must) in _TYPES.items():
        value = body.get(param)
        if value is not None and not accepts(value):
            raise _bad(param, must, value)


def _check_messages(messages: Any) -> None:
    if messages is None:
        raise GatewayError(400, "'messages' is required: a non-empty array of {\"role\", \"content\"} objects.",
                           "messages", "missing_parameter")
    if not isinstance(messages, list):
        raise _bad("messages", "an array of message objects", messages)
    if not messages:
        raise GatewayError(400, "'messages' is empty; send at least one message.", "messages", "invalid_value")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise _bad(f"messages[{i}]", "an object", message)
        role = message.get("role")
        if not isinstance(role, str):
            raise _bad(f"messages[{i}].role", "a string", role)
        content = message.get("content")
        if content is not None and not isinstance(content, (str, list)):
            raise _bad(f"messages[{i}].content", "a string or an array of content parts", content)


def _check_tools(tools: Any) -> None:
    if tools is None:
        return
    if not isinstance(tools, list):
        raise _bad("tools", "an array of tool objects", tools)
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise _bad(f"tools[{i}]", "an object", tool)
        function = tool.get("function")
        if not isinstance(function, dict):
            raise _bad(f"tools[{i}].function", "an object", function)
        if not isinstance(function.get("name"), str):
            raise _bad(f"tools[{i}].function.name", "a string", function.get("name"))
        parameters = function.get("parameters")
        if parameters is not None and not isinstance(parameters, dict):
            raise _bad(f"tools[{i}].function.parameters", "an object (a JSON schema)", parameters)
