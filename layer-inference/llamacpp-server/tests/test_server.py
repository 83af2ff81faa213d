"""The real llama-server, started the way the contract starts it (`llamacpp-server serve`), on
the real built-in model: health (also while loading), the key check, /v1/models, chat through
the official openai client, streaming, parallel slots, and a native crash's signal."""

from __future__ import annotations

import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import openai
import pytest
from conftest import KEY, Server, start

from llamacpp_server.settings import UPSTREAM_ID

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


def client(server: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base + "/v1", api_key=KEY, max_retries=0, timeout=120,
                         http_client=httpx.Client(trust_env=False))


def test_health_is_open_and_ok(server: Server) -> None:
    answer = httpx.get(server.base + "/health", trust_env=False, timeout=10)
    assert answer.status_code == 200 and answer.json() == {"status": "ok"}


def test_models_needs_the_key_and_lists_the_upstream_id(server: Server) -> None:
    assert httpx.get(server.base + "/v1/models", trust_env=False, timeout=10).status_code == 401
    wrong = httpx.get(server.base + "/v1/models", headers={"Authorization": "Bearer nope"}, trust_env=False,
                      timeout=10)
    assert wrong.status_code == 401
    assert [m.id for m in client(server).models.list().data] == [UPSTREAM_ID]


def test_real_answer_through_the_openai_client(server: Server) -> None:
    reply = client(server).chat.completions.create(model=UPSTREAM_ID, messages=QUESTION, temperature=0,
                                                   max_tokens=24)
    assert "Paris" in reply.choices[0].message.content
    assert reply.usage.completion_tokens > 0 and reply.choices[0].finish_reason in ("stop", "length")


def test_streams_token_by_token(server: Server) -> None:
    stream = client(server).chat.completions.create(model=UPSTREAM_ID, messages=QUESTION, temperature=0,
                                                    max_tokens=24, stream=True)
    pieces = [c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content]
    assert len(pieces) > 2 and "Paris" in "".join(pieces)


def test_default_answer_length_is_jerry_chats(server: Server) -> None:
    reply = client(server).chat.completions.create(
        model=UPSTREAM_ID, temperature=0, extra_body={"ignore_eos": True},
        messages=[{"role": "user", "content": "Write a long story about a lighthouse keeper."}])
    assert reply.usage.completion_tokens == 128 and reply.choices[0].finish_reason == "length"


def test_parallel_requests_all_answer(server: Server) -> None:
    def ask(_: int) -> str:
        return client(server).chat.completions.create(model=UPSTREAM_ID, messages=QUESTION, temperature=0,
                                                      max_tokens=16).choices[0].message.content
    with ThreadPoolExecutor(6) as pool:  # more than the 4 slots: the rest wait, none fails
        answers = list(pool.map(ask, range(6)))
    assert len(set(answers)) == 1 and "Paris" in answers[0]  # greedy: the same answer from every slot


def test_health_is_not_200_until_the_model_is_loaded(llama_binary: Path, tmp_path: Path) -> None:
    """The mesh's probe must not call it healthy while loading: every early answer is a 503."""
    srv = start(tmp_path, wait=False)
    seen: list[tuple[int, str]] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert srv.proc.poll() is None, srv.tail()
            try:
                answer = httpx.get(srv.base + "/health", trust_env=False, timeout=5)
            except httpx.TransportError:
                time.sleep(0.005)
                continue
            seen.append((answer.status_code, answer.text))
            if answer.status_code == 200:
                break
        assert seen and seen[-1][0] == 200, seen[-3:]
        early = [s for s in seen if s[0] != 200]
        assert all(code == 503 and "Loading model" in text for code, text in early), early[:3]
        print(f"\n{len(early)} answer(s) while loading, all 503 'Loading model'")
    finally:
        srv.stop()


def test_a_native_crash_is_the_processes_own_signal(llama_binary: Path, tmp_path: Path) -> None:
    """`serve` execs llama-server: the process the supervisor started IS llama-server, so a
    segfault shows as SIGSEGV (under `uv run`: exit 139), not as a wrapper's exit code."""
    srv = start(tmp_path)
    try:
        exe = Path(f"/proc/{srv.proc.pid}/exe").resolve()
        assert exe == llama_binary.resolve()
        srv.proc.send_signal(signal.SIGSEGV)
        assert srv.proc.wait(30) == -signal.SIGSEGV
    finally:
        srv.stop()


@pytest.mark.parametrize("body", [{"model": UPSTREAM_ID, "messages": "hi"}, {"model": UPSTREAM_ID}])
def test_bad_request_is_a_4xx_with_a_message(server: Server, body: dict) -> None:
    answer = httpx.post(server.base + "/v1/chat/completions", json=body, trust_env=False, timeout=30,
                        headers={"Authorization": f"Bearer {KEY}"})
    assert 400 <= answer.status_code < 500 and answer.json()["error"]["message"]
