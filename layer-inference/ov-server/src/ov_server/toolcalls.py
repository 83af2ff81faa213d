"""How a request's tools become a grammar and a prompt (pure: no OpenVINO, no I/O).

The call format is the Hermes/Qwen one, `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`,
whatever the model: the grammar (`ToolGrammar`, turned into OpenVINO structural tags by
`engine_worker.generation_config`) makes the model emit exactly that, so `textproc.parse_tool_calls`
always finds a call to an offered tool with schema-valid arguments:

- `auto`: free text; once the model writes `<tool_call>`, the rest up to `</tool_call>` is forced
  to be a call to one of the offered tools (a trigger, so text stays unconstrained).
- `required`: only calls, at least one (`single`: exactly one, for `parallel_tool_calls: false`).
- a named tool: the arguments schema alone (chat.py), as before.

A chat template that knows no tools (SmolLM2's, most small models') would drop the tool list,
the assistant's calls and the tool results. For those, `fold_for_plain_template` writes the tool
list and the call format into the system message, the calls into the assistant's text and the
results into user messages, so a multi-turn agent loop keeps its history.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .textproc import TOOL_CLOSE, TOOL_OPEN

CALL_SEPARATOR = "\n"


@dataclass(frozen=True)
class ToolGrammar:
    """Plain and picklable (it crosses to the engine process inside SamplingParams)."""

    mode: str  # "auto" | "required"
    tools: tuple[tuple[str, str], ...]  # (name, JSON of the call object's schema)
    single: bool  # at most one call (parallel_tool_calls false)


def call_schema(name: str, parameters: dict[str, Any] | None) -> dict[str, Any]:
    """JSON schema of one call object: this tool's name, arguments valid for its parameters."""
    return {"type": "object",
            "properties": {"name": {"const": name}, "arguments": parameters or {"type": "object"}},
            "required": ["name", "arguments"], "additionalProperties": False}


def tool_grammar(mode: str, tools: list[tuple[str, dict[str, Any] | None]], single: bool) -> ToolGrammar:
    return ToolGrammar(mode, tuple((n, json.dumps(call_schema(n, p), sort_keys=True)) for n, p in tools), single)


def structural_tag(so: Any, grammar: ToolGrammar) -> Any:
    """ToolGrammar -> an OpenVINO GenAI structural tag (`so` is openvino_genai.StructuredOutputConfig)."""
    tags = [so.Tag(TOOL_OPEN, so.JSONSchema(schema), TOOL_CLOSE) for _, schema in grammar.tools]
    if grammar.mode == "auto":
        return so.TriggeredTags([TOOL_OPEN], tags, False, grammar.single)
    return so.TagsWithSeparator(tags, CALL_SEPARATOR, True, grammar.single)


def native_tool_support(chat_template: str) -> bool:
    """Does the template render `tools` itself? (Jinja templates with tool support read `tools`.)"""
    return "tools" in chat_template


def tools_system_text(tools: list[dict[str, Any]]) -> str:
    """The tool list a plain template's system message carries: one line per tool.

    Why not the JSON schemas: a small model copies what it is shown. Given the tools as JSON
    (descriptions with escaped newlines and indentation, `title`/`anyOf` noise), SmolLM2-135M
    picked the last-listed tool for most questions and filled its string arguments with the
    escapes it had just read (`"https:\\r\\r\\n        "`). The grammar enforces each tool's
    schema anyway, so the prompt only needs what helps choose: name, arguments, first paragraph.
    """
    call = TOOL_OPEN + '{"name": <tool name>, "arguments": <arguments object>}' + TOOL_CLOSE
    lines = [f"You can call these tools. To call one, reply with {call}.", "Tools:"]
    for t in tools:
        fn = t.get("function", t)
        lines.append(f"- {fn['name']}({_arguments_text(fn.get('parameters'))}): {_first_paragraph(fn.get('description'))}")
    return "\n".join(lines)


def _first_paragraph(description: str | None) -> str:
    return " ".join((description or "").strip().split("\n\n")[0].split())


def _arguments_text(parameters: dict[str, Any] | None) -> str:
    props = (parameters or {}).get("properties") or {}
    required = set((parameters or {}).get("required") or [])
    return ", ".join(f"{name}: {_type_text(schema, name in required)}" for name, schema in props.items())


def _type_text(schema: Any, required: bool) -> str:
    """`string`, `optional integer`, `one of "a", "b"`: the shape of a value, not its JSON schema."""
    if not isinstance(schema, dict):
        return "any"
    options = [o for o in schema.get("anyOf") or [schema] if isinstance(o, dict) and o.get("type") != "null"]
    optional = not required or len(options) < len(schema.get("anyOf") or [schema])
    enum = [v for o in options for v in o.get("enum") or []]
    kind = ("one of " + ", ".join(json.dumps(v) for v in enum)) if enum else \
        " or ".join(str(o.get("type", "any")) for o in options) or "any"
    return f"optional {kind}" if optional else kind


def _call_text(tc: dict[str, Any]) -> str:
    fn = tc["function"]
    try:
        args: Any = json.loads(fn["arguments"])
    except ValueError:
        args = fn["arguments"]
    return TOOL_OPEN + json.dumps({"name": fn["name"], "arguments": args}, ensure_ascii=False) + TOOL_CLOSE


def fold_for_plain_template(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Messages that a template without tool support renders faithfully (see the module doc).

    Earlier calls are written out only while tools are offered: with none (the answering turn),
    a small model shown its earlier calls answers with another one (as text, or a description of
    it; both seen with SmolLM2-135M), so then only the results remain, each naming its tool.
    """
    names = {tc["id"]: tc["function"]["name"] for m in messages for tc in m.get("tool_calls") or []}
    out: list[dict[str, Any]] = []
    for m in messages:
        if m["role"] == "assistant" and m.get("tool_calls"):
            calls = [_call_text(tc) for tc in m["tool_calls"]] if tools else []
            text = "\n".join(filter(None, [m.get("content") or "", *calls]))
            if text:
                out.append({"role": "assistant", "content": text})
        elif m["role"] == "tool":
            name = names.get(m.get("tool_call_id") or "", "the tool")
            out.append({"role": "user", "content": f"Result of {name}:\n{m['content']}"})
        else:
            out.append({"role": m["role"], "content": m.get("content") or ""})
    if tools:
        block = tools_system_text(tools)
        if out and out[0]["role"] == "system":
            out[0] = {"role": "system", "content": f"{out[0]['content']}\n\n{block}" if out[0]["content"] else block}
        else:
            out.insert(0, {"role": "system", "content": block})
    return out
