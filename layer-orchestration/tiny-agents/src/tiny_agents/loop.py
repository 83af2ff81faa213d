"""The agent loop: ask the model (through the gateway), run the tools it asks for, feed the
results (errors included) back, repeat until it answers or the step limit is reached."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import openai

from tiny_agents.errors import AgentError
from tiny_agents.toolbox import Toolbox, ToolOutcome

DEFAULT_SYSTEM_PROMPT = (
    "You are a helpful assistant in a home LLM mesh. Use the tools to look things up; "
    "a tool result that starts with ERROR explains why the tool failed. Answer concisely."
)


# Greedy decoding: a small model sampled at the backend's default temperature (1.0) wanders off
# inside a tool call's string arguments until max_tokens cuts the call (seen with jerry-chat).
TEMPERATURE = 0.0


def tool_choice(step: int, max_steps: int, repeated: bool) -> str:
    """What the model may do at `step` (1-based) when tools are offered.

    Why a schedule: the default model is a 135M one (jerry-chat). Left to `auto` it rarely calls
    a tool on its own and, once it has, tends to repeat the same call forever. So the first step
    must call a tool (`required`; the backend constrains the output to a valid call), later steps
    may (`auto`), and the last step, or the one after the model repeated a call it had already
    made, must answer in text (`none`). Backends honour these with their OpenAI meaning.
    """
    if max_steps > 1 and (step == max_steps or repeated):
        return "none"
    return "required" if step == 1 and max_steps > 1 else "auto"


def answer_request(question: str) -> dict[str, Any]:
    """The last message of the answering step (tool_choice none), sent but not kept in the history.

    Why: a small model shown only tool results repeats them (JSON and all) instead of answering;
    asking again, right before it writes, with the user's own question, makes it answer that
    question. The question is quoted as the user wrote it."""
    return {"role": "user", "content": f"Using the tool results above, answer in one sentence: {question}"}


@dataclass
class RunResult:
    answer: str
    tool_calls: list[ToolOutcome] = field(default_factory=list)
    steps: int = 0
    stopped: str = "answer"  # "answer" | "max_steps"

    def as_dict(self) -> dict[str, Any]:
        return {"answer": self.answer, "steps": self.steps, "stopped": self.stopped,
                "tool_calls": [{"name": c.name, "arguments": c.arguments, "is_error": c.is_error,
                                "result": c.text} for c in self.tool_calls]}


def _noop(*_: Any) -> None:
    return None


class Agent:
    def __init__(self, client: openai.AsyncOpenAI, model: str, toolbox: Toolbox, *, max_steps: int = 8,
                 system_prompt: str | None = None, stream: bool = True,
                 on_text: Callable[[str], None] = _noop,
                 on_tool: Callable[[str, ToolOutcome | dict[str, Any]], None] = _noop) -> None:
        if max_steps < 1:
            raise AgentError(f"--max-steps must be at least 1, got {max_steps}", param="max_steps")
        self.client, self.model, self.toolbox = client, model, toolbox
        self.max_steps, self.stream = max_steps, stream
        self.system_prompt = system_prompt or DEFAULT_SYSTEM_PROMPT
        self.on_text, self.on_tool = on_text, on_tool

    def new_history(self) -> list[dict[str, Any]]:
        return [{"role": "system", "content": self.system_prompt}]

    async def run(self, question: str, history: list[dict[str, Any]] | None = None) -> RunResult:
        """Answer one question; `history` (mutated) carries earlier turns in interactive mode."""
        messages = history if history is not None else self.new_history()
        messages.append({"role": "user", "content": question})
        result = RunResult(answer="")
        tools = self.toolbox.openai_tools()
        seen: set[tuple[str, str]] = set()
        repeated = False
        for step in range(1, self.max_steps + 1):
            result.steps = step
            choice = tool_choice(step, self.max_steps, repeated) if tools else None
            sent = messages + [answer_request(question)] if choice == "none" and result.tool_calls else messages
            content, calls = await self._complete(sent, tools, choice)
            assistant: dict[str, Any] = {"role": "assistant", "content": content or None}
            if calls:
                assistant["tool_calls"] = [
                    {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
                    for c in calls]
            messages.append(assistant)
            if not calls:
                result.answer = content
                return result
            keys = {(c["name"], _canonical(c["arguments"])) for c in calls}
            repeated, seen = keys <= seen, seen | keys
            for c in calls:
                self.on_tool("call", {"name": c["name"], "arguments": c["arguments"]})
                outcome = await self.toolbox.call(c["name"], c["arguments"])
                result.tool_calls.append(outcome)
                self.on_tool("result", outcome)
                text = f"ERROR: {outcome.text}" if outcome.is_error else outcome.text
                messages.append({"role": "tool", "tool_call_id": c["id"], "content": text})
        result.stopped = "max_steps"
        result.answer = content
        return result

    async def _complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], choice: str | None):
        kwargs: dict[str, Any] = {"model": self.model, "messages": messages, "temperature": TEMPERATURE}
        if tools:
            # One call per step: a small model asked for several repeats itself (see tool_choice).
            kwargs.update(tools=tools, tool_choice=choice or "auto", parallel_tool_calls=False)
        try:
            if not self.stream:
                resp = await self.client.chat.completions.create(**kwargs)
                msg = resp.choices[0].message
                if msg.content:
                    self.on_text(msg.content)
                calls = [{"id": tc.id, "name": tc.function.name, "arguments": tc.function.arguments or "{}"}
                         for tc in msg.tool_calls or []]
                return msg.content or "", calls
            stream = await self.client.chat.completions.create(**kwargs, stream=True)
            parts: list[str] = []
            slots: dict[int, dict[str, str]] = {}
            async for chunk in stream:
                if not chunk.choices:
                    continue
                delta = chunk.choices[0].delta
                if delta.content:
                    parts.append(delta.content)
                    self.on_text(delta.content)
                for tc in delta.tool_calls or []:
                    slot = slots.setdefault(tc.index, {"id": "", "name": "", "arguments": ""})
                    if tc.id:
                        slot["id"] = tc.id
                    if tc.function and tc.function.name and not slot["name"]:
                        slot["name"] = tc.function.name
                    if tc.function and tc.function.arguments:
                        slot["arguments"] += tc.function.arguments
            calls = [slots[i] for i in sorted(slots)]
            for i, c in enumerate(calls):
                c["id"] = c["id"] or f"call_{len(messages)}_{i}"
                c["arguments"] = c["arguments"] or "{}"
            return "".join(parts), calls
        except openai.APIStatusError as exc:
            raise AgentError(f"gateway answered {exc.status_code}: {_gateway_message(exc)}",
                             code="gateway_error") from None
        except openai.APIConnectionError as exc:
            raise AgentError(f"gateway unreachable at {self.client.base_url}: {exc}", code="gateway_unreachable") from None
        except openai.APIError as exc:  # e.g. an error event in the middle of a stream
            raise AgentError(f"gateway error: {exc}", code="gateway_error") from None


def _canonical(arguments: str) -> str:
    try:
        return json.dumps(json.loads(arguments), sort_keys=True)
    except ValueError:
        return arguments


def _gateway_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])[:500]
    return json.dumps(body)[:500] if body is not None else str(exc)[:500]
