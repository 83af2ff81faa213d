"""Request checks that need only the request body: JSON nesting depth and the JSON schemas a
client sends (`response_format.json_schema.schema`, `tools[i].function.parameters`).

Why here and not in the engine: an invalid schema reaching OpenVINO's structured output used to
poison the pipeline for every client (issue 10). Checking the schema against JSON Schema's own
meta-schema gives a 400 naming the exact parameter; what is valid JSON Schema but cannot be
compiled into a grammar is caught next, by the engine process (`grammar_check.py`).
"""

from __future__ import annotations

from typing import Any

from jsonschema import SchemaError
from jsonschema.validators import validator_for

from .errors import APIError, bad_request
from .schemas import ChatCompletionRequest

# Deep enough for any real tool schema or message list, shallow enough that nothing downstream
# (pydantic, the schema validator, json.dumps, the grammar compiler) recurses out of stack.
MAX_JSON_DEPTH = 64


def json_depth(value: Any, limit: int = MAX_JSON_DEPTH) -> int:
    """Nesting depth of parsed JSON (a scalar is 0), counted without recursion; stops past `limit`."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, dict):
            v = v.values()
        elif not isinstance(v, list):
            continue
        d += 1
        deepest = max(deepest, d)
        if deepest > limit:
            return deepest
        stack.extend((child, d) for child in v)
    return deepest


def check_depth(body: dict) -> None:
    for key, value in body.items():
        if json_depth(value, MAX_JSON_DEPTH - 1) > MAX_JSON_DEPTH - 1:
            raise bad_request(f"'{key}' is nested more than {MAX_JSON_DEPTH} levels deep.", param=str(key),
                              code="invalid_value")


def _check_schema(schema: dict, param: str) -> None:
    cls = validator_for(schema)  # honours "$schema", else the latest draft
    try:
        cls.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path)
        at = f" at '{where}'" if where else ""
        raise bad_request(f"Invalid JSON schema in '{param}'{at}: {exc.message}", param=param,
                          code="invalid_schema") from None


def check_request_schemas(req: ChatCompletionRequest) -> None:
    """400 naming the parameter for any schema in the request that is not valid JSON Schema."""
    rf = req.response_format
    fmt = rf.json_schema if rf is not None and rf.type == "json_schema" else None
    schema = fmt.schema_ if fmt is not None else None
    if schema is not None:
        _check_schema(schema, "response_format.json_schema.schema")
    for i, tool in enumerate(req.tools or []):
        if tool.function.parameters is not None:
            _check_schema(tool.function.parameters, f"tools[{i}].function.parameters")


def structured_param(req: ChatCompletionRequest) -> str:
    """The parameter a grammar came from, for an error the engine reports about it."""
    if req.tools and req.tool_choice != "none":
        return "tools"
    return "response_format"


def rejection(req: ChatCompletionRequest, message: str, status: int, grammar: bool) -> APIError:
    if status >= 500:
        return APIError(status, message, param="model", code="model_unavailable")
    if grammar:
        return bad_request(message, param=structured_param(req), code="invalid_schema")
    return bad_request(f"request rejected by the engine: {message}")
