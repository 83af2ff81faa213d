"""OptiLLM behind the gateway: client auth by flag, key mapping, approach call counts."""

from __future__ import annotations

import pytest
import requests
from conftest import MASTER, PROXY_KEY, Running

BODY = {"messages": [{"role": "user", "content": "What is 2 + 2?"}], "max_tokens": 32}
# Upstream calls per request in optillm 0.4.0 and the `n` of the first call.
APPROACHES = {"none": (1, 1), "re2": (1, 1), "moa": (3, 3), "bon": (4, 3)}


def post(run: Running, model: str, key: str | None = PROXY_KEY) -> requests.Response:
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    return requests.post(f"{run.base}/v1/chat/completions", json={**BODY, "model": model}, headers=headers,
                         timeout=60)


def test_health_is_open(optillm: Running) -> None:
    assert requests.get(f"{optillm.base}/health").json() == {"status": "ok"}


@pytest.mark.parametrize("key", [None, "wrong-key", MASTER])
def test_callers_without_the_proxy_key_get_401(optillm: Running, key: str | None, calls) -> None:
    assert post(optillm, "re2-jerry-tiny", key).status_code == 401
    assert calls() == []


@pytest.mark.parametrize("approach", sorted(APPROACHES))
def test_approach_calls_upstream_with_plain_name_and_master_key(optillm: Running, approach: str, calls) -> None:
    model = "jerry-tiny" if approach == "none" else f"{approach}-jerry-tiny"
    resp = post(optillm, model)
    assert resp.status_code == 200, resp.text
    assert resp.json()["choices"][0]["message"]["content"]
    made = calls()
    count, first_n = APPROACHES[approach]
    assert len(made) == count
    assert made[0]["n"] == first_n
    assert {c["model"] for c in made} == {"jerry-tiny"}
    # Upstream auth is the gateway master key (from LITELLM_MASTER_KEY), never the client key,
    # and the OPTILLM_API_KEY set in the environment did not switch on local inference.
    assert {c["authorization"] for c in made} == {f"Bearer {MASTER}"}


def test_models_pass_through(optillm: Running) -> None:
    resp = requests.get(f"{optillm.base}/v1/models", headers={"Authorization": f"Bearer {PROXY_KEY}"})
    assert resp.status_code == 200
    assert [m["id"] for m in resp.json()["data"]] == ["jerry-tiny"]


@pytest.mark.parametrize("approach", ["re2", "moa"])
def test_request_id_goes_to_every_upstream_call_and_the_log(optillm: Running, approach: str, calls) -> None:
    import time
    import uuid

    rid = "test-" + uuid.uuid4().hex
    resp = requests.post(f"{optillm.base}/v1/chat/completions", json={**BODY, "model": f"{approach}-jerry-tiny"},
                         headers={"Authorization": f"Bearer {PROXY_KEY}", "x-request-id": rid}, timeout=60)
    assert resp.status_code == 200, resp.text
    assert resp.headers["x-request-id"] == rid
    made = calls()
    assert len(made) == APPROACHES[approach][0]
    assert {c["request_id"] for c in made} == {rid}
    deadline = time.monotonic() + 10
    while f"chat model={approach}-jerry-tiny status=200" not in optillm.log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    lines = [line for line in optillm.log.read_text().splitlines() if f"rid={rid}" in line]
    assert any(f"chat model={approach}-jerry-tiny status=200" in line for line in lines), lines
    assert any("POST /v1/chat/completions" in line for line in lines), lines  # werkzeug's access line
    assert BODY["messages"][0]["content"] not in optillm.log.read_text()  # no prompt at the default level
    assert PROXY_KEY not in optillm.log.read_text() and MASTER not in optillm.log.read_text()


def test_error_body_names_the_request_id(optillm: Running) -> None:
    resp = requests.post(f"{optillm.base}/v1/chat/completions", json={**BODY, "model": "re2-jerry-tiny"},
                         headers={"Authorization": "Bearer wrong", "x-request-id": "err-1"}, timeout=60)
    assert resp.status_code == 401
    assert resp.json()["error"]["request_id"] == "err-1" == resp.headers["x-request-id"]
