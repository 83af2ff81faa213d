"""Contain OptiLLM 0.4.0's failure modes in-process, without forking it (used by launch.py).

What OptiLLM does on its own, and what the guard makes of it:
- Any failure is `500 {"error": "<text>"}`: the gateway could only say "Error code: 500". The
  guard answers OpenAI's error shape with the real cause and a status that says whose fault it is:
  an answer cut at `max_tokens` is the client's 400 naming `max_tokens` (re2 fails on it; moa and
  bon answer 200 `stop` with a cut candidate or a placeholder text, which the guard catches too); a failed call back to the gateway is a 502 carrying the
  gateway's own message (4xx relayed as is). moa and bon swallow failed calls, retry them one
  by one and answer 200 with an "Error: ..." text: the guard fails the approach's remaining calls
  at once after the first failure and answers that failure instead. Every error carries
  `x-should-retry: false`: one client request runs the approach once.
- Its OpenAI client retries failed calls itself (2 retries by default); the guard's client does
  not (`max_retries=0`): the gateway decides about retries.
- Request ids: the gateway's `x-request-id` is held for the request (meshkit.requestid), sent on
  with every call the approach makes back to the gateway, returned as a response header, named
  in error bodies and printed as `rid=` in every log line (OptiLLM's own and werkzeug's). One
  `chat model=... status=... calls=... duration=...` line per request; prompts never (OptiLLM
  logs request bodies only at `--log debug`).
- Non-streamed answers report `usage` with completion tokens only (prompt_tokens and
  total_tokens missing, so 0 downstream). The guard counts every call the approach makes to the
  gateway and reports their sums: what the request really cost.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from meshkit import requestid

log = logging.getLogger("optillm_guard.requests")

# OptiLLM's moa answer when its final call was cut at max_tokens (moa.py, optillm 0.4.0).
MOA_TRUNCATED = "Error: Response was truncated due to token limit"
UPSTREAM_TIMEOUT_S = 300.0  # the gateway's own timeout for an alias call


@dataclass
class Ledger:
    """What the approach's calls to the gateway did, for one client request."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    truncated_at: int | None = None  # max_tokens of a call whose answer was cut, when one was
    truncated: bool = False
    truncated_texts: set[str] = field(default_factory=set)  # those answers, as approaches strip them
    failed_status: int | None = None  # HTTP status of the first failed call (None: no answer at all)
    failed_message: str | None = None
    failed: bool = False


def _gateway_message(exc: Exception) -> str:
    """The gateway's own error message inside an openai SDK exception."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return inner["message"]
        if isinstance(inner, str):
            return inner
    return str(getattr(exc, "message", "") or exc)


def record_call(ledger: Ledger | None, response: Any, max_tokens: Any) -> None:
    if ledger is None or response is None:
        return
    ledger.calls += 1
    usage = getattr(response, "usage", None)
    if usage is not None:
        ledger.prompt_tokens += getattr(usage, "prompt_tokens", 0) or 0
        ledger.completion_tokens += getattr(usage, "completion_tokens", 0) or 0
    for choice in getattr(response, "choices", None) or []:
        if getattr(choice, "finish_reason", None) == "length":
            ledger.truncated = True
            ledger.truncated_at = max_tokens if isinstance(max_tokens, int) else ledger.truncated_at
            content = getattr(getattr(choice, "message", None), "content", None)
            if isinstance(content, str):
                ledger.truncated_texts.add(content.strip())


def record_failure(ledger: Ledger | None, exc: Exception) -> None:
    if ledger is None or ledger.failed:
        return
    import openai

    ledger.failed = True
    if isinstance(exc, openai.APIStatusError):
        ledger.failed_status = exc.status_code
        ledger.failed_message = _gateway_message(exc)
    elif isinstance(exc, openai.APITimeoutError):
        ledger.failed_message = f"the gateway did not answer within {UPSTREAM_TIMEOUT_S:g} s"
    else:
        ledger.failed_message = "the gateway could not be reached"


def _approach_and_target(model: Any) -> tuple[str, str]:
    if isinstance(model, str) and "-" in model:
        approach, target = model.split("-", 1)
        return approach, target
    return "requested", str(model)


def error_payload(status: int, message: str, param: str | None, code: str) -> dict:
    kind = "invalid_request_error" if status < 500 else "server_error"
    err = {"message": message, "type": kind, "param": param, "code": code}
    rid = requestid.current.get()
    if rid is not None:
        err["request_id"] = rid  # a client's report can be found in every service's log
    return {"error": err}


def shape_failure(ledger: Ledger, optillm_text: str, model: Any) -> tuple[int, dict]:
    """(status, OpenAI error body) for an approach that failed with OptiLLM's `optillm_text`."""
    approach, target = _approach_and_target(model)
    if ledger.failed and ledger.failed_status is not None and 400 <= ledger.failed_status < 500:
        return ledger.failed_status, error_payload(ledger.failed_status, ledger.failed_message or optillm_text, None,
                                                   "upstream_rejected")
    if ledger.failed:
        detail = (ledger.failed_message or "").rstrip(".")
        return 502, error_payload(502, f"The {approach} approach could not get an answer from {target}: {detail}.",
                                  None, "upstream_failed")
    if ledger.truncated:
        return 400, truncated_payload(approach, target, ledger.truncated_at)
    return 500, error_payload(500, f"The {approach} approach failed: {optillm_text.rstrip('.')}.", None,
                              "approach_failed")


def truncated_payload(approach: str, target: str, max_tokens: int | None) -> dict:
    at = f"max_tokens={max_tokens}" if max_tokens else "max_tokens"
    return error_payload(400, f"The {approach} approach needs complete answers, but {target}'s answer was cut at {at}. "
                              "Raise max_tokens (a few hundred) and retry.", "max_tokens", "answer_truncated")


def finish_answer(payload: dict, ledger: Ledger, model: Any) -> tuple[int, dict]:
    """A successful answer with real usage totals, or the 400 it really is when the answer the
    approach settled on is one that was cut at max_tokens (moa and bon fall back to a candidate,
    or to a placeholder text, and call it `stop`)."""
    approach, target = _approach_and_target(model)
    if ledger.failed:  # moa and bon answer 200 with "Error: ..." text when their calls failed
        return shape_failure(ledger, "a call to the gateway failed", model)
    for choice in payload.get("choices") or []:
        content = (choice.get("message") or {}).get("content")
        if isinstance(content, str) and (content.startswith(MOA_TRUNCATED) or content.strip() in ledger.truncated_texts):
            return 400, truncated_payload(approach, target, ledger.truncated_at)
    if ledger.calls:
        usage = dict(payload.get("usage") or {})
        usage.update(prompt_tokens=ledger.prompt_tokens, completion_tokens=ledger.completion_tokens,
                     total_tokens=ledger.prompt_tokens + ledger.completion_tokens)
        payload["usage"] = usage
    payload.setdefault("id", f"chatcmpl-{uuid.uuid4().hex}")
    payload.setdefault("object", "chat.completion")
    payload.setdefault("created", int(time.time()))
    return 200, payload


def install(server: Any) -> None:
    """Wire the guard into `optillm.server` (before `main()` starts Flask)."""
    import flask
    import httpx
    import openai

    state: dict[str, Any] = {}

    def client() -> Any:
        if "client" not in state:
            base_url = server.server_config.get("base_url") or None
            made = openai.OpenAI(api_key=os.environ.get("OPENAI_API_KEY", ""), base_url=base_url, max_retries=0,
                                 timeout=UPSTREAM_TIMEOUT_S, http_client=httpx.Client(timeout=UPSTREAM_TIMEOUT_S))
            create = made.chat.completions.create

            def counted_create(*args: Any, **kwargs: Any) -> Any:
                ledger = flask.g.get("ledger") if flask.has_app_context() else None
                if ledger is not None and ledger.failed:
                    # moa and bon catch a failed call and try again call by call (then answer a
                    # placeholder text): the next calls would fail the same way.
                    raise RuntimeError("an earlier call of this request to the gateway failed")
                rid = requestid.current.get()
                if rid is not None:  # the same id at the gateway and the backend for every call
                    kwargs["extra_headers"] = {**(kwargs.get("extra_headers") or {}), requestid.HEADER: rid}
                try:
                    response = create(*args, **kwargs)
                except openai.OpenAIError as exc:
                    record_failure(ledger, exc)
                    raise
                record_call(ledger, response, kwargs.get("max_tokens"))
                return response

            made.chat.completions.create = counted_create
            state["client"] = made
        return state["client"]

    # One client for every request (OptiLLM builds one, with its own connection pool, per request).
    server.get_config = lambda: (client(), os.environ.get("OPENAI_API_KEY"))
    app = server.app

    # OptiLLM's basicConfig handler (and werkzeug's access lines through it) get the rid= field.
    requestid.install("%(asctime)s - %(levelname)s - %(name)s %(rid)s - %(message)s")
    logging.getLogger("optillm_guard").setLevel(logging.INFO)

    def open_ledger() -> None:
        flask.g.ledger = Ledger()
        flask.g.started = time.monotonic()
        # Each request has its own thread (werkzeug): the id stays for the access line after it.
        requestid.current.set(requestid.accept(flask.request.headers.get(requestid.HEADER)))

    # First of the before_request hooks: OptiLLM's key check answers 401 from its own hook, and
    # that answer must carry the id too.
    app.before_request_funcs.setdefault(None, []).insert(0, open_ledger)

    @app.after_request
    def tag(response: flask.Response) -> flask.Response:
        # Registered first, so it runs last (Flask runs after_request hooks in reverse).
        rid = requestid.current.get()
        if rid is not None:
            response.headers[requestid.HEADER] = rid
        if flask.request.path == "/v1/chat/completions":
            ledger = flask.g.get("ledger") or Ledger()
            model = (flask.request.get_json(silent=True) or {}).get("model") if flask.request.is_json else None
            log.info("chat model=%s status=%d calls=%d duration=%.3fs", model if requestid.valid(model) else "-",
                     response.status_code, ledger.calls, time.monotonic() - flask.g.get("started", time.monotonic()))
        return response

    @app.after_request
    def shape(response: flask.Response) -> flask.Response:
        if response.mimetype != "application/json" or flask.request.path == "/health":
            return response
        try:
            payload = json.loads(response.get_data())
        except ValueError:
            return response
        ledger = flask.g.get("ledger") or Ledger()
        model = (flask.request.get_json(silent=True) or {}).get("model") if flask.request.is_json else None
        error = payload.get("error") if isinstance(payload, dict) else None
        if isinstance(error, str):  # OptiLLM's own shape: {"error": "text"}
            if response.status_code == 401:
                status, body = 401, error_payload(401, error, "api_key", "invalid_api_key")
            elif flask.request.path == "/v1/chat/completions":
                status, body = shape_failure(ledger, error, model)
            else:
                status, body = response.status_code, error_payload(response.status_code, error, None, "optillm_error")
        elif response.status_code == 200 and isinstance(payload, dict) and "choices" in payload:
            status, body = finish_answer(payload, ledger, model)
        else:
            return response
        response.set_data(json.dumps(body))
        response.status_code = status
        if status >= 400:
            response.headers["x-should-retry"] = "false"
        return response
