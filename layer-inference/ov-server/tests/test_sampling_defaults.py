"""A model's sampling defaults apply to requests that send none (chat UIs send no temperature), and
a request's own value still wins."""

from __future__ import annotations

import httpx
from conftest import start_server, stop_server

from ov_server.registry import builtin_spec


def test_jerry_chat_defaults_to_its_model_cards_sampling():
    spec = builtin_spec("jerry-chat")
    assert (spec.temperature, spec.top_p) == (0.2, 0.9)
    assert (builtin_spec("jerry-tiny").temperature, builtin_spec("jerry-tiny").top_p) == (1.0, 1.0)


def answers(base: str, model: str, **kw) -> set[str]:
    out = set()
    for seed in range(4):
        body = {"model": model, "messages": [{"role": "user", "content": "hello"}], "max_tokens": 12,
                "ignore_eos": True, "seed": seed, **kw}
        r = httpx.post(f"{base}/v1/chat/completions", json=body, timeout=120)
        assert r.status_code == 200, r.text
        out.add(r.json()["choices"][0]["message"]["content"])
    return out


def test_a_registry_default_temperature_applies_when_the_request_sends_none(tmp_path):
    reg = tmp_path / "models.yaml"
    reg.write_text("models:\n  greedy:\n    builtin: jerry-tiny\n    temperature: 0\n"
                   "  hot:\n    builtin: jerry-tiny\n")
    s = start_server(tmp_path, {"OV_SERVER_REGISTRY": str(reg)})
    try:
        assert len(answers(s.base, "greedy")) == 1  # temperature 0 by default: seeds do not matter
        assert len(answers(s.base, "hot")) > 1  # OpenAI's default 1.0: they do
        assert len(answers(s.base, "greedy", temperature=1.0)) > 1  # the request's value wins
    finally:
        stop_server(s)
