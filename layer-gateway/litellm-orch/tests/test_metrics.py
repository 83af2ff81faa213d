"""Gateway `/metrics` (counted at our ASGI layer, summed over the session gateway's 2 workers),
one request id from the client to the backend, and what the logs must never hold.

Metrics are parsed with prometheus_client's own parser and compared with what this test sent.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

import procs

PROMPT = "marker-prompt-" + uuid.uuid4().hex


def scrape(gateway: procs.Proc, key: str) -> dict[tuple[str, tuple], float]:
    r = httpx.get(f"{gateway.base}/metrics", headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert r.status_code == 200, r.text
    out = {}
    for fam in text_string_to_metric_families(r.text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(m: dict, name: str, **labels: str) -> float:
    return m.get((name, tuple(sorted(labels.items()))), 0.0)


def logged(log: Path, *parts: str, timeout: float = 15.0) -> bool:
    """Some line of `log` holds every part (polled: a line is written after the answer goes out)."""
    deadline = time.monotonic() + timeout
    while True:
        if any(all(p in line for p in parts) for line in log.read_text(errors="replace").splitlines()):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)


def test_metrics_need_the_key(gateway: procs.Proc):
    r = httpx.get(f"{gateway.base}/metrics", timeout=10)
    assert r.status_code == 401
    assert "gateway_" not in r.text
    r = httpx.get(f"{gateway.base}/metrics", headers={"Authorization": "Bearer sk-wrong"}, timeout=10)
    assert r.status_code == 401


def test_counts_summed_over_workers(gateway: procs.Proc, client: openai.OpenAI, keys: dict[str, str],
                                    logdir: Path):
    before = scrape(gateway, keys["master"])
    for _ in range(8):  # several connections: uvicorn's workers share the socket
        with openai.OpenAI(base_url=f"{gateway.base}/v1", api_key=keys["master"], max_retries=0, timeout=60) as c:
            c.chat.completions.create(model="jerry-tiny", messages=[{"role": "user", "content": "hi"}], max_tokens=4)
    for _ in range(3):
        with openai.OpenAI(base_url=f"{gateway.base}/v1", api_key=keys["master"], max_retries=0, timeout=60) as c:
            list(c.chat.completions.create(model="jerry-tiny", messages=[{"role": "user", "content": "hi"}],
                                           max_tokens=8, stream=True, extra_body={"ignore_eos": True}))
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="jerry-nope", messages=[{"role": "user", "content": "x"}])
    assert httpx.post(f"{gateway.base}/v1/chat/completions", json={"model": "jerry-tiny"},
                      timeout=10).status_code == 401
    # Each scrape lands on some worker; every one reads every worker's files.
    totals = set()
    for _ in range(6):
        with httpx.Client(timeout=10) as h:  # a new connection each time
            r = h.get(f"{gateway.base}/metrics", headers={"Authorization": f"Bearer {keys['master']}"})
        m = {(s.name, tuple(sorted(s.labels.items()))): s.value
             for fam in text_string_to_metric_families(r.text) for s in fam.samples}
        totals.add(value(m, "gateway_requests_total", model="jerry-tiny", status="200"))
    after = scrape(gateway, keys["master"])

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert len(totals) == 1, totals
    assert delta("gateway_requests_total", model="jerry-tiny", status="200") == 11
    assert delta("gateway_requests_total", model="none", status="404") == 1  # an unknown name is no label
    assert delta("gateway_requests_total", model="none", status="401") == 1
    assert delta("gateway_request_duration_seconds_count", model="jerry-tiny") == 11
    assert delta("gateway_time_to_first_token_seconds_count", model="jerry-tiny") == 3  # the streams
    assert value(after, "gateway_in_flight_requests") == 0
    # Both workers counted (one file per worker process): the sums above are over both.
    pids = {p.name.split("_")[-1] for p in (logdir / "gateway-metrics").glob("counter_*.db")}
    assert len(pids) >= 2, pids


def test_request_id_reaches_the_backend_and_comes_back(gateway: procs.Proc, keys: dict[str, str],
                                                       ov_server: procs.Proc):
    rid = "test-" + uuid.uuid4().hex
    with openai.OpenAI(base_url=f"{gateway.base}/v1", api_key=keys["master"], max_retries=0, timeout=60) as c:
        raw = c.chat.completions.with_raw_response.create(
            model="jerry-direct", messages=[{"role": "user", "content": PROMPT}], max_tokens=4,
            extra_headers={"x-request-id": rid})
    assert raw.headers["x-request-id"] == rid
    # Each side logs its line once the answer is out: poll briefly.
    assert logged(ov_server.log, f"rid={rid}", "chat model=jerry-tiny status=200")
    assert logged(gateway.log, f"rid={rid}", "chat model=jerry-direct status=200")
    # An error body names the id too (the client's report can be looked up).
    bad = "bad-" + uuid.uuid4().hex
    r = httpx.post(f"{gateway.base}/v1/chat/completions", timeout=10,
                   headers={"Authorization": f"Bearer {keys['master']}", "x-request-id": bad},
                   json={"model": "jerry-tiny", "messages": "nope"})
    assert r.status_code == 400
    assert r.json()["error"]["request_id"] == bad == r.headers["x-request-id"]


def test_no_key_and_no_prompt_in_logs_or_metrics(gateway: procs.Proc, keys: dict[str, str], logdir: Path,
                                                 ov_server: procs.Proc):
    with openai.OpenAI(base_url=f"{gateway.base}/v1", api_key=keys["master"], max_retries=0, timeout=60) as c:
        c.chat.completions.create(model="jerry-tiny", messages=[{"role": "user", "content": PROMPT}], max_tokens=4)
        with pytest.raises(openai.APIStatusError):  # an error path logs too
            c.chat.completions.create(model="jerry-broken", messages=[{"role": "user", "content": PROMPT}])
    assert logged(gateway.log, "chat model=jerry-broken")
    text = gateway.log.read_text(errors="replace") + ov_server.log.read_text(errors="replace")
    text += repr(scrape(gateway, keys["master"]))
    assert "chat model=jerry-tiny" in text
    for secret in (keys["master"], keys["ov"], keys["optillm"], PROMPT):
        assert secret not in text
