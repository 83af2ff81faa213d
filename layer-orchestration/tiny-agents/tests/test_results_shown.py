"""How tool results and the answering request reach the model (pure functions, no processes)."""

from __future__ import annotations

from types import SimpleNamespace

from tiny_agents.loop import answer_request
from tiny_agents.toolbox import result_text


def text(t: str) -> SimpleNamespace:
    return SimpleNamespace(type="text", text=t)


def test_text_content_is_shown_summary_first():
    r = SimpleNamespace(is_error=False, content=[text("jerry-chat is up."), text('[{"healthy": true}]')],
                        structured_content={"result": [{"healthy": True}]})
    assert result_text(r) == 'jerry-chat is up.\n[{"healthy": true}]'


def test_structured_content_only_when_there_is_no_content():
    r = SimpleNamespace(is_error=False, content=[], structured_content={"a": 1})
    assert result_text(r) == '{"a": 1}'


def test_answer_request_quotes_the_question():
    msg = answer_request("Which host runs jerry-chat?")
    assert msg["role"] == "user" and msg["content"].endswith("Which host runs jerry-chat?")
