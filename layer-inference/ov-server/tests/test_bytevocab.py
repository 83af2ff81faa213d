"""The vocabulary table detokenizer: exact against the real tokenizers of the models the mesh
ships, refused (so the tokenizer model keeps decoding) when a vocabulary does not follow it."""

from __future__ import annotations

import random

import openvino_genai as ov_genai
import pytest

from ov_server.bytevocab import ByteDetokenizer, ByteVocab, build
from ov_server.chat_model import chat_model_path
from ov_server.textproc import Detokenizer
from ov_server.tiny_model import build_tiny_model


@pytest.fixture(scope="module", params=["jerry-tiny", "jerry-chat"])
def tokenizer(request, tmp_path_factory):  # type: ignore[no-untyped-def]
    if request.param == "jerry-tiny":
        return ov_genai.Tokenizer(str(build_tiny_model(tmp_path_factory.mktemp("m"))))
    return ov_genai.Tokenizer(str(chat_model_path()))


def test_the_shipped_models_tokenizers_are_followed_exactly(tokenizer) -> None:  # type: ignore[no-untyped-def]
    vocab, why = build(tokenizer.get_vocab(), tokenizer.decode)
    assert vocab is not None, why
    # Fresh sequences (another seed than the check at load), streamed token by token: the same text
    # as the tokenizer's decode of the whole sequence, wherever that text is valid UTF-8.
    text_ids = [i for i, b in enumerate(vocab.table) if b and b.decode("utf-8", "replace") == b.decode("utf-8", "ignore")]
    rnd = random.Random(7)
    for _ in range(200):
        ids = [rnd.choice(text_ids) for _ in range(rnd.randint(1, 40))]
        stream = ByteDetokenizer(vocab)
        streamed = "".join(stream.feed([i]) for i in ids) + stream.flush()
        assert streamed == tokenizer.decode(ids) == vocab.decode(ids), ids


def test_stream_equals_the_tokenizer_model_path_on_real_generated_text(tokenizer) -> None:  # type: ignore[no-untyped-def]
    """What a client sees must not depend on which detokenizer served it: encode real text (with
    multi-byte characters), stream its ids in uneven chunks through both."""
    vocab, _ = build(tokenizer.get_vocab(), tokenizer.decode)
    text = "The capital of France is Paris. Grüße, 東京 — naïve café ☕ 123\n  done"
    ids = [int(i) for i in tokenizer.encode(text, add_special_tokens=False).input_ids.data[0]]
    table, model = ByteDetokenizer(vocab), Detokenizer(lambda xs: tokenizer.decode(list(xs)) if xs else "")
    out_t = out_m = ""
    for start in range(0, len(ids), 3):
        out_t += table.feed(ids[start:start + 3])
        out_m += model.feed(ids[start:start + 3])
    out_t += table.flush()
    out_m += model.flush()
    assert out_t == out_m == tokenizer.decode(ids)


def test_a_character_split_across_tokens_is_held_back_until_complete() -> None:
    vocab = ByteVocab(tuple(bytes([b]) for b in range(256)), strip_first_space=False)
    stream = ByteDetokenizer(vocab)
    euro = list("€".encode())
    assert stream.feed([ord("a"), euro[0]]) == "a"
    assert stream.feed([euro[1]]) == ""
    assert stream.feed([euro[2], ord("b")]) == "€b"
    assert stream.feed([0xE2, 0x82]) == "" and stream.flush() == ""  # ended inside a character
    assert ByteDetokenizer(vocab).feed([999, ord("x")]) == "x"  # an id past the table: no text


def fake_decode(rule):  # type: ignore[no-untyped-def]
    return lambda batch: [rule(ids) for ids in batch]


BYTES = {bytes([b]): b for b in range(32, 127)}


def test_special_tokens_are_skipped_and_a_sentencepiece_leading_space_is_learned() -> None:
    vocab = {**BYTES, b"<s>": 200, b" hi": 201}

    def sp(ids: list[int]) -> str:  # decodes like SentencePiece: specials gone, first space stripped
        text = "".join(" hi" if i == 201 else chr(i) for i in ids if i != 200)
        return text[1:] if text.startswith(" ") else text

    table, why = build(vocab, fake_decode(sp))
    assert table is not None and table.strip_first_space, why
    stream = ByteDetokenizer(table)
    assert stream.feed([200, 201]) == "hi" and stream.feed([201]) == " hi"


@pytest.mark.parametrize("decode, refusal", [
    (lambda ids: "".join(chr(i) for i in ids).replace(" .", "."), "the tokenizer decodes"),  # clean-up rule
    (lambda ids: "".join(chr(i) for i in ids).upper(), "token 97: the vocabulary says 'a'"),
])
def test_a_vocabulary_the_table_cannot_follow_is_refused_with_the_first_difference(decode, refusal) -> None:  # type: ignore[no-untyped-def]
    table, why = build(BYTES, fake_decode(decode))
    assert table is None and refusal in why


def test_an_empty_vocabulary_is_refused() -> None:
    assert build({}, fake_decode(lambda ids: "")) == (None, "the tokenizer reports no vocabulary")
