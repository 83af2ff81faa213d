"""The inference engine: one OpenVINO GenAI ContinuousBatchingPipeline per
model, driven by one worker thread that calls `step()`.

Why this shape: `LLMPipeline.generate()` is not re-entrant, and a global lock
would serialize every request. The continuous-batching pipeline instead takes
requests at any time (`add_request`) and advances all running sequences by one
token per `step()`, so concurrent requests share each forward pass. The worker
thread owns `step()`; request handlers only add requests, read results from
their own asyncio queue, and cancel their handle when the client goes away.
"""

from __future__ import annotations

import itertools
import json
import logging
import random
import threading
from collections.abc import Callable
from collections.abc import Sequence as Seq
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .registry import ModelSpec
from .tiny_model import build_tiny_model

log = logging.getLogger("ov_server.engine")

DEFAULT_CONTEXT = 4096


@dataclass
class SamplingParams:
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


@dataclass
class Tokens:
    ids: list[int]


@dataclass
class Finish:
    reason: str  # "stop" | "length" | "cancelled" | "error"
    message: str = ""


Event = Tokens | Finish


Notify = Callable[[], None]


class Sequence:
    """One generation (one choice), handed from the worker thread to a request.

    The worker appends tokens and calls `notify` (thread-safe, e.g. via
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
        self.handle: Any = None
        self.done = False
        self.cancelled = False  # set from the request side; the handle may then refuse reads

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


class Engine(Protocol):
    model_id: str
    context_length: int
    generated_tokens: int

    @property
    def active(self) -> int: ...

    def render(self, messages: list[dict], tools: list[dict] | None) -> str: ...

    def encode(self, prompt: str) -> list[int]: ...

    def decode(self, ids: Seq[int]) -> str: ...

    spec: ModelSpec

    def submit(self, prompt_ids: list[int], params: SamplingParams, notify: Notify) -> Sequence: ...

    def close(self) -> None: ...


def resolve_model_path(spec: ModelSpec, model_dir: Path) -> Path:
    if spec.builtin is not None:
        return build_tiny_model(model_dir)
    assert spec.path is not None
    return Path(spec.path)


def read_context_length(path: Path) -> int | None:
    """Context window from GGUF metadata or an IR folder's config.json."""
    try:
        if path.suffix == ".gguf":
            import gguf

            reader = gguf.GGUFReader(str(path))
            arch_field = reader.fields.get("general.architecture")
            if arch_field is None:
                return None
            arch = bytes(arch_field.parts[-1]).decode()
            f = reader.fields.get(f"{arch}.context_length")
            return int(f.parts[-1][0]) if f is not None else None
        cfg = path / "config.json"
        if cfg.is_file():
            data = json.loads(cfg.read_text())
            for key in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
                if isinstance(data.get(key), int):
                    return int(data[key])
    except Exception as exc:  # metadata is a hint; fall back to the default
        log.warning("could not read context length from %s: %s", path, exc)
    return None


_request_ids = itertools.count(1)


class OVEngine:
    def __init__(self, model_id: str, spec: ModelSpec, model_dir: Path) -> None:
        import openvino_genai as ov_genai

        self._ov_genai = ov_genai
        self.model_id = model_id
        self.spec = spec
        path = resolve_model_path(spec, model_dir)
        if not path.exists():
            raise FileNotFoundError(f"model path {path} does not exist")
        if path.is_dir() and not (path / "openvino_model.xml").is_file():
            raise FileNotFoundError(f"{path} is not an OpenVINO IR folder (no openvino_model.xml)")
        self.path = path
        sc = ov_genai.SchedulerConfig()
        opts = spec.scheduler
        sc.cache_size = opts.cache_size
        sc.num_kv_blocks = opts.num_kv_blocks
        sc.max_num_seqs = opts.max_num_seqs
        sc.max_num_batched_tokens = opts.max_num_batched_tokens
        sc.dynamic_split_fuse = opts.dynamic_split_fuse
        sc.enable_prefix_caching = opts.enable_prefix_caching
        self._pipe = ov_genai.ContinuousBatchingPipeline(str(path), sc, spec.device, dict(spec.properties))
        self._tok = self._pipe.get_tokenizer()
        self._reasons = ov_genai.GenerationFinishReason
        self.context_length = spec.context_length or read_context_length(path) or DEFAULT_CONTEXT
        self.generated_tokens = 0
        self._seqs: list[Sequence] = []
        self._cv = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name=f"engine-{model_id}", daemon=True)
        self._thread.start()

    # -- tokenizer ---------------------------------------------------------
    def render(self, messages: list[dict], tools: list[dict] | None) -> str:
        return self._tok.apply_chat_template(messages, add_generation_prompt=True, tools=tools or None)

    def encode(self, prompt: str) -> list[int]:
        # The chat template already placed every special token it wants.
        return [int(i) for i in self._tok.encode(prompt, add_special_tokens=False).input_ids.data[0]]

    def decode(self, ids: Seq[int]) -> str:
        return self._tok.decode(list(ids)) if ids else ""

    # -- generation --------------------------------------------------------
    @property
    def active(self) -> int:
        with self._cv:
            return len(self._seqs)

    def _config(self, p: SamplingParams) -> Any:
        g = self._ov_genai.GenerationConfig()
        g.max_new_tokens = p.max_new_tokens
        # Neither with structured output: the grammar ends generation with EOS
        # (and never allows it before a complete value, so the answer is not
        # empty); forbidding EOS once the value is complete leaves no allowed
        # token at all, and the sampler then emits garbage past the JSON.
        structured = p.json_schema is not None
        g.min_new_tokens = 0 if structured else min(p.min_new_tokens, p.max_new_tokens)
        g.ignore_eos = p.ignore_eos and not structured
        if p.temperature > 0:
            g.do_sample = True
            g.temperature = p.temperature
            g.top_p = p.top_p
            # OpenVINO's default seed is fixed: without a client seed every
            # sampled answer would be identical, so draw one.
            g.rng_seed = p.seed % (2**32) if p.seed is not None else random.getrandbits(32)  # any int is a valid seed
        else:
            g.do_sample = False
        if p.stop:
            # Stops are also matched exactly on text by the server; passing
            # them here ends generation in the same step.
            g.stop_strings = set(p.stop)
            g.include_stop_str_in_output = True
        if p.presence_penalty:
            g.presence_penalty = p.presence_penalty
        if p.frequency_penalty:
            g.frequency_penalty = p.frequency_penalty
        if p.json_schema is not None:
            so = self._ov_genai.StructuredOutputConfig()
            so.json_schema = p.json_schema
            g.structured_output_config = so
        return g

    def submit(self, prompt_ids: list[int], params: SamplingParams, notify: Notify) -> Sequence:
        import numpy as np
        import openvino as ov

        seq = Sequence(notify)
        tensor = ov.Tensor(np.asarray([prompt_ids], dtype=np.int64))
        with self._cv:
            if self._closing:
                raise RuntimeError(f"model {self.model_id} is being unloaded")
            seq.handle = self._pipe.add_request(next(_request_ids), tensor, self._config(params))
            self._seqs.append(seq)
            self._cv.notify()
        return seq

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._seqs and not self._closing:
                    self._cv.wait()
                if not self._seqs and self._closing:
                    return
                seqs = list(self._seqs)
            try:
                self._pipe.step()
            except Exception as exc:  # keep serving: fail these requests only
                log.exception("model %s: step failed", self.model_id)
                with self._cv:
                    for s in seqs:
                        if s in self._seqs:
                            self._seqs.remove(s)
                        s.push(Finish("error", f"generation failed: {exc}"))
                continue
            for s in seqs:
                try:
                    fin = self._advance(s)
                except Exception as exc:  # the worker must outlive any one request
                    # Typically a handle cancelled by its client between two calls, which then
                    # refuses reads: that request ends here; every other request goes on.
                    if s.cancelled:
                        fin = Finish("cancelled")
                    else:
                        log.exception("model %s: reading a sequence failed", self.model_id)
                        fin = Finish("error", f"generation failed: {exc}")
                if fin is None:
                    continue
                with self._cv:
                    if s in self._seqs:
                        self._seqs.remove(s)
                s.push(fin)

    def _advance(self, s: Sequence) -> Finish | None:
        """Hand over what `s` produced in the last step; its Finish once it is done, else None.

        Hot path (once per token per sequence): few binding calls.
        """
        reasons = self._reasons
        h = s.handle
        reason = reasons.NONE
        if h.can_read():
            ids: list[int] = []
            for out in h.read().values():
                ids += out.generated_ids
                fr = out.finish_reason
                if fr != reasons.NONE:
                    reason = fr
            if ids:
                self.generated_tokens += len(ids)
                s.push(Tokens(ids))
            if reason == reasons.NONE:
                return None  # still running
        st = h.get_status()
        status = self._ov_genai.GenerationStatus
        if st == status.RUNNING:
            return None
        if st == status.FINISHED:
            return Finish("length" if reason == reasons.LENGTH else "stop")
        # A handle cancelled between two steps, alone in the pipeline, leaves a step with nothing to
        # schedule, which OpenVINO reports as out of memory (IGNORED): it was still our cancel.
        if st == status.IGNORED and not s.cancelled:
            return Finish("error", "request could not be scheduled (KV cache too small for the prompt)")
        return Finish("cancelled")  # CANCEL / STOP: the client went away or a stop string matched

    def close(self) -> None:
        """Stop taking requests; the worker exits once running ones finish."""
        with self._cv:
            self._closing = True
            self._cv.notify()


def ov_engine_factory(model_id: str, spec: ModelSpec, model_dir: Path) -> Engine:
    return OVEngine(model_id, spec, model_dir)
