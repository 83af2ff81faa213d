"""Detokenizing without a model call: every token id's bytes, read once from the vocabulary.

OpenVINO's detokenizer is a model: one call costs ~0.5 ms for a 32-token window on 2 cores, and
was 30% of the HTTP process's busy time while streaming (ARCHITECTURE.md, "Against llama.cpp").
For byte-level vocabularies the text of a sequence is just its tokens' bytes, concatenated and
read as UTF-8; special tokens are skipped. A table built from `Tokenizer.get_vocab()` is only
used when it reproduces the tokenizer's own decode on every token alone and on random sequences
(`build`); otherwise the caller keeps decoding with the tokenizer, so a vocabulary we do not
understand (byte fallback pieces, clean-up rules) costs speed, never wrong text.

Pure: the tokenizer comes in as two functions, so all of this is unit-testable without OpenVINO.
"""

from __future__ import annotations

import codecs
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

# Random multi-token sequences checked at load, beside every token alone.
SAMPLE_SEQUENCES = 256
SAMPLE_MAX_LEN = 16


@dataclass(frozen=True)
class ByteVocab:
    table: tuple[bytes, ...]  # id -> bytes; b"" for a special token (decode skips those)
    strip_first_space: bool  # SentencePiece-style: the text's first leading space is not text

    def decode(self, ids: Sequence[int]) -> str:
        """The whole text of `ids` at once (invalid UTF-8 dropped)."""
        text = b"".join(self._bytes(i) for i in ids).decode("utf-8", "ignore")
        return text[1:] if self.strip_first_space and text.startswith(" ") else text

    def _bytes(self, i: int) -> bytes:
        # A model's output layer can be wider than its tokenizer's vocabulary (padding rows).
        return self.table[i] if 0 <= i < len(self.table) else b""


def _utf8(data: bytes) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def build(vocab: Mapping[bytes, int], decode_batch: Callable[[list[list[int]]], list[str]],
          seed: int = 0) -> tuple[ByteVocab | None, str]:
    """(the table, "") when it decodes exactly like `decode_batch`, else (None, why not).

    `vocab` is `Tokenizer.get_vocab()` (token bytes -> id); `decode_batch` is the tokenizer's
    batched decode (special tokens skipped). Tokens that are not valid UTF-8 on their own (single
    bytes of a longer character) are compared only inside sequences of valid text."""
    if not vocab:
        return None, "the tokenizer reports no vocabulary"
    table = [b""] * (max(vocab.values()) + 1)
    for token, i in vocab.items():
        table[i] = bytes(token)
    singles = decode_batch([[i] for i in range(len(table))])
    text_ids: list[int] = []
    special: list[int] = []
    stripped = kept = 0
    for i, data in enumerate(table):
        text = _utf8(data)
        if text is None or text == "":
            continue  # part of a character, or an id with no token
        if singles[i] == "" and text != " ":  # (a lone space may just be a stripped leading one)
            special.append(i)
            continue
        text_ids.append(i)
        if singles[i] == text:
            kept += text.startswith(" ")
        elif text.startswith(" ") and singles[i] == text[1:]:
            stripped += 1
        else:
            return None, f"token {i}: the vocabulary says {text!r}, the tokenizer decodes {singles[i]!r}"
    if stripped and kept:
        return None, (f"{stripped} tokens lose their leading space when decoded alone and {kept} keep it: "
                      "not a rule this table can follow")
    for i in special:
        table[i] = b""
    candidate = ByteVocab(tuple(table), strip_first_space=stripped > 0)
    if not text_ids:
        return None, "no token of the vocabulary is text on its own"
    rnd = random.Random(seed)
    samples = [[rnd.choice(text_ids) for _ in range(rnd.randint(2, SAMPLE_MAX_LEN))]
               for _ in range(SAMPLE_SEQUENCES)]
    if special:  # special tokens inside text are skipped, not spelled
        for ids in samples[::4]:
            ids.insert(rnd.randrange(len(ids) + 1), rnd.choice(special))
    samples += _cleanup_probes(table, text_ids)
    for ids, expected in zip(samples, decode_batch(samples)):
        got = candidate.decode(ids)
        if got != expected:
            return None, f"ids {ids}: the tokenizer decodes {expected!r}, the table {got!r}"
    return candidate, ""


def _cleanup_probes(table: list[bytes], text_ids: list[int]) -> list[list[int]]:
    """Pairs a decode-time clean-up rule would change (Hugging Face's `clean_up_tokenization_spaces`
    turns " ." into "." and " 's" into "'s"): a token ending in a space, then punctuation. Random
    sequences alone would rarely meet them."""
    spaced = [i for i in text_ids if table[i].endswith(b" ")][:PROBE_SPACED]
    punct = [i for i in text_ids if table[i][:1] in PUNCTUATION][:PROBE_PUNCT]
    word = next((i for i in text_ids if table[i][:1].isalpha()), None)
    lead = [word] if word is not None else []
    return [[*lead, a, b] for a in spaced for b in punct]


PUNCTUATION = {bytes([c]) for c in b".,?!;:'\")-"}
PROBE_SPACED = 8
PROBE_PUNCT = 64


class ByteDetokenizer:
    """The streaming side: token ids in, text deltas out, no re-decoding of earlier tokens.

    An incremental UTF-8 decoder holds back a character split across tokens until it completes
    (dropped if the generation ends inside it); invalid bytes are dropped, as the tokenizer's own
    decode does inside a text."""

    def __init__(self, vocab: ByteVocab) -> None:
        self._vocab = vocab
        self._utf8 = codecs.getincrementaldecoder("utf-8")("ignore")
        self._strip = vocab.strip_first_space  # until the first character is out

    def feed(self, new_ids: Sequence[int]) -> str:
        text = self._utf8.decode(b"".join(self._vocab._bytes(i) for i in new_ids))
        return self._first(text)

    def flush(self) -> str:
        return self._first(self._utf8.decode(b"", final=True))

    def _first(self, text: str) -> str:
        if self._strip and text:
            self._strip = False
            return text[1:] if text.startswith(" ") else text
        return text
