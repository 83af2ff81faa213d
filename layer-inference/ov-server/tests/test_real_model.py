"""jerry-chat, the built-in real model (SmolLM2-135M-Instruct), served by default: its answers and
the OpenAI parameters, through the official `openai` client against a real server.

Expected texts are never hard-coded: each test derives them from the model's own greedy answer in
the same run (a stop string cut out of it, a prefix for max_tokens), except that a real model must
know the capital of France. One server for the module (its first load converts the GGUF).
"""

from __future__ import annotations

import openai
import pytest
from conftest import start_server, stop_server

from ov_server.chat_model import chat_model_path
from ov_server.registry import default_registry

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
STORY = [{"role": "user", "content": "Write a short story about a cat."}]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = start_server(tmp_path_factory.mktemp("chat"), default_models=True)
    yield s
    stop_server(s)


@pytest.fixture(scope="module")
def client(server):
    with openai.OpenAI(base_url=server.base + "/v1", api_key="unused", max_retries=0, timeout=120) as c:
        yield c


def ask(client, messages=QUESTION, **kw):
    return client.chat.completions.create(model="jerry-chat", messages=messages, **kw)


def test_served_by_default_next_to_jerry_tiny(server, client):
    assert set(default_registry()) == {"jerry-chat", "jerry-tiny"}
    assert {m.id for m in client.models.list().data} == {"jerry-chat", "jerry-tiny"}
    m = server.health().json()["models"]["jerry-chat"]
    assert m["state"] == "ok" and m["precision"] == "f32"
    import gguf

    reader = gguf.GGUFReader(str(chat_model_path()))
    assert m["context_length"] == int(reader.fields["llama.context_length"].parts[-1][0])  # the GGUF's own


def test_knows_the_capital_of_france_and_greedy_is_deterministic(client):
    answers = [ask(client, temperature=0, max_tokens=32) for _ in range(2)]
    texts = [a.choices[0].message.content for a in answers]
    assert "Paris" in texts[0]
    assert texts[0] == texts[1]
    # n=2 runs the two choices as a batch of 2, which OpenVINO computes with other kernels than a
    # batch of 1 on some CPUs (AVX-512: "...is Paris." against "...is Paris, capital of the French
    # Republic." alone), like most engines; the choices of one batch are still identical.
    both = [c.message.content for c in ask(client, temperature=0, max_tokens=32, n=2).choices]
    assert both[0] == both[1] and "Paris" in both[0], both


def test_default_max_tokens_bounds_a_long_answer(client):
    r = ask(client, STORY, temperature=0)
    assert r.usage.completion_tokens <= 128
    if r.choices[0].finish_reason == "length":
        assert r.usage.completion_tokens == 128


def test_max_tokens_cuts_at_exactly_that_many_tokens(client):
    full = ask(client, STORY, temperature=0, max_tokens=40)
    assert full.usage.completion_tokens > 5, "the story is long enough to cut"
    cut = ask(client, STORY, temperature=0, max_tokens=5)
    assert cut.usage.completion_tokens == 5 and cut.choices[0].finish_reason == "length"
    assert full.choices[0].message.content.startswith(cut.choices[0].message.content)


def test_stop_strings_are_exact_and_excluded(client):
    full = ask(client, STORY, temperature=0, max_tokens=40).choices[0].message.content
    # A stop string from the middle of the answer, starting mid-word: matched on text, not tokens.
    words = full.split()
    assert len(words) >= 6, full
    word = words[len(words) // 2]
    stop = word[1:] if len(word) > 2 else word
    r = ask(client, STORY, temperature=0, max_tokens=40, stop=[stop, "@@never@@"])
    assert r.choices[0].finish_reason == "stop"
    assert r.choices[0].message.content == full[: full.index(stop)]
    assert stop not in r.choices[0].message.content


def test_seed_makes_sampling_repeatable_and_n_gives_distinct_choices(client):
    kw = {"temperature": 1.0, "max_tokens": 24, "messages": STORY}
    a, b = (ask(client, seed=1234, **kw).choices[0].message.content for _ in range(2))
    assert a == b
    others = {ask(client, seed=s, **kw).choices[0].message.content for s in (1, 2, 3)}
    assert len(others | {a}) > 1, "different seeds always gave the same sample"
    r = ask(client, n=3, seed=99, **kw)
    assert [c.index for c in r.choices] == [0, 1, 2]
    assert len({c.message.content for c in r.choices}) > 1
    assert 3 <= r.usage.completion_tokens <= 3 * 24  # the three choices' tokens together
    # Not asserted: that a second n=3 call repeats choices 1 and 2. They run side by side in one
    # batch, and in CI (a loaded machine) they once differed between two calls while choice 0 held:
    # OpenAI too documents seeded sampling as best effort (SERVICE_SPEC.md, "seed").


def test_stream_gives_the_same_text_and_usage_last(client):
    plain = ask(client, temperature=0, max_tokens=32)
    chunks = list(ask(client, temperature=0, max_tokens=32, stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert all(c.usage is None for c in chunks[:-1])
    assert chunks[-1].usage.completion_tokens == plain.usage.completion_tokens
    assert chunks[-1].usage.prompt_tokens == plain.usage.prompt_tokens
    assert chunks[-1].usage.total_tokens == plain.usage.total_tokens
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [
        plain.choices[0].finish_reason]
    no_usage = list(ask(client, temperature=0, max_tokens=4, stream=True))
    assert all(c.usage is None for c in no_usage)
