"""Approach aliases end to end: client -> gateway -> OptiLLM -> gateway (plain name) -> ov-server.

The counter sits between the gateway and the real ov-server, so it sees every backend call an
approach makes; all of them must use the plain logical name (no alias, so no routing loop).
"""

from __future__ import annotations

import httpx
import openai
import procs
import pytest

from meshkit.testing import ServerProcess

# Backend calls per request (optillm 0.4.0), and the `n` of the first one. These hold whatever the
# model answers: moa always asks for 3 candidates, a critique and a final answer; bon for 3
# candidates and one rating each.
EXPECTED = {"jerry-tiny-moa": (3, 3), "jerry-tiny-re2": (1, 1), "jerry-tiny-bon": (4, 3)}
# The built-in model ends its answers by itself (EOS), in no measured case past ~100 tokens (see
# ov-server's SERVICE_SPEC): 1024 leaves every call room to finish, on any CPU.
ROOMY = 1024


@pytest.mark.parametrize("alias", sorted(EXPECTED))
def test_approach_alias_makes_the_expected_backend_calls(client: openai.OpenAI, alias: str, calls) -> None:
    resp = client.chat.completions.create(
        model=alias, messages=[{"role": "user", "content": "What is 2 + 2?"}], max_tokens=ROOMY)
    assert resp.choices and isinstance(resp.choices[0].message.content, str)
    made = calls()
    count, first_n = EXPECTED[alias]
    assert len(made) == count, made
    assert made[0]["n"] == first_n
    # Every callback used the plain name and went straight to the backend: no loop.
    assert {c["model"] for c in made} == {"jerry-tiny"}


@pytest.mark.parametrize("alias", sorted(EXPECTED))
def test_alias_usage_counts_every_backend_call(client: openai.OpenAI, alias: str, calls) -> None:
    resp = client.chat.completions.create(
        model=alias, messages=[{"role": "user", "content": "What is 2 + 2?"}], max_tokens=ROOMY)
    made = calls()
    assert made and all(c["usage"] for c in made)
    prompt = sum(c["usage"]["prompt_tokens"] for c in made)
    completion = sum(c["usage"]["completion_tokens"] for c in made)
    assert resp.usage.prompt_tokens == prompt > 0
    assert resp.usage.completion_tokens == completion > 0
    assert resp.usage.total_tokens == prompt + completion


@pytest.mark.parametrize("alias", sorted(EXPECTED))
def test_truncated_answer_is_a_400_with_its_cause_and_runs_once(gateway: ServerProcess, keys: dict[str, str],
                                                                alias: str, calls) -> None:
    # max_tokens=1 with ignore_eos: every backend answer is cut. Default client retries (2): the
    # failure must not be repeated, and the approach must not run more than once.
    retrying = openai.OpenAI(base_url=f"{gateway.base}/v1", api_key=keys["master"], timeout=120)
    with pytest.raises(openai.BadRequestError) as info:
        retrying.chat.completions.create(model=alias, messages=[{"role": "user", "content": "What is 2 + 2?"}],
                                         max_tokens=1, extra_body={"ignore_eos": True})
    message = info.value.response.json()["error"]["message"]
    assert "needs complete answers" in message and "max_tokens=1" in message, message
    assert "Raise max_tokens" in message and "litellm" not in message and "Error code" not in message
    assert len(calls()) <= EXPECTED[alias][0]  # one run of the approach, at most its usual calls


def test_backend_failure_behind_an_alias_names_the_cause_and_runs_once(gateway: ServerProcess, keys: dict[str, str],
                                                                       counter: ServerProcess, calls) -> None:
    retrying = openai.OpenAI(base_url=f"{gateway.base}/v1", api_key=keys["master"], timeout=120)
    # A prompt over the backend's context: the gateway's own answer to OptiLLM's call is a 400.
    with pytest.raises(openai.BadRequestError) as info:
        retrying.chat.completions.create(model="jerry-tiny-re2", messages=[{"role": "user", "content": "hi " * 9000}],
                                         max_tokens=ROOMY)
    message = info.value.response.json()["error"]["message"]
    assert "8,192-token context" in message, message
    assert len(calls()) == 1


def test_optillm_rejects_callers_without_its_key(mesh: dict[str, ServerProcess], keys: dict[str, str]) -> None:
    optillm = mesh["optillm"]
    body = {"model": "re2-jerry-tiny", "messages": [{"role": "user", "content": "x"}]}
    assert httpx.post(f"{optillm.base}/v1/chat/completions", json=body).status_code == 401
    # The gateway's master key is not OptiLLM's client key either.
    resp = httpx.post(f"{optillm.base}/v1/chat/completions", json=body,
                      headers={"Authorization": f"Bearer {keys['master']}"})
    assert resp.status_code == 401


def test_approach_alias_streams(client: openai.OpenAI) -> None:
    # One chunk with the whole answer: approaches compare complete answers (optillm-proxy SERVICE_SPEC).
    stream = client.chat.completions.create(
        model="jerry-tiny-moa", messages=[{"role": "user", "content": "hi"}], max_tokens=ROOMY, stream=True)
    assert any(c.choices and c.choices[0].delta.content is not None for c in stream)


def test_one_request_id_through_gateway_optillm_and_ov_server(mesh: dict[str, procs.Proc], keys: dict[str, str],
                                                              ov_server: procs.Proc, calls) -> None:
    """The client's id reaches OptiLLM, comes back to the gateway with each approach call, reaches
    ov-server, and every one of them logs it; the client gets it back."""
    import time
    import uuid

    rid = "e2e-" + uuid.uuid4().hex
    with openai.OpenAI(base_url=f"{mesh['gateway'].base}/v1", api_key=keys["master"], max_retries=0,
                       timeout=120) as c:
        raw = c.chat.completions.with_raw_response.create(
            model="jerry-tiny-re2", messages=[{"role": "user", "content": "What is 2 + 2?"}], max_tokens=ROOMY,
            extra_headers={"x-request-id": rid})
    assert raw.headers["x-request-id"] == rid
    assert [c["request_id"] for c in calls()] == [rid]  # what reached the backend side
    procs_by_name = {"gateway": mesh["gateway"], "optillm": mesh["optillm"], "ov-server": ov_server}
    missing = {"gateway": "chat model=jerry-tiny-re2 status=200", "optillm": "chat model=re2-jerry-tiny status=200",
               "ov-server": "chat model=jerry-tiny status=200"}
    deadline = time.monotonic() + 15
    while missing and time.monotonic() < deadline:
        for name, text in list(missing.items()):
            log = procs_by_name[name].log.read_text(errors="replace")
            if any(f"rid={rid}" in line and text in line for line in log.splitlines()):
                del missing[name]
        time.sleep(0.1)
    assert not missing, missing
    # The gateway logged the inner call (OptiLLM -> gateway, plain name) under the same id.
    assert any(f"rid={rid}" in line and "chat model=jerry-tiny status=200" in line
               for line in mesh["gateway"].log.read_text(errors="replace").splitlines())
