"""The end of one chat request: its metrics and its one log line.

The log line names the request id (the log format's `rid=` field, meshkit.requestid), the model,
the HTTP status, token counts and timings, never what was said: prompts and completions are
logged only under `HOMELAB_LOG_CONTENT=1` (a debugging switch, documented in SERVICE_SPEC.md).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from meshkit.requestid import content_logging

from .metrics import ServerMetrics

if TYPE_CHECKING:
    from .chat import Choice, Plan

log = logging.getLogger("ov_server.requests")


class RequestRecord:
    """Started when a request arrives; `done()` once, when its last byte is out."""

    def __init__(self, metrics: ServerMetrics) -> None:
        self.metrics = metrics
        self.t0 = time.monotonic()
        self.model = "unknown"  # a served model id once the request names one
        self.plan: Plan | None = None
        self.choices: Sequence[Choice] = ()
        self.recorded = False

    def log_prompt(self, messages: list[dict]) -> None:
        if content_logging():
            log.info("prompt model=%s messages=%s", self.model, json.dumps(messages, ensure_ascii=False))

    def done(self, status: int) -> None:
        if self.recorded:
            return
        self.recorded = True
        now = time.monotonic()
        seconds = now - self.t0
        plan, choices = self.plan, self.choices
        prompt = len(plan.prompt_ids) if plan is not None and choices else 0
        completion = sum(c.tokens for c in choices)
        m = self.metrics
        m.request_done(self.model, status, seconds, prompt, completion)
        firsts = [c.first_at for c in choices if c.first_at is not None]
        ttft = min(firsts) - self.t0 if firsts else None
        if ttft is not None and plan is not None and plan.stream:
            m.first_token(self.model, ttft)
        for c in choices:
            if c.first_at is not None and c.tokens > 1:
                m.per_output_token(self.model, (c.last_at - c.first_at) / (c.tokens - 1))
        log.info("chat model=%s status=%d stream=%s prompt_tokens=%d completion_tokens=%d ttft=%s duration=%.3fs",
                 self.model, status, bool(plan and plan.stream), prompt, completion,
                 f"{ttft:.3f}s" if ttft is not None else "-", seconds)
        if content_logging() and choices:
            log.info("completion model=%s choices=%s", self.model,
                     json.dumps([c.text for c in choices], ensure_ascii=False))
