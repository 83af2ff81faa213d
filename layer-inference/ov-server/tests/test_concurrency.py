"""Concurrent requests share the engine; a disconnect stops generation."""

import json
import socket
import threading
import time

import httpx
from conftest import wait_until

MODEL = "jerry-tiny"
HELLO = [{"role": "user", "content": "Hello!"}]


def test_concurrent_streams_interleave(server):
    events: list[tuple[int, int]] = []  # (stream, chunk number) in arrival order
    lock = threading.Lock()
    barrier = threading.Barrier(4)

    def run(k: int) -> None:
        barrier.wait()
        body = {"model": MODEL, "messages": HELLO, "max_tokens": 4000, "stream": True, "ignore_eos": True}
        with httpx.stream("POST", server.base + "/v1/chat/completions", json=body, timeout=60) as r:
            for i, line in enumerate(r.iter_lines()):
                if line.startswith("data:"):
                    with lock:
                        events.append((k, i))

    threads = [threading.Thread(target=run, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    order = [k for k, _ in events]
    assert sorted(set(order)) == [0, 1, 2, 3]
    # Every stream's first chunk arrives before any stream's last one: they
    # ran side by side, not one after another behind a lock.
    firsts = [order.index(k) for k in range(4)]
    lasts = [len(order) - 1 - order[::-1].index(k) for k in range(4)]
    assert max(firsts) < min(lasts)


def test_requests_run_in_the_engine_at_the_same_time(server):
    """With a global lock at most one request would ever be active."""
    release = threading.Event()
    started = threading.Barrier(5, timeout=60)  # a request that fails breaks it: no endless wait
    failures: list[BaseException] = []

    def run() -> None:
        body = {"model": MODEL, "messages": HELLO, "max_tokens": 8000, "stream": True, "ignore_eos": True}
        try:
            with httpx.stream("POST", server.base + "/v1/chat/completions", json=body, timeout=120) as r:
                assert r.status_code == 200
                started.wait()
                release.wait(60)  # then disconnect: the server cancels the rest
        except BaseException as exc:
            failures.append(exc)
            started.abort()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    started.wait()
    peak = 0

    def seen() -> bool:
        nonlocal peak
        peak = max(peak, _model_stats(server)["active_requests"])
        return peak >= 2

    try:
        assert wait_until(seen, interval=0.005)
    finally:
        release.set()
        for t in threads:
            t.join(60)
    assert not failures
    assert wait_until(lambda: _model_stats(server)["active_requests"] == 0)


def test_concurrent_non_streamed_all_complete(client):
    results = []

    def run() -> None:
        r = client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=50, n=2,
                                           extra_body={"ignore_eos": True})
        results.append(r)

    threads = [threading.Thread(target=run) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(results) == 6
    assert all(r.usage.completion_tokens == 100 for r in results)
    assert len({r.id for r in results}) == 6


def _model_stats(server):
    return server.health().json()["models"][MODEL]


def test_stream_disconnect_cancels_generation(server):
    wait_until(lambda: _model_stats(server)["active_requests"] == 0)
    before = _model_stats(server)["generated_tokens"]
    body = {"model": MODEL, "messages": HELLO, "max_tokens": 8000, "stream": True, "ignore_eos": True}
    with httpx.stream("POST", server.base + "/v1/chat/completions", json=body, timeout=60) as r:
        n = 0
        for line in r.iter_lines():
            if line.startswith("data:"):
                n += 1
                if n == 5:
                    break
    # leaving the block closed the connection mid-stream
    assert wait_until(lambda: _model_stats(server)["active_requests"] == 0)
    stopped_at = _model_stats(server)["generated_tokens"]
    time.sleep(0.5)
    after = _model_stats(server)["generated_tokens"]
    assert after == stopped_at  # nothing is generating any more
    assert after - before < 8000  # and it never ran to max_tokens


def test_non_streamed_disconnect_cancels_generation(server):
    """The client goes away only once its request is generating (seen on /health), so the test
    cannot pass by giving up before the request reached the engine."""
    assert wait_until(lambda: _model_stats(server)["active_requests"] == 0)
    before = _model_stats(server)["generated_tokens"]
    payload = json.dumps({"model": MODEL, "messages": HELLO, "max_tokens": 8000, "n": 4, "ignore_eos": True}).encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(payload) + payload)
        generating = wait_until(lambda: (st := _model_stats(server))["active_requests"] == 4
                                and st["generated_tokens"] > before, interval=0.01)
    assert generating, "the request never reached the engine"
    # the connection is closed now, mid-generation
    assert wait_until(lambda: _model_stats(server)["active_requests"] == 0)
    stopped_at = _model_stats(server)["generated_tokens"]
    time.sleep(0.5)
    assert _model_stats(server)["generated_tokens"] == stopped_at  # nothing is generating any more
    assert stopped_at - before < 4 * 8000  # and it never ran to max_tokens


def test_server_keeps_serving_after_disconnects(client):
    r = client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=3, extra_body={"ignore_eos": True})
    assert r.usage.completion_tokens == 3
