"""OptiLLM behind scripts/optillm_guard.py (issue 10, item 9): every failure is a 4xx/5xx in OpenAI's
shape with its real cause, nothing is retried (by OptiLLM's own client or, through
`x-should-retry: false`, by the caller's), and answers report what all their calls cost."""

from __future__ import annotations

import openai
import pytest
import requests
from conftest import PROXY_KEY

from meshkit.testing import ServerProcess

APPROACH_CALLS = {"re2": 1, "moa": 3, "bon": 4}


def post(run: ServerProcess, model: str, **extra) -> requests.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "What is 2 + 2?"}], "max_tokens": 32, **extra}
    return requests.post(f"{run.base}/v1/chat/completions", json=body, timeout=60,
                         headers={"Authorization": f"Bearer {PROXY_KEY}"})


def _error(resp: requests.Response) -> dict:
    err = resp.json()["error"]
    assert set(err) == {"message", "type", "param", "code", "request_id"}, err
    assert err["request_id"] and err["request_id"] == resp.headers.get("x-request-id"), err
    assert resp.headers.get("x-should-retry") == "false"
    return err


@pytest.mark.parametrize("approach", sorted(APPROACH_CALLS))
def test_answer_cut_at_max_tokens_is_a_400_naming_it(optillm: ServerProcess, approach: str, calls) -> None:
    resp = post(optillm, f"{approach}-jerry-tiny", max_tokens=2)
    assert resp.status_code == 400, resp.text
    err = _error(resp)
    assert err["param"] == "max_tokens" and err["code"] == "answer_truncated"
    assert err["message"] == (f"The {approach} approach needs complete answers, but jerry-tiny's answer was cut at "
                              "max_tokens=2. Raise max_tokens (a few hundred) and retry.")
    assert len(calls()) == APPROACH_CALLS[approach]  # the approach ran once


@pytest.mark.parametrize("status", [500, 503])
def test_failed_call_to_the_gateway_is_a_502_with_the_gateways_message(optillm: ServerProcess, status: int,
                                                                       calls) -> None:
    resp = post(optillm, f"re2-jerry-fail-{status}")
    assert resp.status_code == 502, resp.text
    err = _error(resp)
    assert err["message"] == (f"The re2 approach could not get an answer from jerry-fail-{status}: "
                              f"jerry-fail-{status} failed on purpose ({status}).")
    assert len(calls()) == 1  # OptiLLM's own client did not retry


def test_gateway_4xx_is_relayed_as_is(optillm: ServerProcess, calls) -> None:
    resp = post(optillm, "moa-jerry-fail-400")
    assert resp.status_code == 400
    assert _error(resp)["message"] == "jerry-fail-400 failed on purpose (400)."
    assert len(calls()) == 1


def test_official_client_runs_the_approach_once(optillm: ServerProcess, calls) -> None:
    client = openai.OpenAI(base_url=f"{optillm.base}/v1", api_key=PROXY_KEY, timeout=60)  # default: 2 retries
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="bon-jerry-fail-500", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 502
    assert len(calls()) == 1


@pytest.mark.parametrize("approach", sorted(APPROACH_CALLS))
def test_usage_is_the_sum_of_every_call(optillm: ServerProcess, approach: str, calls) -> None:
    resp = post(optillm, f"{approach}-jerry-tiny")
    assert resp.status_code == 200, resp.text
    usage = resp.json()["usage"]
    made = calls()
    # The stand-in reports 10 prompt tokens and 6 completion tokens per choice for every call.
    assert usage["prompt_tokens"] == 10 * len(made)
    assert usage["completion_tokens"] == sum(6 * c["n"] for c in made)
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert resp.json()["object"] == "chat.completion" and resp.json()["id"].startswith("chatcmpl-")


def test_wrong_key_is_an_openai_shaped_401(optillm: ServerProcess) -> None:
    resp = requests.post(f"{optillm.base}/v1/chat/completions", json={"model": "re2-jerry-tiny"},
                         headers={"Authorization": "Bearer nope"}, timeout=30)
    assert resp.status_code == 401 and _error(resp)["param"] == "api_key"
