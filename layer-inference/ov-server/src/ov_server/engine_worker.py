"""The engine process: one model's ContinuousBatchingPipeline, stepped in a process of its own.

Started by `engine_process.ProcessEngine` as `python -m ov_server.engine_worker FD`, it talks
over the socket FD (`channel.py`). One thread, one loop: take the commands that arrived (add,
cancel, stop), step, send every sequence's new tokens in one frame. A native crash here (SIGFPE,
SIGSEGV, abort, the OOM killer) ends this process only; the HTTP process names the cause to the
clients of this model and starts a new engine. A step that raises leaves OpenVINO's pipeline in a
state where later steps keep failing (issue 10), so this process then reports `fatal` and exits,
and the HTTP side rebuilds it the same way.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import random
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from meshkit import requestid

import ov_server  # noqa: F401  (blocks OpenVINO telemetry before openvino is imported)

from .channel import BlockingChannel
from .converted import load_converted
from .cpu import detect, safe_properties
from .engine import SamplingParams
from .errors import summarize_exception
from .grammar_check import GrammarCheck
from .model_files import DEFAULT_CONTEXT, read_context_length
from .outbox import Outbox, Update
from .placement import format_cpus
from .registry import ModelSpec
from .toolcalls import structural_tag

log = logging.getLogger("ov_server.engine")

EXIT_LOAD_ERROR = 3  # the load failed with a message (sent as load_error)
EXIT_PIPELINE_BROKEN = 4  # a step raised (sent as fatal): the pipeline cannot be trusted any more
# How often a busy engine sends its scheduler figures (`("stats", running, waiting, kv ratio)`) for
# the HTTP side's /metrics gauges: reading them costs ~3 us, sending a frame a few more; once per
# step would add a frame to every token.
STATS_INTERVAL_S = 0.5
# While busy, the HTTP side hears from us at least this often (an "alive" frame when nothing else
# was sent), so silence longer than a model's stall_timeout_s means one call never returned.
HEARTBEAT_S = 1.0

# Fields of SamplingParams that change how a sequence is sampled but not its grammar: the rest
# (json_schema and anything added later) identifies a grammar for the check's cache.
Refusal = tuple[int, str, bool]  # (HTTP status, message, the grammar is at fault)

_SAMPLING_ONLY = {"max_new_tokens", "temperature", "top_p", "seed", "min_new_tokens", "stop",
                  "presence_penalty", "frequency_penalty", "ignore_eos"}


def generation_config(g: Any, p: SamplingParams) -> Any:
    """SamplingParams -> openvino_genai.GenerationConfig: the one place where this happens."""
    c = g.GenerationConfig()
    c.max_new_tokens = p.max_new_tokens
    # Neither with structured output: the grammar ends generation with EOS
    # (and never allows it before a complete value, so the answer is not
    # empty); forbidding EOS once the value is complete leaves no allowed
    # token at all, and the sampler then emits garbage past the JSON.
    # A tool grammar in `auto` mode leaves free text (and EOS) allowed around calls, unless only
    # one call may be made: then, as with a schema, nothing but EOS may follow it.
    tg = p.tool_grammar
    structured = p.json_schema is not None or (tg is not None and (tg.mode != "auto" or tg.single))
    c.min_new_tokens = 0 if structured else min(p.min_new_tokens, p.max_new_tokens)
    c.ignore_eos = p.ignore_eos and not structured
    if p.temperature > 0:
        c.do_sample = True
        c.temperature = p.temperature
        c.top_p = p.top_p
        # OpenVINO's default seed is fixed: without a client seed every
        # sampled answer would be identical, so draw one.
        c.rng_seed = p.seed % (2**32) if p.seed is not None else random.getrandbits(32)  # any int is a valid seed
    else:
        c.do_sample = False
    if p.stop:
        # Stops are also matched exactly on text by the server; passing
        # them here ends generation in the same step.
        c.stop_strings = set(p.stop)
        c.include_stop_str_in_output = True
    if p.presence_penalty:
        c.presence_penalty = p.presence_penalty
    if p.frequency_penalty:
        c.frequency_penalty = p.frequency_penalty
    if p.json_schema is not None:
        so = g.StructuredOutputConfig()
        so.json_schema = p.json_schema
        c.structured_output_config = so
    elif tg is not None:
        so = g.StructuredOutputConfig()
        so.structural_tags_config = structural_tag(g.StructuredOutputConfig, tg)
        c.structured_output_config = so
    return c


def grammar_key(p: SamplingParams) -> str:
    return repr(sorted((k, v) for k, v in asdict(p).items() if k not in _SAMPLING_ONLY))


def scheduler_config(g: Any, spec: ModelSpec) -> Any:
    sc = g.SchedulerConfig()
    opts = spec.scheduler
    sc.cache_size = opts.cache_size
    sc.num_kv_blocks = opts.num_kv_blocks
    sc.max_num_seqs = opts.max_num_seqs
    sc.max_num_batched_tokens = opts.max_num_batched_tokens
    sc.dynamic_split_fuse = opts.dynamic_split_fuse
    sc.enable_prefix_caching = opts.enable_prefix_caching
    return sc


def load_pipeline(model_id: str, spec: ModelSpec, path: Path, model_dir: Path) -> tuple[Any, dict[str, Any]]:
    """Compile the model with properties that are safe on this CPU; (pipeline, what /health shows).

    A GGUF is read from its converted IR under `model_dir` (converted.py), converted on its first
    load; an IR folder is read as it is. The HTTP process reads the tokenizer from `tokenizer_path`.
    """
    import openvino as ov
    import openvino_genai as g

    cpu = detect()
    default_precision = "n/a"
    if spec.device.upper().startswith("CPU"):
        default_precision = ov.Core().get_property("CPU", "INFERENCE_PRECISION_HINT").to_string()
    safe = safe_properties(dict(spec.properties), spec.device, cpu, default_precision)
    for note in safe.notes:
        log.warning("model %s: %s", model_id, note)
    if cpu.cap_error:
        log.warning("%s (oneDNN ignores it)", cpu.cap_error)
    cpus = sorted(os.sched_getaffinity(0))
    log.info("model %s on %s: compile properties %s, precision %s; CPU %s; engine on CPUs %s", model_id,
             spec.device, safe.properties, safe.precision, cpu.report(), format_cpus(cpus))
    t0 = time.perf_counter()

    def build(source: str, tokenizer: Any, extra: dict[str, Any]) -> Any:
        return g.ContinuousBatchingPipeline(source, tokenizer, scheduler_config(g, spec), spec.device,
                                            **safe.properties, **extra)

    cached = None
    if path.is_dir():
        ir_path = path
        pipe = build(str(path), g.Tokenizer(str(path)), {})
    else:
        _, pipe, ir_path, cached = load_converted(g, path, model_dir, build)
    info = {
        "tokenizer_path": str(ir_path),
        "converted_from_cache": cached,
        "pid": os.getpid(),
        "cpus": cpus,
        "context_length": spec.context_length or read_context_length(path) or DEFAULT_CONTEXT,
        "properties": safe.properties,
        "precision": safe.precision,
        "precision_notes": safe.notes,
        "cpu": cpu.report(),
        "load_seconds": round(time.perf_counter() - t0, 3),
    }
    return pipe, info


class Worker:
    """The serving loop around one pipeline. `grammar` None skips the grammar check (tests)."""

    def __init__(self, pipe: Any, grammar: GrammarCheck | None, model_id: str,
                 stream_interval_s: float = 0.0) -> None:
        import openvino as ov
        import openvino_genai as g

        self._g = g
        self._tensor: Callable[[list[int]], Any] = lambda ids: ov.Tensor(_int64_row(ids))
        self.pipe = pipe
        self.grammar = grammar
        self.model_id = model_id
        self.running: dict[int, Any] = {}  # rid -> GenerationHandle
        self.request_ids: dict[int, str | None] = {}  # rid -> the mesh's request id, for log lines
        self.cancelled: set[int] = set()
        self.stopping = False
        self._stats_at = 0.0  # monotonic time of the last stats frame
        self._said_at = 0.0  # monotonic time of the last frame of any kind (heartbeat)
        self._stats_sent: tuple | None = None
        self.outbox = Outbox(stream_interval_s)

    def stats(self) -> tuple[str, int, int, float] | None:
        """`("stats", running, waiting, KV cache use 0..1)` from the pipeline's own figures; None
        when the pipeline has none (test doubles)."""
        get = getattr(self.pipe, "get_metrics", None)
        if get is None:
            return None
        m = get()
        scheduled = int(m.scheduled_requests)
        return "stats", scheduled, max(int(m.requests) - scheduled, 0), min(max(float(m.cache_usage) / 100.0, 0.0), 1.0)

    def _send_stats(self, chan: BlockingChannel, now: float, force: bool = False) -> None:
        if not force and now - self._stats_at < STATS_INTERVAL_S:
            return
        self._stats_at = now
        msg = ("stats", 0, 0, 0.0) if force and not self.running else self.stats()
        if msg is not None and msg != self._stats_sent:
            self._stats_sent = msg
            chan.send(msg)

    def add(self, rid: int, prompt_ids: list[int], params: SamplingParams) -> Refusal | None:
        """Start a sequence; None if admitted, else (status, why not, grammar at fault)."""
        if self.stopping:
            return 503, f"engine for {self.model_id} is stopping (the model is being reloaded); retry", False
        try:
            config = generation_config(self._g, params)
            if self.grammar is not None and config.structured_output_config is not None:
                err = self.grammar.error(grammar_key(params), config.structured_output_config)
                if err is not None:
                    return 400, f"the JSON schema cannot be compiled into a grammar: {err}", True
            self.running[rid] = self.pipe.add_request(rid, self._tensor(prompt_ids), config)
        except Exception as exc:  # add_request validates the config: that request only
            return 400, summarize_exception(exc), False
        return None

    def cancel(self, rid: int) -> None:
        handle = self.running.get(rid)
        if handle is not None:
            self.cancelled.add(rid)
            handle.cancel()

    def collect(self) -> list[Update]:
        """After a step: (rid, new ids, finish reason or None, error message) per changed sequence.
        Hot path (once per token per sequence): few binding calls."""
        updates = []
        for rid, handle in list(self.running.items()):
            try:
                ids, reason, message = self._advance(rid, handle)
            except Exception as exc:
                # Typically a handle cancelled between two calls, which then refuses reads: that
                # request ends here; every other request goes on.
                if rid in self.cancelled:
                    ids, reason, message = [], "cancelled", ""
                else:
                    log.exception("model %s: reading a sequence failed", self.model_id,
                                  extra=self._rid(rid))
                    ids, reason, message = [], "error", f"generation failed: {summarize_exception(exc)}"
            if reason is not None:
                del self.running[rid]
                self.cancelled.discard(rid)
                self.request_ids.pop(rid, None)
            if ids or reason is not None:
                updates.append((rid, ids, reason, message))
        return updates

    def _rid(self, rid: int) -> dict[str, str]:
        """`extra` for a log line about one request: the id the HTTP side logs it under."""
        return {"rid": requestid.log_field(self.request_ids.get(rid))}

    def _advance(self, rid: int, h: Any) -> tuple[list[int], str | None, str]:
        reasons = self._g.GenerationFinishReason
        reason = reasons.NONE
        ids: list[int] = []
        if h.can_read():
            for out in h.read().values():
                ids += out.generated_ids
                fr = out.finish_reason
                if fr != reasons.NONE:
                    reason = fr
            if reason == reasons.NONE:
                return ids, None, ""  # still running
        status = self._g.GenerationStatus
        st = h.get_status()
        if st == status.RUNNING:
            return ids, None, ""
        if st == status.FINISHED:
            return ids, "length" if reason == reasons.LENGTH else "stop", ""
        # A handle cancelled between two steps, alone in the pipeline, leaves a step with nothing to
        # schedule, which OpenVINO reports as out of memory (IGNORED): it was still our cancel.
        if st == status.IGNORED and rid not in self.cancelled:
            return ids, "error", "request could not be scheduled (KV cache too small for the prompt)"
        return ids, "cancelled", ""  # CANCEL / STOP: the client went away or a stop string matched

    def apply(self, msg: tuple) -> tuple[int, Refusal | None] | None:
        """Apply one command; for an add, (rid, refusal or None)."""
        kind = msg[0]
        if kind == "add":
            _, rid, prompt_ids, params, request_id = msg
            self.request_ids[rid] = request_id
            refusal = self.add(rid, prompt_ids, params)
            if refusal is not None:
                self.request_ids.pop(rid, None)
            return rid, refusal
        if kind == "cancel":
            self.cancel(msg[1])
        elif kind == "stop":
            self.stopping = True
        return None

    def serve(self, chan: BlockingChannel) -> int:
        try:
            return self._serve(chan)
        except (BrokenPipeError, ConnectionResetError):
            return 0  # the HTTP process is gone (seen on a send): nobody to serve

    def _serve(self, chan: BlockingChannel) -> int:
        while True:
            try:
                # Idle: block until a command (or the parent's exit: EOF). Busy: take what is there.
                msgs = chan.poll() if self.running else [chan.recv(), *chan.poll()]
            except EOFError:
                return 0  # the HTTP process is gone: nobody to serve
            admitted: list[int] = []
            refused: list[tuple[int, int, str, bool]] = []
            for msg in msgs:
                verdict = self.apply(msg)
                if verdict is not None:
                    rid, refusal = verdict
                    if refusal is None:
                        admitted.append(rid)
                    else:
                        refused.append((rid, *refusal))
            if admitted or refused:
                chan.send(("admitted", admitted, refused))
            if not self.running:
                if self.stopping:
                    return 0
                continue
            try:
                self.pipe.step()
            except Exception as exc:
                message = f"a generation step failed: {summarize_exception(exc)}"
                in_flight = ", ".join(requestid.log_field(self.request_ids.get(r)) for r in self.running)
                log.error("model %s: %s; the pipeline cannot be trusted any more, exiting (in flight: %s)",
                          self.model_id, message, in_flight)
                chan.send(("fatal", message))
                return EXIT_PIPELINE_BROKEN
            self.outbox.add(self.collect())
            now = time.monotonic()
            updates = self.outbox.take(now, idle=not self.running)
            if updates:
                chan.send(("step", updates))
                self._said_at = now
            elif now - self._said_at >= HEARTBEAT_S:
                chan.send(("alive",))  # a step without output (a long prompt's prefill chunk)
                self._said_at = now
            # Going idle (the loop then blocks on the channel): say so now, not at the next request.
            self._send_stats(chan, now, force=not self.running)


def confine(cpus: list[int] | tuple[int, ...]) -> None:
    """Run this whole process on `cpus` (placement.py says why): every thread there is now, and,
    inherited, every thread OpenVINO starts later (its sampler pool, its inference threads)."""
    for tid in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(tid), cpus)
        except ProcessLookupError:
            pass  # a thread that just ended


def _int64_row(ids: list[int]) -> Any:
    import numpy as np

    return np.asarray([ids], dtype=np.int64)


def main(argv: list[str]) -> int:
    try:
        return _main(argv)
    except (BrokenPipeError, ConnectionResetError):
        return 0  # the HTTP process went away while we were loading or sending: nobody to serve


def _main(argv: list[str]) -> int:
    # A native crash prints this process's Python stack to the log, then dies of its signal as usual.
    faulthandler.enable()
    # Ctrl-C in a terminal reaches the whole process group: shutting down is the HTTP process's job.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    chan = BlockingChannel(socket.socket(fileno=int(argv[0])))
    try:
        cfg = chan.recv()
    except EOFError:
        return 0
    # Same `[rid=ID]` field as the HTTP process's lines, so `homelab logs --request ID` finds ours.
    requestid.install(f"%(asctime)s %(levelname)s %(name)s[{cfg['model_id']} pid {os.getpid()}] [%(rid)s] %(message)s",
                      level=cfg.get("log_level", "INFO"))
    model_id = cfg["model_id"]
    if cfg.get("cpus"):
        try:
            confine(cfg["cpus"])
        except OSError as exc:  # offline, or outside this cgroup's cpuset
            chan.send(("load_error", f"cannot run on CPUs {format_cpus(cfg['cpus'])}: {exc.strerror}"))
            return EXIT_LOAD_ERROR
    try:
        spec = ModelSpec.model_validate(cfg["spec"])
        pipe, info = load_pipeline(model_id, spec, Path(cfg["path"]), Path(cfg["model_dir"]))
        import openvino_genai as g

        grammar = GrammarCheck(g, Path(cfg["grammar_model"]))
    except Exception as exc:  # a bad model or device: say why, the HTTP side keeps serving the others
        chan.send(("load_error", summarize_exception(exc)))
        return EXIT_LOAD_ERROR
    chan.send(("ready", info))
    return Worker(pipe, grammar, model_id, cfg.get("stream_interval_s", 0.0)).serve(chan)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
