"""The OpenAI double, driven by the real OpenAI-shaped wire format (urllib, no client library)."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from meshkit.testing import Call, OpenAIDouble, Reply

NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def post(url: str, body: dict, key: str = "k") -> tuple[int, bytes]:
    request = urllib.request.Request(url, json.dumps(body).encode(), method="POST", headers={
        "content-type": "application/json", "authorization": f"Bearer {key}"})
    try:
        with NO_PROXY.open(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def events(raw: bytes) -> list[str]:
    return [line[6:] for line in raw.decode().splitlines() if line.startswith("data: ")]


def script(call: Call) -> Reply:
    if "weather" in call.messages[-1]["content"]:
        return Reply(None, tool_calls=[("get_weather", {"city": "Paris"})])
    return Reply("The capital is Paris.")


@pytest.fixture
def double() -> Iterator[OpenAIDouble]:
    with OpenAIDouble(script, api_key="k", models=("jerry-a", "jerry-b")) as made:
        yield made


def test_whole_answer_and_the_call_is_recorded(double: OpenAIDouble) -> None:
    code, raw = post(f"{double.base_url}/chat/completions", {
        "model": "jerry-a", "n": 2, "messages": [{"role": "user", "content": "capital of France?"}]})
    assert code == 200
    answer = json.loads(raw)
    assert [c["message"]["content"] for c in answer["choices"]] == ["The capital is Paris."] * 2
    assert answer["choices"][0]["finish_reason"] == "stop" and answer["model"] == "jerry-a"
    [call] = double.calls
    assert (call.model, call.n, call.stream) == ("jerry-a", 2, False)
    assert call.headers["authorization"] == "Bearer k"


def test_streamed_tool_call_arrives_in_pieces_that_stitch(double: OpenAIDouble) -> None:
    code, raw = post(f"{double.base_url}/chat/completions", {
        "model": "jerry-a", "stream": True, "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": "weather in Paris?"}]})
    assert code == 200
    data = events(raw)
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    pieces = [tc["function"].get("arguments", "") for c in chunks for ch in c["choices"]
              for tc in ch["delta"].get("tool_calls", [])]
    assert len(pieces) == 2 and json.loads("".join(pieces)) == {"city": "Paris"}
    assert [ch["finish_reason"] for c in chunks for ch in c["choices"] if ch["finish_reason"]] == ["tool_calls"]
    assert chunks[-1]["usage"]["total_tokens"] == 8 and chunks[-1]["choices"] == []
    assert double.calls[0].stream


def test_models_health_key_and_the_http_record(double: OpenAIDouble) -> None:
    with NO_PROXY.open(f"{double.base}/health", timeout=5) as response:
        assert json.loads(response.read()) == {"status": "ok"}
    request = urllib.request.Request(f"{double.base_url}/models", headers={"authorization": "Bearer k"})
    with NO_PROXY.open(request, timeout=5) as response:
        assert [m["id"] for m in json.loads(response.read())["data"]] == ["jerry-a", "jerry-b"]
    code, raw = post(f"{double.base_url}/chat/completions", {"model": "jerry-a", "messages": []}, key="wrong")
    assert code == 401 and json.loads(raw)["error"]["code"] == "invalid_api_key"
    assert double.calls == []  # a refused request is not a call
    post(f"{double.base_url}/chat/completions", {"model": "jerry-b", "messages": [{"role": "user", "content": "hi"}]})
    with NO_PROXY.open(f"{double.base}/_calls", timeout=5) as response:
        assert [(c["model"], c["authorization"]) for c in json.loads(response.read())] == [("jerry-b", "Bearer k")]
    NO_PROXY.open(urllib.request.Request(f"{double.base}/_calls", method="DELETE"), timeout=5).close()
    assert double.calls == []


def test_error_replies_are_openai_shaped() -> None:
    with OpenAIDouble(lambda call: Reply(status=503, error="backend on fire")) as double:
        code, raw = post(f"{double.base_url}/chat/completions", {"model": "m", "messages": []})
    assert code == 503
    assert json.loads(raw)["error"] == {"message": "backend on fire", "type": "server_error",
                                        "param": None, "code": "injected"}


def test_as_a_process_counting_in_front_of_another_double() -> None:
    with OpenAIDouble(lambda call: Reply("from upstream")) as upstream:
        proc = subprocess.Popen([sys.executable, "-m", "meshkit.testing.openai_double", "--port", "0",
                                 "--upstream", upstream.base_url], stdout=subprocess.PIPE, text=True)
        try:
            port = int(proc.stdout.readline().split()[1])
            code, raw = post(f"http://127.0.0.1:{port}/v1/chat/completions",
                             {"model": "m", "messages": [{"role": "user", "content": "hi"}]})
            assert code == 200 and json.loads(raw)["choices"][0]["message"]["content"] == "from upstream"
            code, raw = post(f"http://127.0.0.1:{port}/v1/chat/completions",
                             {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]})
            assert code == 200 and events(raw)[-1] == "[DONE]"
            with NO_PROXY.open(f"http://127.0.0.1:{port}/_calls", timeout=5) as response:
                counted = json.loads(response.read())
        finally:
            proc.terminate()
            proc.wait(10)
    assert [(c["stream"], c.get("usage", {}).get("total_tokens")) for c in counted] == [(False, 8), (True, None)]
    assert len(upstream.calls) == 2


def test_break_stream_cuts_the_answer_without_done() -> None:
    with OpenAIDouble(break_stream=True) as double:
        code, raw = 0, b""
        try:
            code, raw = post(f"{double.base_url}/chat/completions",
                             {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]})
        except http_errors() as exc:  # the cut chunked body: what a real dying backend gives
            raw = getattr(exc, "partial", b"") or b""
    assert b"[DONE]" not in raw


def http_errors() -> tuple[type[BaseException], ...]:
    import http.client
    return (http.client.IncompleteRead, ConnectionError)
