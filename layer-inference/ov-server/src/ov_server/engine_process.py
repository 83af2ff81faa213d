"""The HTTP side of one model's engine process (the pattern of vLLM's engine core).

This process keeps everything textual (chat template, tokenizing, detokenizing, stop matching,
SSE); the child (`engine_worker`) owns OpenVINO's pipeline and steps it. So:
- a native crash in OpenVINO (SIGFPE, SIGSEGV, abort, the OOM killer) kills the child only: every
  sequence in flight ends with an error naming the cause, e.g. `engine for jerry-tiny died: SIGFPE
  (signal 8)`, and the manager starts a new engine;
- `step()` holds the GIL for the whole forward pass; in its own process it no longer stops this
  process's event loop, so detokenizing and SSE of one token overlap the next step.

Loading happens in the manager's thread (blocking, with the child's verdict); serving happens on
the event loop: the socket is read there (many frames per read when the loop is busy), and the
request side writes adds and cancels to it directly. The child's exit is seen by a waiter thread.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from collections.abc import Sequence as Seq
from pathlib import Path
from typing import Any

from meshkit import requestid

from .bytevocab import ByteDetokenizer, ByteVocab
from .bytevocab import build as build_byte_vocab
from .channel import BlockingChannel, FrameReader, encode
from .engine import (EngineRejected, EngineUnavailable, Finish, Notify, SamplingParams, Sequence, TextStream,
                     Tokens)
from .model_files import resolve_model_path
from .registry import ModelSpec
from .textproc import Detokenizer
from .tiny_model import MODEL_NAME as TINY_NAME
from .tiny_model import build_tiny_model
from .toolcalls import fold_for_plain_template, native_tool_support

log = logging.getLogger("ov_server.engine")

LOAD_TIMEOUT_S = 900.0  # a large model on a slow disk; a hung load is killed after this
STALL_CHECK_S = 0.5  # how often the watchdog looks (see ProcessEngine._watch)
STOP_GRACE_S = 5.0

ExitCallback = Callable[["ProcessEngine", str], None]
Placement = Callable[[str, ModelSpec], "tuple[int, ...] | None"]


class EngineDied(Exception):
    """The engine process died while loading (a signal or an exit without a message)."""


def exit_cause(returncode: int, fatal: bool = False, hung: bool = False) -> str:
    """The `cause` label of `ov_server_engine_restarts_total`: `step_failed` (the pipeline raised),
    `hung` (no progress within the model's stall_timeout_s: killed by us), the signal's name
    (`SIGSEGV`, `SIGFPE`, `SIGKILL`...), or `exit_code`. A short fixed set."""
    if fatal:
        return "step_failed"
    if hung:
        return "hung"
    if returncode < 0:
        try:
            return signal.Signals(-returncode).name
        except ValueError:
            return "signal"
    return "exit_code"


def describe_exit(returncode: int) -> str:
    """`SIGFPE (signal 8)` / `exit code 3`, with a hint where one helps."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = "signal"
        text = f"{name} (signal {-returncode})"
        if -returncode == signal.SIGKILL:
            text += "; killed from outside, e.g. by the out-of-memory killer"
        return text
    return f"exit code {returncode}"


class _RemoteHandle:
    """What a Sequence cancels: the request `rid` in the engine process."""

    __slots__ = ("_engine", "_rid")

    def __init__(self, engine: ProcessEngine, rid: int) -> None:
        self._engine = engine
        self._rid = rid

    def cancel(self) -> None:
        self._engine._send(("cancel", self._rid))


class _Protocol(asyncio.Protocol):
    def __init__(self, engine: ProcessEngine, reader: FrameReader) -> None:
        self._engine = engine
        self._reader = reader

    def data_received(self, data: bytes) -> None:
        for msg in self._reader.feed(data):
            self._engine._dispatch(msg)

    def connection_lost(self, exc: Exception | None) -> None:
        self._engine._channel_closed()


class ProcessEngine:
    """`Engine` (engine.py) backed by a child process. Built in the manager's thread."""

    def __init__(self, model_id: str, spec: ModelSpec, model_dir: Path, loop: asyncio.AbstractEventLoop,
                 log_level: str = "INFO", byte_vocab: bool = True, stream_interval_s: float = 0.0,
                 cpus: tuple[int, ...] | None = None) -> None:
        """`cpus`: the CPUs the engine process confines itself to (placement.py); None = any."""
        import openvino_genai as ov_genai

        self.model_id = model_id
        self.spec = spec
        self.generated_tokens = 0
        self._loop = loop
        self._seqs: dict[int, Sequence] = {}
        self._rids = itertools.count(1)
        self._transport: asyncio.Transport | None = None
        self._loop_tid: int | None = None  # the event loop's thread, where the socket is used
        self._fatal: str | None = None
        self._closing = False
        self._on_exit: ExitCallback | None = None
        self.unavailable: str | None = None  # set once the engine cannot take requests, with why
        self.exit_cause: str | None = None
        self.exit_kind: str | None = None  # metrics label (exit_cause()) once it ended unexpectedly
        self._heard_at = 0.0  # loop time of the engine's latest frame, or of the first submit after idle
        self._hung: str | None = None  # why the watchdog killed the engine
        self._terminated = False  # terminate() sent SIGTERM
        # (running, waiting, KV cache use 0..1) as the engine process last reported them
        self.stats: tuple[int, int, float] = (0, 0, 0.0)
        self._expected_exit = False
        self.started_at = time.monotonic()
        self.path = resolve_model_path(spec, model_dir)
        grammar_model = self.path if spec.builtin == TINY_NAME else _grammar_model(model_dir)

        parent_sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "ov_server.engine_worker", str(child_sock.fileno())],
                pass_fds=(child_sock.fileno(),), stdin=subprocess.DEVNULL)
        finally:
            child_sock.close()
        chan = BlockingChannel(parent_sock)
        try:
            msg = self._load(chan, {"model_id": model_id, "spec": spec.model_dump(), "path": str(self.path),
                                    "grammar_model": str(grammar_model),
                                    "model_dir": str(model_dir), "log_level": log_level,
                                    "stream_interval_s": stream_interval_s, "cpus": cpus})
        except BaseException:
            parent_sock.close()
            raise
        self.info: dict[str, Any] = msg[1]
        self.context_length: int = self.info["context_length"]
        try:
            # The child wrote the tokenizer's IR (fast to read; see converted.py),
            # and read it without crashing: a corrupt file cannot take this process down.
            self._tok = ov_genai.Tokenizer(self.info["tokenizer_path"])
            self._native_tools = native_tool_support(self._tok.chat_template)
            self._vocab = self._byte_vocab(model_id) if byte_vocab else None
            asyncio.run_coroutine_threadsafe(self._attach(parent_sock, chan.reader), loop).result(30)
        except BaseException:
            parent_sock.close()
            self.proc.kill()
            self.proc.wait()
            raise
        threading.Thread(target=self._wait_exit, name=f"engine-exit-{model_id}", daemon=True).start()

    def _load(self, chan: BlockingChannel, cfg: dict[str, Any]) -> tuple:
        """Send the load order; the engine's `ready` message, or raise why it did not load."""
        try:
            chan.send(cfg)
            msg = chan.recv(timeout=LOAD_TIMEOUT_S)
        except (EOFError, OSError):
            raise EngineDied(describe_exit(self._reap(10.0))) from None
        except TimeoutError:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError(f"loading took longer than {LOAD_TIMEOUT_S:.0f} s") from None
        if msg[0] != "ready":
            self._reap(10.0)
            raise RuntimeError(msg[1])
        return msg

    def _reap(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    async def _attach(self, sock: socket.socket, reader: FrameReader) -> None:
        self._loop_tid = threading.get_ident()
        sock.setblocking(False)
        transport, _ = await self._loop.create_unix_connection(lambda: _Protocol(self, reader), sock=sock)
        self._transport = transport  # type: ignore[assignment]
        self._loop.call_later(STALL_CHECK_S, self._watch)

    def _watch(self) -> None:
        """A hung engine (a call inside OpenVINO that never returns, a stopped process) fails no
        request by itself: with requests in flight and no frame for the model's stall_timeout_s
        (the engine sends one at least every HEARTBEAT_S while busy), kill it; the exit path then
        fails its requests with the reason and the manager restarts it."""
        if self.proc.poll() is not None or self._hung is not None:
            return
        silent = self._loop.time() - self._heard_at
        limit = self.spec.stall_timeout_s
        if self._seqs and not self._closing and silent > limit:
            self._hung = f"no progress for {silent:.0f} s (stall_timeout_s {limit:g})"
            log.error("engine for %s hung: %s; killing pid %d", self.model_id, self._hung, self.proc.pid)
            self.proc.kill()
            return
        self._loop.call_later(STALL_CHECK_S, self._watch)

    def on_exit(self, callback: ExitCallback) -> None:
        """`callback(engine, why)` on the event loop when the engine ends unexpectedly (at once if
        that already happened; the callback must tolerate a second call)."""
        self._on_exit = callback
        if self.exit_cause is not None and not self._expected_exit:
            self._loop.call_soon_threadsafe(callback, self, self.exit_cause)

    @property
    def pid(self) -> int:
        return self.proc.pid

    # -- tokenizer (this process) ------------------------------------------
    def render(self, messages: list[dict], tools: list[dict] | None) -> str:
        if not self._native_tools:
            # The template would drop the tools, the calls and the results: fold them into text.
            messages, tools = fold_for_plain_template(messages, tools), None
        return self._tok.apply_chat_template(messages, add_generation_prompt=True, tools=tools or None)

    def encode(self, prompt: str) -> list[int]:
        # The chat template already placed every special token it wants.
        return [int(i) for i in self._tok.encode(prompt, add_special_tokens=False).input_ids.data[0]]

    def decode(self, ids: Seq[int]) -> str:
        return self._tok.decode(list(ids)) if ids else ""

    def detokenizer(self) -> TextStream:
        # The table when it was proven to decode like the tokenizer; else the tokenizer's model.
        return ByteDetokenizer(self._vocab) if self._vocab is not None else Detokenizer(self.decode)

    def _byte_vocab(self, model_id: str) -> ByteVocab | None:
        started = time.perf_counter()
        vocab, why = build_byte_vocab(self._tok.get_vocab(), self._tok.decode)
        took = time.perf_counter() - started
        if vocab is None:
            log.info("model %s: streams are detokenized by the tokenizer model (%s; checked in %.2f s)",
                     model_id, why, took)
        else:
            log.info("model %s: streams are detokenized from its vocabulary (%d tokens, checked against "
                     "the tokenizer in %.2f s)", model_id, len(vocab.table), took)
        return vocab

    # -- generation (event loop) ---------------------------------------------
    @property
    def active(self) -> int:
        return len(self._seqs)

    def submit(self, prompt_ids: list[int], params: SamplingParams, notify: Notify) -> Sequence:
        if self.unavailable is not None:
            raise EngineUnavailable(self.unavailable)
        if self._closing:
            raise EngineUnavailable(f"model {self.model_id} is being unloaded")
        rid = next(self._rids)
        if not self._seqs:
            self._heard_at = self._loop.time()  # idle until now: the stall clock starts here
        seq = Sequence(notify)
        seq.handle = _RemoteHandle(self, rid)
        fut = self._loop.create_future()
        fut.add_done_callback(_retrieve)
        seq.admitted = fut
        self._seqs[rid] = seq
        self._send(("add", rid, prompt_ids, params, requestid.current.get()))
        return seq

    def _send(self, msg: tuple) -> None:
        if threading.get_ident() != self._loop_tid:
            self._loop.call_soon_threadsafe(self._send, msg)
            return
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(encode(msg))

    def _dispatch(self, msg: tuple) -> None:
        self._heard_at = self._loop.time()
        kind = msg[0]
        if kind == "step":
            seqs = self._seqs
            for rid, ids, reason, message in msg[1]:
                seq = seqs.get(rid)
                if seq is None:
                    continue
                if ids:
                    self.generated_tokens += len(ids)
                    seq.push(Tokens(ids))
                if reason is not None:
                    del seqs[rid]
                    seq.push(Finish(reason, message))
        elif kind == "admitted":
            for rid in msg[1]:
                seq = self._seqs.get(rid)
                if seq is not None and seq.admitted is not None and not seq.admitted.done():
                    seq.admitted.set_result(None)
            for rid, status, message, grammar in msg[2]:
                seq = self._seqs.pop(rid, None)
                if seq is None:
                    continue
                if seq.admitted is not None and not seq.admitted.done():
                    seq.admitted.set_exception(EngineRejected(message, status, grammar))
                seq.push(Finish("error", message, status=status))
        elif kind == "stats":
            self.stats = (msg[1], msg[2], msg[3])
        elif kind == "fatal":
            self._fatal = msg[1]
            self.unavailable = f"engine for {self.model_id} failed: {msg[1]}"

    def _channel_closed(self) -> None:
        # The child is exiting. Requests submitted from now on wait (their adds go nowhere) until
        # _exited fails them with the cause from the exit status, which follows at once.
        pass

    def _wait_exit(self) -> None:
        rc = self.proc.wait()
        try:
            self._loop.call_soon_threadsafe(self._exited, rc)
        except RuntimeError:  # the event loop is closed: the server is shutting down
            pass

    def _exited(self, rc: int) -> None:
        # Our own SIGTERM at shutdown is an expected end, not a death to log as an error.
        expected = self._closing and (rc == 0 or (self._terminated and rc == -signal.SIGTERM))
        self._expected_exit = expected
        if self._fatal is not None:
            why = f"engine for {self.model_id} failed: {self._fatal}"
        elif self._hung is not None:
            why = f"engine for {self.model_id} hung: {self._hung}; it was killed and restarts"
        elif expected:
            why = f"engine for {self.model_id} stopped"
        else:
            why = f"engine for {self.model_id} died: {describe_exit(rc)}"
        self.unavailable = why
        self.exit_cause = why
        self.exit_kind = exit_cause(rc, fatal=self._fatal is not None, hung=self._hung is not None)
        if not expected:
            log.error("%s (pid %d)", why, self.proc.pid)
        for seq in self._seqs.values():
            if seq.admitted is not None and not seq.admitted.done():
                seq.admitted.set_exception(EngineUnavailable(why))
            seq.push(Finish("error", why, status=503))
        self._seqs.clear()
        if self._transport is not None:
            self._transport.close()
        if not expected and self._on_exit is not None:
            self._on_exit(self, why)

    def close(self) -> None:
        """Take no new requests; the child finishes the running ones, then exits."""
        self._closing = True
        self._send(("stop",))

    def terminate(self, grace: float = STOP_GRACE_S) -> None:
        """Stop now (server shutdown): ask, wait `grace` seconds, then kill. Blocking."""
        self._closing = True
        if self.proc.poll() is None:
            try:
                self._terminated = True
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


_grammar_models: dict[Path, Path] = {}


def _grammar_model(model_dir: Path) -> Path:
    """The built-in model, written once per process, for the engine's grammar check."""
    if model_dir not in _grammar_models:
        _grammar_models[model_dir] = build_tiny_model(model_dir)
    return _grammar_models[model_dir]


def _retrieve(fut: asyncio.Future) -> None:
    """Mark a failed admission as seen, so an abandoned one does not log 'never retrieved'."""
    if not fut.cancelled():
        fut.exception()


def process_engine_factory(loop: asyncio.AbstractEventLoop, log_level: str = "INFO", byte_vocab: bool = True,
                           stream_interval_s: float = 0.0, placement: Placement | None = None,
                           ) -> Callable[[str, ModelSpec, Path], ProcessEngine]:
    """`placement(model_id, spec)`: the CPUs for that model's engine (None = any); it raises when the
    spec names none that can be used, which fails that model's load."""
    def factory(model_id: str, spec: ModelSpec, model_dir: Path) -> ProcessEngine:
        cpus = placement(model_id, spec) if placement is not None else None
        return ProcessEngine(model_id, spec, model_dir, loop, log_level, byte_vocab, stream_interval_s, cpus)

    return factory

