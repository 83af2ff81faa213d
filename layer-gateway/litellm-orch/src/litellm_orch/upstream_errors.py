"""Turn LiteLLM's error text into a short sentence a user can act on, with the right status.

LiteLLM reports a failed call as a chain of its exception class names around the backend's own
answer, plus routing hints and docs links, e.g.

    litellm.ContextWindowExceededError: litellm.BadRequestError: ContextWindowExceededError:
    OpenAIException - This model's maximum context length is 8192 tokens, ...
    model=jerry-tiny. context_window_fallbacks=None. fallbacks=None.
    Set 'context_window_fallback' - https://docs.litellm.ai/docs/routing#fallbacks
    LiteLLM: model group 'jerry-tiny' failed with the error above. No fallback was attempted.

`shape()` keeps what happened (the backend's message, parameter and code when it sent OpenAI's
shape) and replaces the rest with what to do. Pure functions: the sample texts in the tests are
real LiteLLM 1.108.7 output; an upgrade that changes them fails those tests and the e2e ones.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from typing import Any

from .errors import error_body

_CLASS = re.compile(r"litellm\.(\w+)")
_UPSTREAM_CODE = re.compile(r"^Error code: (\d{3})(?: - )?")
_COOLDOWN = re.compile(r"[Tt]ry again in (\d+) seconds")
_CONTEXT = re.compile(r"maximum context length is ([\d,]+)|([\d,]+)-token context")
_USED = re.compile(r"(?:messages|prompt) (?:use|uses|has|is) ([\d,]+) tokens|needs ([\d,]+) tokens")
# LiteLLM's trailers: routing hints, docs links, the model-group line.
_TRAILERS = re.compile(r"\n(?:model=|Received Model Group|Available Model Group|LiteLLM: model group|Set '|"
                       r"context_window_fallbacks=).*", re.S)

# LiteLLM exception class -> status of the backend's answer it stands for.
_CLASS_STATUS = {"BadRequestError": 400, "AuthenticationError": 401, "PermissionDeniedError": 403,
                 "NotFoundError": 404, "UnprocessableEntityError": 422, "RateLimitError": 429,
                 "InternalServerError": 500, "APIError": 500, "ServiceUnavailableError": 503}


@dataclass(frozen=True)
class Context:
    """What the gateway knows about the request that failed."""

    model: str | None = None
    tools: int = 0
    timeout_s: float | None = None
    mid_stream: bool = False


@dataclass(frozen=True)
class Shaped:
    status: int
    body: dict
    retry: bool  # False -> `x-should-retry: false`: the official clients must not repeat it
    retry_after: int | None = None


@dataclass(frozen=True)
class _Parsed:
    cls: str  # the most specific LiteLLM exception class named, or ""
    status: int | None  # the backend's HTTP status, when known
    message: str  # the backend's message (or LiteLLM's, stripped of its decoration)
    param: str | None
    code: str | None


def _backend_json(text: str) -> dict | None:
    """The backend's OpenAI-shaped error inside LiteLLM's text (JSON, or the SDK's Python repr)."""
    start = text.find("{")
    if start < 0:
        return None
    blob = text[start:].strip()
    for load in (json.loads, ast.literal_eval):
        try:
            value = load(blob)
        except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
            continue
        if isinstance(value, dict):
            inner = value.get("error", value)
            if isinstance(inner, dict) and isinstance(inner.get("message"), str):
                return inner
            if isinstance(inner, str):
                return {"message": inner}
    return None


def parse(message: str) -> _Parsed:
    classes = _CLASS.findall(message)
    # The first class is the most specific one (ContextWindowExceededError before BadRequestError).
    cls = classes[0] if classes else ""
    core = message.split("OpenAIException - ")[-1] if "OpenAIException - " in message else message
    core = re.sub(r"^(?:(?:litellm\.)?\w+(?:Error|Exception|Timeout):\s*)+", "", core)
    core = _TRAILERS.sub("", core).strip()
    status = None
    code_match = _UPSTREAM_CODE.match(core)
    if code_match:
        status = int(code_match.group(1))
        core = core[code_match.end():].strip()
    param = code = None
    backend = _backend_json(core)
    if backend:
        core = backend["message"]
        param = backend.get("param") if isinstance(backend.get("param"), str) else None
        raw_code = backend.get("code")
        code = raw_code if isinstance(raw_code, str) and not raw_code.isdigit() else None
    if status is None:
        status = _CLASS_STATUS.get(cls)
    return _Parsed(cls, status, core.strip(), param, code)


def _name(ctx: Context) -> str:
    return ctx.model or "the model"


def _sentence(text: str) -> str:
    text = text.strip().rstrip(".")
    return f"{text}." if text else ""


def _shaped(status: int, message: str, param: str | None, code: str | None, retry: bool,
            retry_after: int | None = None) -> Shaped:
    return Shaped(status, error_body(status, message, param, code), retry, retry_after)


def shape(status: int, message: str, ctx: Context) -> Shaped:
    """The error a client should see for LiteLLM's `status` and error `message`."""
    p = parse(message)
    name = _name(ctx)
    prefix = f"The answer from {name} was cut off: " if ctx.mid_stream else ""
    if p.cls == "ContextWindowExceededError" or p.code == "context_length_exceeded":
        limit = _CONTEXT.search(p.message)
        used = _USED.search(p.message)
        tokens = (limit.group(1) or limit.group(2)).replace(",", "") if limit else ""
        size = f"{int(tokens):,}-token context" if tokens else "context"
        needed = (used.group(1) or used.group(2)).replace(",", "") if used else ""
        over = f" (it needs {int(needed):,} tokens)" if needed else ""
        tools = f", including the {ctx.tools} tool definitions sent with it" if ctx.tools else ""
        todo = "send fewer or shorter tool definitions, " if ctx.tools else ""
        return _shaped(400, f"The prompt is longer than {name}'s {size}{over}{tools}. Shorten the conversation "
                            f"or start a new one, {todo}or lower max_tokens.", p.param or "messages",
                       "context_length_exceeded", retry=False)
    if p.cls in ("Timeout", "APITimeoutError") or "timed out" in p.message.lower():
        limit = f" within {ctx.timeout_s:g} s" if ctx.timeout_s else " in time"
        return _shaped(504, f"{prefix}{name} did not answer{limit}. Try a shorter prompt or a lower max_tokens; if "
                            "it keeps happening, the backend is overloaded or stuck.", None, "upstream_timeout",
                       retry=False)
    if p.cls == "APIConnectionError" or p.message.rstrip(".").lower() in ("connection error", "connection refused"):
        if ctx.mid_stream:
            return _shaped(502, f"{prefix}the connection to its backend was lost; the answer is incomplete. Retry "
                                "the request.", None, "backend_disconnected", retry=False)
        return _shaped(503, f"{name} is not available: its backend does not answer. Try again in a minute; if it "
                            "persists, the operator should check `homelab status`.", None, "backend_unavailable",
                       retry=True)
    if "No deployments available" in p.message:
        wait = _COOLDOWN.search(p.message)
        seconds = int(wait.group(1)) if wait else 5
        return _shaped(503, f"{name} is not available right now: its backend failed moments ago and is paused. "
                            f"Try again in {seconds} s.", None, "backend_cooling_down", retry=True, retry_after=seconds)
    upstream = p.status or status
    detail = _sentence(p.message) or f"HTTP {upstream} with no detail."
    if upstream in (401, 403):
        # The backend refused the GATEWAY's key: a mesh misconfiguration, not the client's fault.
        return _shaped(502, f"{prefix}{name}'s backend refused the gateway's key ({detail}) The operator must give "
                            "the gateway and the backend the same key.", None, "backend_auth_failed", retry=False)
    if upstream == 404:
        return _shaped(502, f"{prefix}{name}'s backend does not serve it ({detail}) The gateway's routing is out of "
                            "date: the operator should run `homelab render` and restart the gateway.", None,
                       "backend_not_found", retry=False)
    if upstream == 429:
        return _shaped(429, f"{prefix}{name}'s backend is busy: {detail} Try again shortly.", p.param, p.code or
                       "rate_limited", retry=True)
    if upstream is not None and 400 <= upstream < 500:
        return _shaped(upstream, f"{prefix}{detail}", p.param, p.code, retry=False)
    if upstream == 503:
        return _shaped(503, f"{prefix}{name}'s backend is not ready: {detail} Try again in a minute.", None,
                       p.code or "backend_unavailable", retry=True)
    if upstream is not None and upstream >= 500:
        return _shaped(502, f"{prefix}{name}'s backend failed: {detail} Retrying the same request will most likely "
                            "fail the same way.", None, p.code or "backend_error", retry=False)
    # Not a backend failure: LiteLLM's own answer, without its decoration.
    final = status if status >= 400 else 500
    return _shaped(final, f"{prefix}{detail}", p.param, p.code, retry=final < 500 or final == 503)


def error_message(payload: Any) -> tuple[str, str | None] | None:
    """(message, code) of an OpenAI-shaped error payload (LiteLLM's or FastAPI's `detail`), else None."""
    if not isinstance(payload, dict):
        return None
    err = payload.get("error")
    if isinstance(err, dict) and isinstance(err.get("message"), str):
        code = err.get("code")
        return err["message"], str(code) if code is not None else None
    if isinstance(payload.get("detail"), str):
        return payload["detail"], None
    return None


