"""`/metrics` after real requests, the request id in logs, headers and error bodies, and what the
logs must never hold (a key, a prompt) unless HOMELAB_LOG_CONTENT says so.

One server serving jerry-tiny with a key and an INFO log; the metrics are parsed with
prometheus_client's own parser and compared with what this test sent.
"""

from __future__ import annotations

import os
import signal
import threading
import uuid

import httpx
import pytest
from conftest import start_server, stop_server, wait_until
from prometheus_client.parser import text_string_to_metric_families

KEY = "marker-key-" + uuid.uuid4().hex
PROMPT = "marker-prompt-" + uuid.uuid4().hex
MODEL = "jerry-tiny"


def scrape(base: str) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of every sample."""
    r = httpx.get(base + "/metrics", timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    out = {}
    for fam in text_string_to_metric_families(r.text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(m: dict, name: str, **labels: str) -> float:
    return m.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture(scope="module")
def keyed(tmp_path_factory):
    s = start_server(tmp_path_factory.mktemp("metrics"), {"OV_SERVER_API_KEY": KEY},
                     extra_args=["--log-level", "info"])
    yield s
    stop_server(s)


def _client(base: str, key: str = KEY):
    from openai import OpenAI

    return OpenAI(base_url=base + "/v1", api_key=key, max_retries=0, timeout=60)


def test_counts_match_what_was_sent(keyed):
    before = scrape(keyed.base)
    usage_prompt = usage_completion = 0
    with _client(keyed.base) as c:
        for i in range(3):
            r = c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": f"{PROMPT} {i}"}],
                                          max_tokens=8, extra_body={"ignore_eos": True})
            usage_prompt += r.usage.prompt_tokens
            usage_completion += r.usage.completion_tokens
        for i in range(2):
            chunks = list(c.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": PROMPT}], max_tokens=6, stream=True,
                stream_options={"include_usage": True}, extra_body={"ignore_eos": True}))
            usage = chunks[-1].usage
            usage_prompt += usage.prompt_tokens
            usage_completion += usage.completion_tokens
    headers = {"Authorization": f"Bearer {KEY}"}
    assert httpx.post(keyed.base + "/v1/chat/completions", headers=headers, timeout=10,
                      json={"model": "no-such-" + uuid.uuid4().hex, "messages": [{"role": "user", "content": "x"}]}
                      ).status_code == 404
    assert httpx.post(keyed.base + "/v1/chat/completions", headers=headers, timeout=10,
                      json={"model": MODEL, "messages": []}).status_code == 400
    assert httpx.post(keyed.base + "/v1/chat/completions", timeout=10,
                      json={"model": MODEL, "messages": [{"role": "user", "content": "x"}]}).status_code == 401

    # A stream is counted when it has ended, just after its last byte: poll briefly.
    assert wait_until(lambda: value(scrape(keyed.base), "ov_server_requests_total", model=MODEL, status="200")
                      - value(before, "ov_server_requests_total", model=MODEL, status="200") == 5)
    after = scrape(keyed.base)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("ov_server_requests_total", model=MODEL, status="200") == 5
    assert delta("ov_server_requests_total", model=MODEL, status="400") == 1
    # Unknown model ids never become labels; neither does an unauthenticated caller's body.
    assert delta("ov_server_requests_total", model="unknown", status="404") == 1
    assert delta("ov_server_requests_total", model="unknown", status="401") == 1
    assert delta("ov_server_prompt_tokens_total", model=MODEL) == usage_prompt
    assert delta("ov_server_completion_tokens_total", model=MODEL) == usage_completion == 3 * 8 + 2 * 6
    assert delta("ov_server_time_to_first_token_seconds_count", model=MODEL) == 2  # streams only
    assert delta("ov_server_request_duration_seconds_count", model=MODEL) == 6  # 5 answered + the 400
    assert delta("ov_server_time_per_output_token_seconds_count", model=MODEL) == 5  # one per choice
    assert value(after, "ov_server_model_loaded", model=MODEL) == 1
    # Idle again: the engine's last report says nothing runs or waits.
    assert wait_until(lambda: value(scrape(keyed.base), "ov_server_running_sequences", model=MODEL) == 0)
    m = scrape(keyed.base)
    assert ("ov_server_waiting_sequences", (("model", MODEL),)) in m
    assert 0.0 <= value(m, "ov_server_kv_cache_usage_ratio", model=MODEL) <= 1.0


def test_engine_gauges_while_generating(keyed):
    """While long streams run, the engine reports them (its figures come over the channel)."""
    stop = threading.Event()

    def long_stream() -> None:
        with _client(keyed.base) as c:
            for _ in c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}],
                                               max_tokens=4000, stream=True, extra_body={"ignore_eos": True}):
                if stop.is_set():
                    break

    threads = [threading.Thread(target=long_stream) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        seen = wait_until(lambda: value(m := scrape(keyed.base), "ov_server_running_sequences", model=MODEL)
                          + value(m, "ov_server_waiting_sequences", model=MODEL) >= 2, timeout=30)
        kv = value(scrape(keyed.base), "ov_server_kv_cache_usage_ratio", model=MODEL)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    assert seen
    assert 0.0 < kv <= 1.0


def test_request_id_in_header_error_body_and_log(keyed):
    rid = "test-" + uuid.uuid4().hex
    with _client(keyed.base) as c:
        raw = c.chat.completions.with_raw_response.create(
            model=MODEL, messages=[{"role": "user", "content": PROMPT}], max_tokens=4,
            extra_headers={"x-request-id": rid})
    assert raw.headers["x-request-id"] == rid
    bad = "bad-" + uuid.uuid4().hex
    r = httpx.post(keyed.base + "/v1/chat/completions", headers={"Authorization": f"Bearer {KEY}",
                                                                  "x-request-id": bad},
                   json={"model": MODEL, "messages": []}, timeout=10)
    assert r.status_code == 400
    assert r.json()["error"]["request_id"] == bad == r.headers["x-request-id"]
    # An id that could forge log lines or headers is replaced, and the reply says by what.
    r = httpx.get(keyed.base + "/health", headers={"x-request-id": "a b\tc"}, timeout=10)
    assert r.headers["x-request-id"].startswith("req-")
    assert wait_until(lambda: f"rid={rid}" in keyed.log.read_text())
    lines = [line for line in keyed.log.read_text().splitlines() if f"rid={rid}" in line]
    assert any("chat model=jerry-tiny status=200" in line for line in lines), lines
    assert any("POST /v1/chat/completions" in line for line in lines), lines  # uvicorn's access line too


def test_no_key_and_no_prompt_in_logs_or_metrics(keyed):
    with _client(keyed.base) as c:
        c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": PROMPT}], max_tokens=4)
    text = keyed.log.read_text() + httpx.get(keyed.base + "/metrics", timeout=10).text
    assert "chat model=jerry-tiny" in text  # the log is there and does log requests
    assert KEY not in text
    assert PROMPT not in text


def test_content_logging_flag_and_restart_cause(tmp_path):
    s = start_server(tmp_path, extra_args=["--log-level", "info"], environ={"HOMELAB_LOG_CONTENT": "1"})
    try:
        with _client(s.base, "unused") as c:
            c.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": PROMPT}], max_tokens=4)
        assert wait_until(lambda: PROMPT in s.log.read_text())
        assert "completion model=jerry-tiny" in s.log.read_text()

        pid = s.health().json()["models"][MODEL]["pid"]
        os.kill(pid, signal.SIGKILL)
        assert wait_until(lambda: value(scrape(s.base), "ov_server_engine_restarts_total",
                                        model=MODEL, cause="SIGKILL") == 1, timeout=30)
        assert wait_until(lambda: s.health().json()["models"][MODEL].get("pid") not in (None, pid), timeout=60)
        assert value(scrape(s.base), "ov_server_model_loaded", model=MODEL) == 1
    finally:
        stop_server(s)


def test_metrics_can_be_turned_off(tmp_path):
    s = start_server(tmp_path, {"OV_SERVER_METRICS": "0"})
    try:
        r = httpx.get(s.base + "/metrics", timeout=10)
        assert r.status_code == 404
        assert "OV_SERVER_METRICS" in r.json()["error"]["message"]
    finally:
        stop_server(s)
