"""POST /v1/chat/completions: request -> prompt -> sequences -> OpenAI shapes.

One request with `n` choices becomes `n` independent sequences in the engine
(seeds seed, seed+1, ...): they run side by side in the continuous batch and
stream independently, which OpenVINO's own num_return_sequences cannot do.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from .engine import Engine, Event, SamplingParams, Sequence, Tokens
from .errors import APIError, bad_request, summarize_exception
from .schemas import ChatCompletionRequest, NamedToolChoice
from .textproc import (
    ParsedToolCall,
    StopFilter,
    ToolStreamGate,
    parse_tool_calls,
)
from .toolcalls import ToolGrammar, tool_grammar

Disconnected = Callable[[], Awaitable[bool]]


@dataclass
class Plan:
    """Everything decided before generation starts (all validation done)."""

    model: str
    prompt_ids: list[int]
    params: SamplingParams
    n: int
    tool_mode: str  # "none" | "auto" | "forced" | "required"
    forced_name: str | None
    tool_names: set[str]
    stream: bool
    include_usage: bool


def _content_text(content: object) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(part.text for part in content)  # list[TextPart]


def _messages(req: ChatCompletionRequest) -> list[dict]:
    out: list[dict] = []
    for m in req.messages:
        role = "system" if m.role == "developer" else m.role
        msg: dict = {"role": role, "content": _content_text(m.content)}
        if m.role == "assistant" and m.tool_calls:
            msg["tool_calls"] = [
                {"id": tc.id, "type": "function", "function": {"name": tc.function.name, "arguments": tc.function.arguments}}
                for tc in m.tool_calls
            ]
        if m.role == "tool":
            msg["tool_call_id"] = m.tool_call_id
        out.append(msg)
    return out


def plan_request(req: ChatCompletionRequest, engine: Engine) -> Plan:
    """Validate against the model and build the sampling plan (raises APIError)."""
    if req.logprobs:
        raise bad_request("logprobs are not supported by this server", param="logprobs", code="unsupported_parameter")
    if req.top_logprobs is not None:
        raise bad_request("top_logprobs is not supported by this server", param="top_logprobs", code="unsupported_parameter")
    if req.logit_bias:
        raise bad_request("logit_bias is not supported by this server", param="logit_bias", code="unsupported_parameter")

    tools = req.tools or []
    tool_names = {t.function.name for t in tools}
    choice = req.tool_choice
    if choice is None:
        choice = "auto" if tools else "none"
    if not tools and choice != "none":
        raise bad_request("tool_choice is set but no tools were given", param="tool_choice")
    forced_name: str | None = None
    json_schema: str | None = None
    if isinstance(choice, NamedToolChoice):
        forced_name = choice.function.name
        if forced_name not in tool_names:
            raise bad_request(f"tool_choice names '{forced_name}', which is not in tools", param="tool_choice")
        fn = next(t.function for t in tools if t.function.name == forced_name)
        json_schema = json.dumps(fn.parameters or {"type": "object"})
        tool_mode = "forced"
    else:
        tool_mode = choice  # "auto" | "required" | "none"

    if json_schema is None and req.response_format is not None and req.response_format.type != "text":
        if req.response_format.type == "json_object":
            json_schema = json.dumps({"type": "object"})
        else:
            rf = req.response_format.json_schema
            if rf is None or rf.schema_ is None:
                raise bad_request("response_format.json_schema.schema is required", param="response_format")
            json_schema = json.dumps(rf.schema_)

    grammar: ToolGrammar | None = None
    if tool_mode == "required" or (tool_mode == "auto" and json_schema is None):
        # `auto` with a response_format keeps that format; its calls are parsed after the fact.
        grammar = tool_grammar(tool_mode, [(t.function.name, t.function.parameters) for t in tools],
                               single=req.parallel_tool_calls is False)

    render_tools = [t.model_dump(exclude_none=True) for t in tools] if tools and tool_mode != "none" else None
    try:
        prompt = engine.render(_messages(req), render_tools)
    except Exception as exc:
        raise bad_request(f"messages could not be formatted with the model's chat template: {exc}", param="messages") from None
    prompt_ids = engine.encode(prompt)

    ctx = engine.context_length
    max_param = "max_completion_tokens" if req.max_completion_tokens is not None else "max_tokens"
    max_tokens = req.max_completion_tokens if req.max_completion_tokens is not None else req.max_tokens
    if max_tokens is not None and max_tokens > ctx:
        raise bad_request(f"{max_param}={max_tokens} is larger than the model's context length ({ctx})", param=max_param)
    if len(prompt_ids) >= ctx:
        raise bad_request(
            f"This model's maximum context length is {ctx} tokens, but the messages use {len(prompt_ids)} tokens.",
            param="messages", code="context_length_exceeded")
    if max_tokens is None:
        max_tokens = min(engine.spec.default_max_tokens, ctx - len(prompt_ids))
    elif len(prompt_ids) + max_tokens > ctx:
        raise bad_request(
            f"This model's maximum context length is {ctx} tokens. However, you requested "
            f"{len(prompt_ids) + max_tokens} tokens ({len(prompt_ids)} in the messages, {max_tokens} in the completion).",
            param=max_param, code="context_length_exceeded")

    if req.min_tokens is not None and req.min_tokens > max_tokens:
        raise bad_request(f"min_tokens={req.min_tokens} is larger than max_tokens ({max_tokens})", param="min_tokens")
    # The model's min_new_tokens is a floor (it keeps answers non-empty);
    # a request can only raise it.
    min_new = max(engine.spec.min_new_tokens, req.min_tokens or 0)
    ignore_eos = engine.spec.ignore_eos if req.ignore_eos is None else req.ignore_eos

    stops = [req.stop] if isinstance(req.stop, str) else list(req.stop or [])
    if any(s == "" for s in stops):
        raise bad_request("stop strings must not be empty", param="stop")
    params = SamplingParams(
        max_new_tokens=max_tokens,
        temperature=engine.spec.temperature if req.temperature is None else float(req.temperature),
        top_p=engine.spec.top_p if req.top_p is None else float(req.top_p),
        seed=req.seed,
        min_new_tokens=min_new,
        stop=stops,
        presence_penalty=float(req.presence_penalty or 0.0),
        frequency_penalty=float(req.frequency_penalty or 0.0),
        json_schema=json_schema,
        ignore_eos=ignore_eos,
        tool_grammar=grammar,
    )
    return Plan(
        model=req.model, prompt_ids=prompt_ids, params=params, n=req.n or 1,
        tool_mode=tool_mode, forced_name=forced_name, tool_names=tool_names, stream=bool(req.stream),
        include_usage=bool(req.stream_options and req.stream_options.include_usage),
    )


class Choice:
    """Per-choice text pipeline: tokens -> text -> stop cut -> (tool gate)."""

    def __init__(self, index: int, engine: Engine, plan: Plan) -> None:
        self.index = index
        self.plan = plan
        self.seq: Sequence | None = None
        self.detok = engine.detokenizer()
        self.stop = StopFilter(plan.params.stop)
        self.gate = ToolStreamGate() if plan.tool_mode == "auto" else None
        self.text = ""
        self.tokens = 0
        self.finish_reason: str | None = None
        self.error: str | None = None
        self.error_status = 500  # 503: the engine went away
        self.tool_calls: list[ParsedToolCall] = []
        self.content: str | None = None
        self.first_at: float | None = None  # time.monotonic() of the first / latest tokens (metrics)
        self.last_at = 0.0

    def _add_text(self, raw: str) -> str:
        """Returns the text that may be streamed as content now."""
        t = self.stop.feed(raw)
        if self.stop.stopped and self.seq is not None:
            self.seq.cancel()  # the stop string is here: stop generating
        self.text += t
        if self.plan.tool_mode in ("forced", "required"):
            return ""
        return self.gate.feed(t) if self.gate is not None else t

    def on_event(self, ev: Event) -> str:
        if isinstance(ev, Tokens):
            self.last_at = time.monotonic()  # once per wake-up, not per token
            if self.first_at is None:
                self.first_at = self.last_at
            self.tokens += len(ev.ids)
            return "" if self.stop.stopped else self._add_text(self.detok.feed(ev.ids))
        # Finish
        out = ""
        if not self.stop.stopped:
            out = self._add_text(self.detok.flush())
            tail = self.stop.flush()
            self.text += tail
            if self.plan.tool_mode not in ("forced", "required"):
                out += self.gate.feed(tail) if self.gate is not None else tail
        if ev.reason == "error":
            self.error = ev.message or "generation failed"
            self.error_status = ev.status
        self.finish_reason = "stop" if self.stop.stopped else ("length" if ev.reason == "length" else "stop")
        self._shape_tools()
        return out

    def _shape_tools(self) -> None:
        mode = self.plan.tool_mode
        if mode == "forced":
            # Generation was constrained to the tool's argument schema.
            args = self.text.strip()
            try:
                args = json.dumps(json.loads(args), ensure_ascii=False)
            except ValueError:
                pass  # cut by max_tokens: hand back what was generated
            self.tool_calls = [ParsedToolCall(self.plan.forced_name or "", args)]
            self.content = None
        elif mode in ("required", "auto"):
            # Under `required` the grammar allows only calls: a block cut by max_tokens is dropped,
            # the complete ones before it stand (finish_reason stays "length").
            cut = mode == "required" and self.finish_reason == "length"
            content, calls = parse_tool_calls(self.text, self.plan.tool_names, drop_cut_tail=cut)
            self.tool_calls = calls
            self.content = content if calls else self.text
        else:
            self.content = self.text

    @property
    def final_reason(self) -> str:
        if self.tool_calls and self.finish_reason != "length":
            return "tool_calls"
        return self.finish_reason or "stop"


def _generation_error(c: Choice) -> APIError:
    code = "model_unavailable" if c.error_status == 503 else "generation_failed"
    return APIError(c.error_status, c.error or "generation failed", param="model" if c.error_status == 503 else None,
                    code=code)


def _usage(plan: Plan, choices: list[Choice]) -> dict:
    completion = sum(c.tokens for c in choices)
    return {"prompt_tokens": len(plan.prompt_ids), "completion_tokens": completion,
            "total_tokens": len(plan.prompt_ids) + completion}


def start(engine: Engine, plan: Plan) -> tuple[list[Choice], asyncio.Event]:
    """Submit the plan's n sequences; raises APIError if the engine refuses."""
    loop = asyncio.get_running_loop()
    wake = asyncio.Event()

    loop_thread = threading.get_ident()

    def notify() -> None:
        # ProcessEngine pushes tokens on this loop's thread: set the event directly, since
        # call_soon_threadsafe would also write the loop's wake-up pipe once per token.
        # Engines that push from a thread of their own (test doubles) still go through it.
        if threading.get_ident() == loop_thread:
            wake.set()
        else:
            loop.call_soon_threadsafe(wake.set)

    choices = [Choice(i, engine, plan) for i in range(plan.n)]
    try:
        for c in choices:
            p = plan.params
            if p.seed is not None and c.index:
                p = SamplingParams(**{**p.__dict__, "seed": p.seed + c.index})
            c.seq = engine.submit(plan.prompt_ids, p, notify)
    except Exception as exc:
        for c in choices:
            if c.seq is not None:
                c.seq.cancel()
        if isinstance(exc, APIError):  # e.g. the engine is restarting: 503 naming why
            raise
        msg = summarize_exception(exc)
        param = "response_format" if plan.params.json_schema else None
        raise bad_request(f"request rejected by the engine: {msg}", param=param) from None
    return choices, wake


async def _progress(choices: list[Choice], wake: asyncio.Event) -> AsyncIterator[tuple[Choice, str, bool]]:
    """Yields (choice, new content text, finished) as generation advances.

    Each wake-up takes everything every sequence produced since the last one,
    so a slow reader gets fewer, larger deltas instead of falling behind.
    """
    live = list(choices)
    while live:
        await wake.wait()
        wake.clear()
        for c in list(live):
            assert c.seq is not None
            ids, fin = c.seq.take()
            text = c.on_event(Tokens(ids)) if ids else ""
            if fin is not None:
                text += c.on_event(fin)
                live.remove(c)
            if text or fin is not None:
                yield c, text, fin is not None


def cancel_unfinished(choices: list[Choice]) -> None:
    """Cancel every sequence that has not finished (idempotent)."""
    for c in choices:
        if c.seq is not None and c.finish_reason is None:
            c.seq.cancel()


async def complete(plan: Plan, choices: list[Choice], wake: asyncio.Event, disconnected: Disconnected) -> dict | None:
    """Non-streamed answer; None if the client went away (generation cancelled)."""
    gone = False

    async def watch() -> None:
        # Polled on a timer: nothing else tells a non-streamed handler that
        # its client has gone.
        nonlocal gone
        while True:
            await asyncio.sleep(0.25)
            if await disconnected():
                gone = True
                cancel_unfinished(choices)  # each sequence then finishes as "cancelled"
                return

    watcher = asyncio.create_task(watch())
    try:
        async for _ in _progress(choices, wake):
            pass
    finally:
        watcher.cancel()
        cancel_unfinished(choices)
    if gone:
        return None
    failed = [c for c in choices if c.error]
    if failed:
        raise _generation_error(failed[0])
    return {
        "id": "chatcmpl-" + uuid.uuid4().hex,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": plan.model,
        "choices": [
            {
                "index": c.index,
                "message": {"role": "assistant", "content": c.content,
                            **({"tool_calls": [tc.to_openai() for tc in c.tool_calls]} if c.tool_calls else {})},
                "logprobs": None,
                "finish_reason": c.final_reason,
            }
            for c in choices
        ],
        "usage": _usage(plan, choices),
    }


# Legal raw inside a JSON string, but line breaks to `str.splitlines()`, which line-based SSE readers
# use (httpx's `aiter_lines`, and with it many clients and scripts): raw, a model's output would cut
# its event in two and the client would fail on half a JSON document.
_LINE_BREAKS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def event_json(body: dict) -> str:
    """One SSE event's JSON: UTF-8 text as is, except the characters above, escaped."""
    return json.dumps(body, ensure_ascii=False).translate(_LINE_BREAKS)


async def stream(plan: Plan, choices: list[Choice], wake: asyncio.Event) -> AsyncIterator[str]:
    """SSE `data:` payloads (JSON strings), ending with "[DONE]".

    Cancellation (client disconnect) arrives as CancelledError at an await;
    the finally block cancels every sequence so the engine stops generating.
    """
    cid = "chatcmpl-" + uuid.uuid4().hex
    created = int(time.time())

    def chunk(index: int, delta: dict, finish: str | None = None) -> str:
        body = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": plan.model,
                "choices": [{"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}]}
        if plan.include_usage:
            body["usage"] = None
        return event_json(body)

    try:
        for c in choices:
            yield chunk(c.index, {"role": "assistant", "content": ""})
        async for c, text, finished in _progress(choices, wake):
            i = c.index
            if text:
                yield chunk(i, {"content": text})
            if finished:
                if c.error:
                    yield event_json(_generation_error(c).body())
                    continue
                if not c.tool_calls:
                    # Held back because it looked like the start of a tool call, or
                    # (tool_choice required) text that did not parse as one.
                    held = c.gate.rest() if c.gate is not None else (
                        c.content if plan.tool_mode in ("forced", "required") else "")
                    if held:
                        yield chunk(i, {"content": held})
                else:
                    yield chunk(i, {"tool_calls": [tc.to_openai(index=k) for k, tc in enumerate(c.tool_calls)]})
                yield chunk(i, {}, c.final_reason)
        if plan.include_usage:
            yield event_json({"id": cid, "object": "chat.completion.chunk", "created": created, "model": plan.model,
                              "choices": [], "usage": _usage(plan, choices)})
        yield "[DONE]"
    finally:
        cancel_unfinished(choices)
