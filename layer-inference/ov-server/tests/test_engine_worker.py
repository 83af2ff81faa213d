"""The engine's worker thread survives cancelled handles: one that refuses reads, one that
OpenVINO reports as out of memory.

A client that disconnects cancels its generation handle from the request side; if that lands
between the worker's `can_read()` and `read()`, OpenVINO raises ("GenerationHandle cannot be used
after it is stopped / cancelled"). Seen once in a full run: the worker died and every later
request hung. Here a scripted handle raises on demand, deterministically, inside the real loop.
"""

from __future__ import annotations

import threading

import openvino_genai as ov_genai

from ov_server.engine import Finish, OVEngine, Sequence, Tokens

DONE = ov_genai.GenerationStatus.FINISHED
RUNNING = ov_genai.GenerationStatus.RUNNING


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


class StepPipe:
    def step(self) -> None:
        pass


def _engine() -> OVEngine:
    eng = OVEngine.__new__(OVEngine)  # the worker loop alone: no model needed
    eng.model_id, eng._ov_genai, eng._reasons = "scripted", ov_genai, ov_genai.GenerationFinishReason
    eng._pipe, eng._seqs, eng._cv, eng._closing, eng.generated_tokens = StepPipe(), [], threading.Condition(), False, 0
    return eng


def _collect(seq: Sequence, done: threading.Event) -> list:
    events: list = []

    def notify() -> None:
        ids, fin = seq.take()
        if ids:
            events.append(Tokens(ids))
        if fin:
            events.append(fin)
            done.set()

    seq._notify = notify
    return events


def test_worker_survives_a_handle_that_refuses_reads() -> None:
    eng = _engine()
    doomed_done, ok_done = threading.Event(), threading.Event()
    doomed, ok = Sequence(lambda: None), Sequence(lambda: None)
    doomed_events, ok_events = _collect(doomed, doomed_done), _collect(ok, ok_done)
    doomed.handle = ScriptedHandle(10_000, refuse_after_cancel=True)
    ok.handle = ScriptedHandle(10_000)
    eng._seqs = [doomed, ok]
    worker = threading.Thread(target=eng._run, daemon=True)
    worker.start()
    try:
        doomed.cancel()  # the client went away: the next read raises
        assert doomed_done.wait(10), "the cancelled sequence never finished"
        assert isinstance(doomed_events[-1], Finish) and doomed_events[-1].reason == "cancelled"
        assert worker.is_alive()
        late = Sequence(lambda: None)  # a request arriving afterwards is still served
        late_done = threading.Event()
        late_events = _collect(late, late_done)
        late.handle = ScriptedHandle(5)
        with eng._cv:
            eng._seqs.append(late)
            eng._cv.notify()
        assert late_done.wait(10), "the worker stopped serving after the refused read"
        assert [e.reason for e in late_events if isinstance(e, Finish)] == ["length"]
        assert sum(len(e.ids) for e in late_events if isinstance(e, Tokens)) == 5
    finally:
        ok.handle.left = 1  # its next read is its last: let it finish, then stop the worker
        eng.close()
        worker.join(10)
    assert not worker.is_alive()
    assert ok_done.is_set() and [e.reason for e in ok_events if isinstance(e, Finish)] == ["length"]


def test_cancel_between_steps_is_a_cancel_not_an_out_of_memory_error(tmp_path) -> None:
    """A stop string matched on text cancels the handle from the request side. When that lands
    between two steps and the request is alone, OpenVINO's next step has nothing to schedule and
    marks the request IGNORED (its out-of-memory status). Seen in CI as a 500 "KV cache too small"
    on a 23-token prompt; the real pipeline reproduces it deterministically here."""
    import numpy as np
    import openvino as ov

    from ov_server.engine import SamplingParams
    from ov_server.tiny_model import build_tiny_model

    eng = _engine()
    eng._pipe = ov_genai.ContinuousBatchingPipeline(str(build_tiny_model(tmp_path)), ov_genai.SchedulerConfig(), "CPU", {})
    seq = Sequence(lambda: None)
    config = eng._config(SamplingParams(max_new_tokens=50, ignore_eos=True))
    seq.handle = eng._pipe.add_request(1, ov.Tensor(np.asarray([[1, 2, 3, 4]], dtype=np.int64)), config)
    eng._pipe.step()
    eng._pipe.step()
    assert eng._advance(seq) is None  # running, tokens handed over
    seq.cancel()
    eng._pipe.step()
    assert seq.handle.get_status() == ov_genai.GenerationStatus.IGNORED  # the trap itself
    fin = None
    for _ in range(3):  # as the worker does: read what is there, step, read again
        fin = eng._advance(seq)
        if fin is not None:
            break
        eng._pipe.step()
    assert fin is not None and (fin.reason, fin.message) == ("cancelled", "")
