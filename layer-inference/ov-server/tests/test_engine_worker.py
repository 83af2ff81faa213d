"""The engine process's loop (`engine_worker.Worker.serve`), driven over a real socketpair.

- It survives a cancelled handle that refuses reads: a client that disconnects cancels its handle;
  if that lands between `can_read()` and `read()`, OpenVINO raises ("GenerationHandle cannot be
  used after it is stopped / cancelled"). Seen once in a full run when the loop was a thread: the
  worker died and every later request hung.
- A cancel between two steps is a cancel, not the "KV cache too small" error (real pipeline).
- A step that raises poisons OpenVINO's pipeline for every later request (reproduced here on the
  real pipeline): the loop reports `fatal` and exits, so the HTTP side rebuilds the engine.
- A schema OpenVINO cannot compile is refused before it reaches the pipeline (grammar check).
"""

from __future__ import annotations

import json
import logging
import socket
import threading

import openvino_genai as ov_genai
import pytest

from ov_server.channel import BlockingChannel
from ov_server.engine import SamplingParams
from ov_server.engine_worker import EXIT_PIPELINE_BROKEN, Worker, generation_config
from ov_server.grammar_check import GrammarCheck
from ov_server.tiny_model import build_tiny_model

DONE = ov_genai.GenerationStatus.FINISHED
RUNNING = ov_genai.GenerationStatus.RUNNING
F32 = {"INFERENCE_NUM_THREADS": 1, "INFERENCE_PRECISION_HINT": "f32"}
# Valid JSON Schema (the meta-schema accepts each) that OpenVINO's grammar compiler refuses.
UNCOMPILABLE = [
    {"$ref": "#/$defs/nope"},
    {"type": "integer", "minimum": 5, "maximum": 1},
    {"type": "string", "pattern": "(?=a)b"},
    {"type": "array", "minItems": 3, "maxItems": 1},
    {"enum": []},
]


class Out:
    def __init__(self, ids: list[int], reason) -> None:  # type: ignore[no-untyped-def]
        self.generated_ids = ids
        self.finish_reason = reason


class ScriptedHandle:
    """Yields one token per read; raises like OpenVINO once cancelled."""

    def __init__(self, tokens: int, refuse_after_cancel: bool = False) -> None:
        self.left = tokens
        self.cancelled = False
        self.refuse = refuse_after_cancel

    def can_read(self) -> bool:
        return True

    def read(self):  # type: ignore[no-untyped-def]
        if self.cancelled and self.refuse:
            raise RuntimeError("GenerationHandle cannot be used after it is stopped / cancelled.")
        self.left -= 1
        reason = ov_genai.GenerationFinishReason.LENGTH if self.left == 0 else ov_genai.GenerationFinishReason.NONE
        return {0: Out([7], reason)}

    def get_status(self):  # type: ignore[no-untyped-def]
        return DONE if self.left <= 0 else RUNNING

    def cancel(self) -> None:
        self.cancelled = True


class BrokenHandle(ScriptedHandle):
    """Refuses every read, cancelled or not (a sequence whose reading fails)."""

    def read(self):  # type: ignore[no-untyped-def]
        raise RuntimeError("scripted read failure")


class ScriptedPipe:
    """add_request -> a ScriptedHandle of max_new_tokens tokens; rid 1 refuses reads once
    cancelled, rid 9 refuses every read."""

    def add_request(self, rid, tensor, config):  # type: ignore[no-untyped-def]
        if rid == 9:
            return BrokenHandle(config.max_new_tokens)
        return ScriptedHandle(config.max_new_tokens, refuse_after_cancel=rid == 1)

    def step(self) -> None:
        pass


class Parent:
    """The HTTP side of the channel, blocking, for tests."""

    def __init__(self, worker: Worker) -> None:
        a, b = socket.socketpair()
        self.chan = BlockingChannel(a)
        self.result: list[int] = []
        self.thread = threading.Thread(target=lambda: self.result.append(worker.serve(BlockingChannel(b))),
                                       daemon=True)
        self.thread.start()

    def until(self, predicate, limit: int = 100_000) -> list:  # type: ignore[no-untyped-def]
        seen = []
        for _ in range(limit):
            msg = self.chan.recv(timeout=30)
            seen.append(msg)
            if predicate(msg):
                return seen
        raise AssertionError(f"not seen in {limit} messages")

    def close(self) -> int:
        self.chan.sock.close()
        self.thread.join(30)
        assert not self.thread.is_alive()
        return self.result[0]


def finishes(msgs: list) -> dict[int, str]:
    return {rid: reason for m in msgs if m[0] == "step" for rid, _, reason, _ in m[1] if reason}


def test_loop_survives_a_handle_that_refuses_reads() -> None:
    parent = Parent(Worker(ScriptedPipe(), None, "scripted"))
    parent.chan.send(("add", 1, [1, 2], SamplingParams(max_new_tokens=10_000), "req-one"))
    parent.chan.send(("add", 2, [1, 2], SamplingParams(max_new_tokens=10_000), None))
    parent.until(lambda m: m[0] == "admitted" and 2 in m[1] or m[0] == "step")
    parent.chan.send(("cancel", 1))  # the client went away: the next read of 1 raises
    seen = parent.until(lambda m: 1 in finishes([m]))
    assert finishes(seen)[1] == "cancelled"
    parent.chan.send(("add", 3, [1], SamplingParams(max_new_tokens=5), None))  # still served afterwards
    seen = parent.until(lambda m: 3 in finishes([m]))
    assert finishes(seen)[3] == "length"
    assert sum(len(ids) for m in seen if m[0] == "step" for rid, ids, _, _ in m[1] if rid == 3) == 5
    assert 2 not in finishes(seen)  # the other request kept running throughout
    assert parent.close() == 0  # the HTTP process gone (EOF): the loop ends cleanly


def test_a_failed_sequence_is_logged_under_the_meshs_request_id(caplog) -> None:  # type: ignore[no-untyped-def]
    """The engine process's line about one request names the request id the HTTP process got,
    so `homelab logs --request ID` finds it; that request ends with an error, the others go on."""
    parent = Parent(Worker(ScriptedPipe(), None, "scripted"))
    with caplog.at_level(logging.ERROR, logger="ov_server.engine"):
        parent.chan.send(("add", 2, [1], SamplingParams(max_new_tokens=3), "req-fine"))
        parent.chan.send(("add", 9, [1], SamplingParams(max_new_tokens=3), "req-boom"))
        seen = parent.until(lambda m: 9 in finishes([m]))
        if 2 not in finishes(seen):
            seen += parent.until(lambda m: 2 in finishes([m]))
    assert finishes(seen)[9] == "error" and finishes(seen)[2] == "length"
    failed = [r for r in caplog.records if "reading a sequence failed" in r.getMessage()]
    assert [r.rid for r in failed] == ["rid=req-boom"]
    assert parent.close() == 0


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):  # type: ignore[no-untyped-def]
    return build_tiny_model(tmp_path_factory.mktemp("m"))


def real_pipe(path):  # type: ignore[no-untyped-def]
    return ov_genai.ContinuousBatchingPipeline(str(path), ov_genai.SchedulerConfig(), "CPU", F32)


def test_cancel_between_steps_is_a_cancel_not_an_out_of_memory_error(tiny) -> None:
    """A stop string matched on text cancels the handle from the request side. When that lands
    between two steps and the request is alone, OpenVINO's next step has nothing to schedule and
    marks the request IGNORED (its out-of-memory status). Seen in CI as a 500 "KV cache too small"
    on a 23-token prompt; the real pipeline reproduces it deterministically here."""
    w = Worker(real_pipe(tiny), None, "tiny")
    assert w.add(1, [1, 2, 3, 4], SamplingParams(max_new_tokens=50, ignore_eos=True)) is None
    w.pipe.step()
    w.pipe.step()
    assert w.collect()[0][2] is None  # running, tokens handed over
    handle = w.running[1]
    w.cancel(1)
    w.pipe.step()
    assert handle.get_status() == ov_genai.GenerationStatus.IGNORED  # the trap itself
    for _ in range(3):  # as the loop does: read what is there, step, read again
        done = [u for u in w.collect() if u[2] is not None]
        if done:
            break
        w.pipe.step()
    assert [(rid, reason, message) for rid, _, reason, message in done] == [(1, "cancelled", "")]


def structured(schema: dict, tokens: int = 8) -> SamplingParams:
    return SamplingParams(max_new_tokens=tokens, temperature=0, json_schema=json.dumps(schema))


def test_a_failed_step_ends_the_loop_with_fatal(tiny) -> None:
    """Without the grammar check, an uncompilable schema reaches OpenVINO and the step raises. What
    the pipeline does next is not reliable: in a plain script every later step then fails ("this
    function cannot be called when we are already in scheduling phase", the state issue 10 saw as
    500s for every client), in other runs it recovers. So the loop never trusts it: it reports
    `fatal` (the reason, without build paths) and exits, and the HTTP side rebuilds the engine."""
    parent = Parent(Worker(real_pipe(tiny), None, "tiny"))
    parent.chan.send(("add", 1, [1, 2, 3], structured({"type": "wat"}), None))
    seen = parent.until(lambda m: m[0] == "fatal")
    assert seen[-1][1] == 'a generation step failed: Unsupported type "wat"'
    parent.thread.join(30)
    assert parent.result == [EXIT_PIPELINE_BROKEN]


@pytest.mark.parametrize("schema", [{"type": "wat"}, *UNCOMPILABLE], ids=json.dumps)
def test_uncompilable_schema_is_refused_and_the_pipeline_keeps_serving(tiny, schema) -> None:
    w = Worker(real_pipe(tiny), GrammarCheck(ov_genai, tiny), "tiny")
    status, message, grammar = w.add(1, [1, 2, 3], structured(schema))
    assert (status, grammar) == (400, True)
    assert "cannot be compiled" in message and ".cc" not in message and "/home" not in message
    assert not w.running
    assert w.add(2, [1, 2, 3], SamplingParams(max_new_tokens=4, ignore_eos=True)) is None
    assert w.add(3, [1, 2, 3], structured({"type": "object"}, tokens=40)) is None  # a good grammar still runs
    reasons = {}
    for _ in range(60):
        w.pipe.step()
        reasons.update({rid: reason for rid, _, reason, _ in w.collect() if reason})
        if len(reasons) == 2:
            break
    assert reasons == {2: "length", 3: "stop"}


def test_grammar_check_rebuilds_its_scratch_pipeline_and_caches(tiny) -> None:
    check = GrammarCheck(ov_genai, tiny)
    bad, good = structured({"type": "wat"}), structured({"type": "string", "maxLength": 3})

    def verdict(p: SamplingParams):  # type: ignore[no-untyped-def]
        from ov_server.engine_worker import grammar_key

        return check.error(grammar_key(p), generation_config(ov_genai, p).structured_output_config)

    assert verdict(bad) is not None
    assert verdict(good) is None  # the poisoned scratch pipeline was replaced
    assert verdict(bad) == verdict(bad)
    assert len(check._verdicts) == 2


def _stream(worker: Worker, tokens: int) -> list[list[int]]:
    """One greedy sequence through the loop: the ids of each `step` frame, in order."""
    parent = Parent(worker)
    parent.chan.send(("add", 1, [1, 2, 3], SamplingParams(max_new_tokens=tokens, temperature=0, ignore_eos=True),
                      None))
    seen = parent.until(lambda m: 1 in finishes([m]))
    assert finishes(seen)[1] == "length"
    assert parent.close() == 0
    return [ids for m in seen if m[0] == "step" for rid, ids, _, _ in m[1] if rid == 1 and ids]


def test_the_stream_interval_sends_fewer_frames_and_the_same_tokens(tiny) -> None:
    """With an interval, the first tokens still come one frame each (time to first text), the rest
    in frames of several; every token arrives once, in order: the same as one frame per step."""
    every_step = _stream(Worker(real_pipe(tiny), None, "tiny"), 300)
    held = _stream(Worker(real_pipe(tiny), None, "tiny", stream_interval_s=0.05), 300)
    assert sum(every_step, []) == sum(held, []) and len(sum(held, [])) == 300
    assert len(every_step) >= 250  # a frame per step (a step may carry two tokens at the end)
    assert [len(f) for f in held[:4]] == [1, 1, 1, 1]
    assert len(held) < 60  # 300 tokens at well under 50 ms each
