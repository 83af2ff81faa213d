"""Approach aliases end to end: client -> gateway -> OptiLLM -> gateway (plain name) -> ov-server.

The counter sits between the gateway and the real ov-server, so it sees every backend call an
approach makes; all of them must use the plain logical name (no alias, so no routing loop).
"""

from __future__ import annotations

import httpx
import openai
import procs
import pytest

# Backend calls per request (optillm 0.4.0), and the `n` of the first one.
EXPECTED = {"jerry-tiny-moa": (3, 3), "jerry-tiny-re2": (1, 1), "jerry-tiny-bon": (4, 3)}


@pytest.mark.parametrize("alias", sorted(EXPECTED))
def test_approach_alias_makes_the_expected_backend_calls(client: openai.OpenAI, alias: str, calls) -> None:
    # Every approach refuses (or drops) an answer that ended on max_tokens. The built-in
    # model ends by itself (EOS), mostly within ~20 tokens and in no measured case past
    # ~100, so 256 leaves the tiny model to stop first with overwhelming probability.
    resp = client.chat.completions.create(
        model=alias, messages=[{"role": "user", "content": "What is 2 + 2?"}], max_tokens=256)
    assert resp.choices and isinstance(resp.choices[0].message.content, str)
    made = calls()
    count, first_n = EXPECTED[alias]
    assert len(made) == count, made
    assert made[0]["n"] == first_n
    # Every callback used the plain name and went straight to the backend: no loop.
    assert {c["model"] for c in made} == {"jerry-tiny"}


def test_optillm_rejects_callers_without_its_key(mesh: dict[str, procs.Proc], keys: dict[str, str]) -> None:
    optillm = mesh["optillm"]
    body = {"model": "re2-jerry-tiny", "messages": [{"role": "user", "content": "x"}]}
    assert httpx.post(f"{optillm.base}/v1/chat/completions", json=body).status_code == 401
    # The gateway's master key is not OptiLLM's client key either.
    resp = httpx.post(f"{optillm.base}/v1/chat/completions", json=body,
                      headers={"Authorization": f"Bearer {keys['master']}"})
    assert resp.status_code == 401


def test_approach_alias_streams(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="jerry-tiny-moa", messages=[{"role": "user", "content": "hi"}], max_tokens=8, stream=True)
    assert any(c.choices and c.choices[0].delta.content is not None for c in stream)
