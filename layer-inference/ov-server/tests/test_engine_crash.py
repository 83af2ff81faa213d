"""A dying engine process is a named error and a restart, never a hang, a reset or a dead server.

Each model's engine runs in its own process; these tests kill one (SIGKILL, SIGFPE: what the OOM
killer and OpenVINO's divide-by-zero on AMX CPUs do) or give it a model file that crashes it at
load (a corrupt GGUF: SIGSEGV inside OpenVINO), and check what clients of that model see, that
the other models never stop answering, and that the engine comes back. The models: jerry-tiny,
jerry-copy (a copy of it under another name) and the real jerry-chat; each kind is killed while
the other keeps answering.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time

import httpx
import pytest
from conftest import start_server, stop_server, wait_until

from ov_server.tiny_model import build_tiny_model

HELLO = [{"role": "user", "content": "Hello!"}]
LONG = {"max_tokens": 8000, "ignore_eos": True}
REGISTRY = """models:
  jerry-tiny:
    builtin: jerry-tiny
  jerry-copy:
    path: copy.gguf
    properties: {INFERENCE_NUM_THREADS: 1, INFERENCE_PRECISION_HINT: f32, ENABLE_CPU_PINNING: false}
  jerry-chat:
    builtin: jerry-chat
"""
MODELS = ("jerry-tiny", "jerry-copy", "jerry-chat")


@pytest.fixture(scope="module")
def two_models(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("crash")
    shutil.copy(build_tiny_model(tmp / "m"), tmp / "copy.gguf")
    reg = tmp / "models.yaml"
    reg.write_text(REGISTRY)
    s = start_server(tmp, {"OV_SERVER_REGISTRY": str(reg)})
    yield s, reg
    stop_server(s)


def model(s, name: str) -> dict:
    return s.health().json()["models"].get(name, {})


@pytest.fixture
def serving(two_models):
    """Both models serving before a test starts (an earlier test may have left one restarting)."""
    s, reg = two_models
    assert wait_until(lambda: all(model(s, m).get("state") == "ok" for m in MODELS), timeout=120)
    return s, reg


def chat(s, name: str, **kw) -> httpx.Response:
    return httpx.post(s.base + "/v1/chat/completions", json={"model": name, "messages": HELLO, **kw}, timeout=60)


def answers(s, name: str) -> bool:
    r = chat(s, name, max_tokens=3, ignore_eos=True)
    return r.status_code == 200 and r.json()["usage"]["completion_tokens"] == 3


def wait_restarted(s, name: str, old_pid: int) -> float:
    """Seconds until `name` is served by a new engine process again."""
    t0 = time.monotonic()
    assert wait_until(lambda: model(s, name).get("state") == "ok" and model(s, name).get("pid") != old_pid,
                      timeout=120), model(s, name)
    assert answers(s, name)
    return time.monotonic() - t0


def test_engine_killed_mid_stream_ends_the_stream_with_the_cause(serving):
    s, _ = serving
    pid = model(s, "jerry-copy")["pid"]
    restarts = model(s, "jerry-copy")["restarts"]
    events: list[dict | str] = []
    with httpx.stream("POST", s.base + "/v1/chat/completions", timeout=60, headers={"x-request-id": "crash-1"},
                      json={"model": "jerry-copy", "messages": HELLO, "stream": True, **LONG}) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if not line.startswith("data: "):
                continue
            data = line[6:]
            events.append(data if data == "[DONE]" else json.loads(data))
            if len(events) == 3:
                os.kill(pid, signal.SIGKILL)
    errors = [e["error"] for e in events if isinstance(e, dict) and "error" in e]
    assert errors == [{"message": "engine for jerry-copy died: SIGKILL (signal 9); killed from outside, "
                                  "e.g. by the out-of-memory killer",
                       "type": "server_error", "param": "model", "code": "model_unavailable",
                       "request_id": "crash-1"}]
    assert events[-1] == "[DONE]"  # the stream ends properly: no reset, no hang
    assert answers(s, "jerry-tiny") and answers(s, "jerry-chat")  # the other models never stopped
    h = s.health()
    assert h.status_code == 200  # one model still serves: the backend is up, the model is not
    seconds = wait_restarted(s, "jerry-copy", pid)
    assert model(s, "jerry-copy")["restarts"] == restarts + 1
    print(f"jerry-copy answered again {seconds:.1f} s after its engine was killed")


def test_engine_dying_under_a_non_streamed_request_is_a_503_naming_the_signal(serving):
    s, _ = serving
    pid = model(s, "jerry-copy")["pid"]
    result: list[httpx.Response] = []
    t = threading.Thread(target=lambda: result.append(chat(s, "jerry-copy", **LONG, n=2)))
    t.start()
    assert wait_until(lambda: model(s, "jerry-copy").get("active_requests") == 2, interval=0.01)
    os.kill(pid, signal.SIGFPE)  # what OpenVINO's CPU plugin does on AMX at bf16 with one thread
    t.join(60)
    (r,) = result
    assert r.status_code == 503
    assert r.json()["error"]["message"] == "engine for jerry-copy died: SIGFPE (signal 8)"
    assert model(s, "jerry-copy")["state"] in ("restarting", "ok")
    assert answers(s, "jerry-tiny") and answers(s, "jerry-chat")
    wait_restarted(s, "jerry-copy", pid)


def test_request_right_after_a_death_is_a_503_before_the_first_byte(serving):
    s, _ = serving
    pid = model(s, "jerry-copy")["pid"]
    os.kill(pid, signal.SIGKILL)
    # Sent at once: the engine is dead, and a new one needs at least the 0.5 s backoff plus a load.
    with httpx.stream("POST", s.base + "/v1/chat/completions", timeout=60,
                      json={"model": "jerry-copy", "messages": HELLO, "stream": True, "max_tokens": 5}) as r:
        body = r.read()
    assert r.status_code == 503 and r.headers["content-type"] == "application/json"
    err = json.loads(body)["error"]
    assert err["param"] == "model" and err["code"] == "model_unavailable"
    assert "engine for jerry-copy" in err["message"] and "SIGKILL (signal 9)" in err["message"]
    wait_until(lambda: model(s, "jerry-copy").get("state") == "restarting", timeout=5)
    h = s.health().json()
    assert h["status"] in ("degraded", "ok")
    wait_restarted(s, "jerry-copy", pid)


class Pinger:
    """Asks `name` for 3 tokens in a loop until stopped; records every status (the other model)."""

    def __init__(self, s, name: str) -> None:
        self.s, self.name, self.statuses = s, name, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            r = chat(self.s, self.name, max_tokens=3, ignore_eos=True)
            self.statuses.append(r.status_code)
            self._stop.wait(0.1)  # steady, not a flood: the restart being measured shares the CPU

    def __enter__(self) -> Pinger:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(60)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGFPE], ids=["SIGKILL", "SIGFPE"])
def test_real_model_engine_killed_mid_stream_and_before_one(serving, sig):
    """jerry-chat's engine killed during a stream, then right before one: each client gets the
    named error, jerry-tiny answers every request throughout, jerry-chat is back within a bound."""
    s, _ = serving
    name = f"{sig.name} (signal {int(sig)})"
    with Pinger(s, "jerry-tiny") as tiny:
        pid = model(s, "jerry-chat")["pid"]
        events: list[dict | str] = []
        with httpx.stream("POST", s.base + "/v1/chat/completions", timeout=60,
                          json={"model": "jerry-chat", "messages": HELLO, "stream": True, **LONG}) as r:
            assert r.status_code == 200
            for line in r.iter_lines():
                if line.startswith("data: "):
                    events.append(line[6:] if line[6:] == "[DONE]" else json.loads(line[6:]))
                    if len(events) == 3:
                        os.kill(pid, sig)
        errors = [e["error"] for e in events if isinstance(e, dict) and "error" in e]
        assert len(errors) == 1 and errors[0]["code"] == "model_unavailable", events[-3:]
        assert errors[0]["message"].startswith(f"engine for jerry-chat died: {name}")
        assert events[-1] == "[DONE]"
        back_after_stream = wait_restarted(s, "jerry-chat", pid)

        pid = model(s, "jerry-chat")["pid"]
        os.kill(pid, sig)
        assert wait_until(lambda: model(s, "jerry-chat").get("state") != "ok", timeout=10)
        r = chat(s, "jerry-chat", stream=True, max_tokens=5)
        assert r.status_code == 503 and r.headers["content-type"] == "application/json"
        assert r.json()["error"]["code"] == "model_unavailable" and name in r.json()["error"]["message"]
        back_after_idle = wait_restarted(s, "jerry-chat", pid)
        assert model(s, "jerry-chat")["converted_from_cache"]  # a restart does not convert again
    assert len(tiny.statuses) >= 3 and set(tiny.statuses) == {200}, tiny.statuses
    assert model(s, "jerry-tiny")["restarts"] == 0
    print(f"jerry-chat answered again {back_after_stream:.1f} s / {back_after_idle:.1f} s after {name}; "
          f"jerry-tiny answered {len(tiny.statuses)} requests meanwhile")


def corrupt_gguf(path, source) -> None:
    """The tiny model with its header's key/value count set to 10**9: OpenVINO's GGUF reader
    crashes on it (SIGSEGV), as on the corrupt files of issue 10."""
    data = bytearray(source.read_bytes())
    data[16:24] = (10**9).to_bytes(8, "little")
    path.write_bytes(bytes(data))


def test_a_model_that_crashes_its_engine_at_load_is_marked_failed(serving, tmp_path):
    s, reg = serving
    corrupt_gguf(tmp_path / "corrupt.gguf", reg.parent / "copy.gguf")
    reg.write_text(REGISTRY + f"  jerry-corrupt:\n    path: {tmp_path / 'corrupt.gguf'}\n")
    try:
        assert wait_until(lambda: model(s, "jerry-corrupt").get("state") == "restarting", timeout=60)
        assert all(answers(s, m) for m in MODELS)  # the others keep serving meanwhile
        assert wait_until(lambda: model(s, "jerry-corrupt").get("state") == "failed", timeout=120)
        err = model(s, "jerry-corrupt")["error"]
        assert err.startswith("engine for jerry-corrupt died while loading: SIGSEGV (signal 11)"), err
        assert "3 times in a row" in err
        r = chat(s, "jerry-corrupt")
        assert r.status_code == 503 and "SIGSEGV (signal 11)" in r.json()["error"]["message"]
        h = s.health()
        assert h.status_code == 200 and h.json()["status"] == "degraded"
        assert s.proc.poll() is None  # the server itself never went down
        assert all(answers(s, m) for m in MODELS)
    finally:
        reg.write_text(REGISTRY)
    assert wait_until(lambda: "jerry-corrupt" not in s.health().json()["models"])


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_engines_never_outlive_the_server(tmp_path, how):
    s = start_server(tmp_path)
    pid = model(s, "jerry-tiny")["pid"]
    assert alive(pid)
    s.proc.send_signal(how)
    s.proc.wait(30)
    # SIGTERM: the server stops its engines; SIGKILL: each engine sees its channel close and exits.
    assert wait_until(lambda: not alive(pid), timeout=30)


@pytest.fixture(scope="module")
def stalling(tmp_path_factory):
    """jerry-copy with a 2 s stall timeout, jerry-tiny with the default."""
    tmp = tmp_path_factory.mktemp("stall")
    shutil.copy(build_tiny_model(tmp / "m"), tmp / "copy.gguf")
    reg = tmp / "models.yaml"
    reg.write_text("models:\n  jerry-tiny:\n    builtin: jerry-tiny\n  jerry-copy:\n    path: copy.gguf\n"
                   "    properties: {INFERENCE_NUM_THREADS: 1, INFERENCE_PRECISION_HINT: f32}\n"
                   "    stall_timeout_s: 2\n")
    s = start_server(tmp, {"OV_SERVER_REGISTRY": str(reg)})
    assert wait_until(lambda: all(model(s, m).get("state") == "ok" for m in ("jerry-tiny", "jerry-copy")),
                      timeout=120)
    yield s
    stop_server(s)


def test_a_hung_engine_is_killed_its_stream_told_why_and_it_comes_back(stalling):
    """SIGSTOP freezes the engine process the way a call that never returns would: nothing dies,
    so only the watchdog can end the client's wait."""
    s = stalling
    pid = model(s, "jerry-copy")["pid"]
    events: list[dict | str] = []
    frozen_at = 0.0
    with httpx.stream("POST", s.base + "/v1/chat/completions", timeout=60, headers={"x-request-id": "hang-1"},
                      json={"model": "jerry-copy", "messages": HELLO, "stream": True, **LONG}) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if not line.startswith("data: "):
                continue
            events.append(line[6:] if line[6:] == "[DONE]" else json.loads(line[6:]))
            if len(events) == 3:
                os.kill(pid, signal.SIGSTOP)
                frozen_at = time.monotonic()
    waited = time.monotonic() - frozen_at
    errors = [e["error"] for e in events if isinstance(e, dict) and "error" in e]
    assert len(errors) == 1, events[-3:]
    assert errors[0]["code"] == "model_unavailable" and errors[0]["request_id"] == "hang-1"
    assert errors[0]["message"].startswith("engine for jerry-copy hung: no progress for ")
    assert "stall_timeout_s 2" in errors[0]["message"]
    assert events[-1] == "[DONE]"
    assert 2 <= waited < 30, waited  # the timeout, plus the watchdog's period and a kill
    assert answers(s, "jerry-tiny")  # the other model never stopped
    wait_restarted(s, "jerry-copy", pid)
    metrics = httpx.get(s.base + "/metrics").text
    restarts = [line for line in metrics.splitlines() if line.startswith("ov_server_engine_restarts_total")]
    assert restarts == ['ov_server_engine_restarts_total{cause="hung",model="jerry-copy"} 1.0'], restarts


def test_a_busy_engine_is_not_mistaken_for_a_hung_one(stalling):
    """Long generations on the 2 s model: the engine's heartbeat keeps the watchdog quiet while
    it works, and an idle engine is never killed however long it waits."""
    s = stalling
    pid = model(s, "jerry-copy")["pid"]
    time.sleep(3)  # idle for longer than the stall timeout
    chunks = 0
    with httpx.stream("POST", s.base + "/v1/chat/completions", timeout=60,
                      json={"model": "jerry-copy", "messages": HELLO, "stream": True, **LONG}) as r:
        t0 = time.monotonic()
        for line in r.iter_lines():
            assert '"error"' not in line, line
            chunks += line.startswith("data: ")
            if time.monotonic() - t0 > 4:  # twice the stall timeout of generating: enough
                break
    assert chunks > 10 and model(s, "jerry-copy")["pid"] == pid and model(s, "jerry-copy")["restarts"] == 1
    assert model(s, "jerry-copy")["pid"] == pid
