"""What a request sees of an engine: sampling parameters in, a `Sequence` of token events out.

The engine itself runs in its own process per model (`engine_process.ProcessEngine` on the HTTP
side, `engine_worker` in the child); this module holds the types both sides share and the
`Engine` protocol that `chat.py` programs against. Light on purpose: the engine process imports
it too (no FastAPI, no OpenVINO).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable
from collections.abc import Sequence as Seq
from dataclasses import dataclass, field
from typing import Any, Protocol

from .errors import APIError
from .registry import ModelSpec
from .toolcalls import ToolGrammar


@dataclass
class SamplingParams:
    """Plain and picklable: sent as is to the engine process, which turns it into an OpenVINO
    GenerationConfig in one place (`engine_worker.generation_config`)."""

    max_new_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    min_new_tokens: int = 0
    stop: list[str] = field(default_factory=list)
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    json_schema: str | None = None  # constrain the output to this JSON schema
    ignore_eos: bool = False
    tool_grammar: ToolGrammar | None = None  # constrain tool calls (toolcalls.py); excludes json_schema


@dataclass
class Tokens:
    ids: list[int]


@dataclass
class Finish:
    reason: str  # "stop" | "length" | "cancelled" | "error"
    message: str = ""
    status: int = 500  # HTTP status of an error: 503 when the engine is gone, 500 otherwise


Event = Tokens | Finish


Notify = Callable[[], None]


class EngineUnavailable(APIError):
    """The model's engine is gone (died, restarting, stopping): a 503 naming the cause."""

    def __init__(self, message: str) -> None:
        super().__init__(503, message, param="model", code="model_unavailable")


class EngineRejected(Exception):
    """The engine refused the request before generating: `status` 400 for the request's fault
    (`grammar`: its structured-output schema does not compile), 503 when the engine is stopping."""

    def __init__(self, message: str, status: int = 400, grammar: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.grammar = grammar


class Sequence:
    """One generation (one choice), handed from the engine to a request.

    The engine appends tokens and calls `notify` (thread-safe, e.g. via
    loop.call_soon_threadsafe) only when the reader has taken everything so
    far: a busy reader gets one wake-up for many tokens instead of one per
    token, which is what keeps the server's overhead small.
    """

    def __init__(self, notify: Notify) -> None:
        self._notify = notify
        self._lock = threading.Lock()
        self._ids: list[int] = []
        self._finish: Finish | None = None
        self._pending = False
        self.handle: Any = None  # has cancel()
        self.done = False
        self.cancelled = False  # set from the request side
        # Resolved when the engine has accepted the request (None: no admission step). Fails with
        # EngineRejected / EngineUnavailable, so a request can still get a 4xx/503 before its
        # first byte.
        self.admitted: asyncio.Future[None] | None = None

    def push(self, event: Event) -> None:
        with self._lock:
            if isinstance(event, Tokens):
                self._ids.extend(event.ids)
            else:
                self._finish = event
                self.done = True
            if self._pending:
                return
            self._pending = True
        try:
            self._notify()
        except RuntimeError:  # event loop closed: nobody is listening any more
            pass

    def take(self) -> tuple[list[int], Finish | None]:
        """Everything produced since the last call (reader side)."""
        with self._lock:
            ids, self._ids = self._ids, []
            fin, self._finish = self._finish, None
            self._pending = False
        return ids, fin

    def cancel(self) -> None:
        if not self.done and self.handle is not None:
            self.cancelled = True
            self.handle.cancel()


async def wait_admitted(seqs: Iterable[Sequence]) -> None:
    """Wait until the engine has accepted every sequence; on a refusal cancel the others and
    raise (EngineRejected / EngineUnavailable)."""
    seqs = list(seqs)
    try:
        for s in seqs:
            if s.admitted is not None:
                await s.admitted
    except BaseException:
        for s in seqs:
            s.cancel()
        raise


class TextStream(Protocol):
    """Token ids in, text deltas out (textproc.Detokenizer, bytevocab.ByteDetokenizer)."""

    def feed(self, new_ids: Seq[int]) -> str: ...

    def flush(self) -> str: ...


class Engine(Protocol):
    model_id: str
    context_length: int
    generated_tokens: int
    spec: ModelSpec

    @property
    def active(self) -> int: ...

    def render(self, messages: list[dict], tools: list[dict] | None) -> str: ...

    def encode(self, prompt: str) -> list[int]: ...

    def detokenizer(self) -> TextStream:
        """A new stream decoder for one generated sequence."""
        ...

    def submit(self, prompt_ids: list[int], params: SamplingParams, notify: Notify) -> Sequence: ...

    def close(self) -> None: ...
