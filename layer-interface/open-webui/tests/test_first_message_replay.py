"""A first chat works with every plain model the mesh serves.

Replays the exact requests Open WebUI 0.12.4 sends for a first message under this contract's
configuration (captured on the wire from a real browser session: tests/captured/) against the
REAL gateway (LiteLLM, rendered router.yaml) over a REAL ov-server, for every model a backend
contract serves. The opt-in browser test checks that Open WebUI still sends this shape.
"""

from __future__ import annotations

import httpx
import pytest
from contracts import plain_models
from replay import captured, complete, for_model, stream_chat

CHAT = next(r["body"] for r in captured() if r["purpose"] == "chat")
TASKS = [r for r in captured() if r["purpose"] != "chat"]


def test_the_captured_first_message_carries_no_tool_descriptions() -> None:
    # What filled jerry-tiny's 8,192-token context before: 36 built-in tools (~26 KB).
    assert CHAT["stream"] is True
    assert "tools" not in CHAT and "tool_choice" not in CHAT
    assert [m["role"] for m in CHAT["messages"]] == ["user"]


def test_every_plain_model_is_listed_by_the_gateway(gateway_under_test) -> None:
    base, key, models = gateway_under_test
    listed = httpx.get(f"{base}/models", headers={"Authorization": f"Bearer {key}"}, timeout=60, trust_env=False)
    assert listed.status_code == 200, listed.text
    assert set(models) <= {m["id"] for m in listed.json()["data"]}


@pytest.mark.parametrize("model", sorted(plain_models()))
def test_first_message_streams_an_answer(gateway_under_test, model: str) -> None:
    base, key, _ = gateway_under_test
    answer = stream_chat(base, key, for_model(CHAT, model))
    assert answer.status == 200, answer.body
    assert answer.content_type.startswith("text/event-stream")
    assert not answer.errors, answer.errors
    assert answer.text.strip() and answer.content_chunks >= 1, answer
    assert answer.finish_reason in ("stop", "length") and answer.done, answer


@pytest.mark.parametrize("model", sorted(plain_models()))
def test_first_message_tasks_are_answered(gateway_under_test, model: str) -> None:
    """Open WebUI's title request, sent alongside the first message, also fits and is answered."""
    base, key, _ = gateway_under_test
    for task in TASKS:
        response = complete(base, key, for_model(task["body"], model))
        assert response.status_code == 200, (task["purpose"], response.text)
        assert response.json()["choices"][0]["message"]["content"], (task["purpose"], response.text)
