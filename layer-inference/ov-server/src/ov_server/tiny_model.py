"""Write the built-in smoke-test model `jerry-tiny` as a GGUF file.

The model is a llama-architecture transformer (hidden 64, 2 layers) with
deterministic random weights, a byte-level BPE tokenizer and a ChatML chat
template that renders tools Hermes-style (`<tool_call>{...}</tool_call>`).
It is written from code in well under a second with only `gguf` + `numpy`,
so the mesh comes up on a fresh machine with nothing downloaded.

It is NOT a language model: it emits printable ASCII gibberish. Two tricks
make that gibberish useful for smoke tests:
- every token embedding carries a constant component on dimension 0 and the
  output projection turns that component into a large positive logit for
  printable ASCII tokens and a large negative one for everything else
  (whitespace, control bytes, non-ASCII bytes). Random weights would
  otherwise emit newlines, EOS or partial UTF-8 (U+FFFD) most of the time.
  Not absolute: in states where that channel nearly cancels out, a DEL,
  control or non-ASCII byte slips through (measured before and after the
  EOS change: about 0.5% of tokens over 100 sampled 64-token answers);
- the EOS row (`<|im_end|>`) has only the constant channel, weight
  EOS_WEIGHT (other dims zero), a bit above the printable rows' 10. Its logit
  then beats the printable ones where the hidden state leans on the constant
  channel, so answers end by themselves (the chance per step depends on the
  state, so the lengths have a long tail rather than a fixed hazard).
  Measured with the built-in entry's min_new_tokens=3 over 200 varied
  prompts x 3 seeds at temperature 1 (token counts include EOS): mean 9.9,
  median 7, 90th percentile 17, max 77, 84% end before 16 tokens, 0.2% reach
  64; greedy (temperature 0) ended in all 200 prompts, median 6, max 35.
  (Same prompts, min 3: weight 14.5 / 15 gave sampled means 18.7 / 13.0 and
  greedy ended in 197 / 200 prompts; with min 1, weight 13.5 greedy ended in
  only 67 of 100: greedy falls into loops of states where EOS never wins.)
So a plain chat request returns a short non-empty line of gibberish ending
with `finish_reason: stop`; `ignore_eos` (request or registry) makes it run
to `max_tokens` for tests that need exact lengths.
OpenVINO only accepts F16 tensors from GGUF (F32 fails), and a GGUF with zero
BPE merges fails to load, hence the F16 cast and the handful of merges below.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MODEL_NAME = "jerry-tiny"
FILE_NAME = "jerry-tiny.gguf"
CONTEXT_LENGTH = 8192
HIDDEN = 64
LAYERS = 2
HEADS = 4
KV_HEADS = 4
FFN = 128
SEED = 20261127
# Weight of the EOS row of the output projection on the constant channel
# (its other dims are zero), calibrated by measurement: see module docstring.
EOS_WEIGHT = 15.5


@dataclass(frozen=True)
class Shape:
    """Transformer size. The default is the built-in model; larger shapes are
    only for benchmarks (bench/bench_server.py --hidden/--layers)."""

    hidden: int = HIDDEN
    layers: int = LAYERS
    heads: int = HEADS
    kv_heads: int = KV_HEADS
    ffn: int = FFN


DEFAULT_SHAPE = Shape()

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
EOS_TOKEN = "<|im_end|>"
# A few merges (with their merged tokens in the vocab): OpenVINO needs >= 1.
MERGES = [("Ġ", "t"), ("h", "e"), ("i", "n"), ("e", "r"), ("a", "n"), ("o", "n")]

# Hermes/Qwen-style ChatML template: system/user/assistant/tool roles, tools
# listed in the system turn, assistant tool calls as <tool_call> JSON blocks.
CHAT_TEMPLATE = """\
{%- if tools %}
{{- '<|im_start|>system\\n' }}
{%- if messages[0].role == 'system' %}{{- messages[0].content + '\\n\\n' }}{%- endif %}
{{- '# Tools\\n\\nYou may call one or more functions. Function signatures are inside <tools></tools>:\\n<tools>' }}
{%- for tool in tools %}{{- '\\n' + (tool | tojson) }}{%- endfor %}
{{- '\\n</tools>\\n\\nTo call a function, reply with <tool_call>{\"name\": <function-name>, \"arguments\": <args-json-object>}</tool_call><|im_end|>\\n' }}
{%- elif messages[0].role == 'system' %}
{{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}
{%- endif %}
{%- for message in messages %}
{%- if message.role == 'system' %}
{%- elif message.role == 'assistant' %}
{{- '<|im_start|>assistant\\n' }}
{%- if message.content %}{{- message.content }}{%- endif %}
{%- if message.tool_calls %}
{%- for tc in message.tool_calls %}
{{- '<tool_call>{\"name\": \"' + tc.function.name + '\", \"arguments\": ' + tc.function.arguments + '}</tool_call>' }}
{%- endfor %}
{%- endif %}
{{- '<|im_end|>\\n' }}
{%- elif message.role == 'tool' %}
{{- '<|im_start|>tool\\n' + message.content + '<|im_end|>\\n' }}
{%- else %}
{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}
{%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}
"""


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable unicode char map (byte-level BPE)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    bs += list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def _vocab() -> tuple[list[str], list[int], list[bool]]:
    """Tokens, GGUF token types, and which tokens the model may emit."""
    byte_map = _bytes_to_unicode()
    tokens: list[str] = []
    types: list[int] = []
    printable: list[bool] = []
    for b in range(256):
        tokens.append(byte_map[b])
        types.append(1)  # NORMAL
        # No whitespace either: JSON-constrained decoding would otherwise pad
        # with spaces until max_tokens (whitespace is free in JSON).
        printable.append(32 < b < 127)
    for left, right in MERGES:
        tokens.append(left + right)
        types.append(1)
        printable.append(not left.startswith("Ġ"))
    for tok in SPECIAL_TOKENS:
        tokens.append(tok)
        types.append(3)  # CONTROL
        printable.append(False)
    return tokens, types, printable


def _tensors(shape: Shape = DEFAULT_SHAPE) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(SEED)
    tokens, _, printable = _vocab()
    vocab = len(tokens)
    hidden, heads, kv_heads, ffn = shape.hidden, shape.heads, shape.kv_heads, shape.ffn
    head_dim = hidden // heads

    def w(rows: int, cols: int, std: float) -> np.ndarray:
        return rng.normal(0.0, std, size=(rows, cols)).astype(np.float16)

    embd = rng.normal(0.0, 1.0, size=(vocab, hidden))
    embd[:, 0] = 6.0  # constant "bias" channel, see module docstring
    out = rng.normal(0.0, 0.5, size=(vocab, hidden))
    out[:, 0] = np.where(np.array(printable), 10.0, -10.0)
    eos = tokens.index(EOS_TOKEN)
    out[eos, :] = 0.0  # EOS depends on the constant channel only: see docstring
    out[eos, 0] = EOS_WEIGHT

    t: dict[str, np.ndarray] = {
        "token_embd.weight": embd.astype(np.float16),
        "output_norm.weight": np.ones(hidden, dtype=np.float32),
        "output.weight": out.astype(np.float16),
    }
    for i in range(shape.layers):
        p = f"blk.{i}."
        t[p + "attn_norm.weight"] = np.ones(hidden, dtype=np.float32)
        t[p + "attn_q.weight"] = w(heads * head_dim, hidden, 0.3)
        t[p + "attn_k.weight"] = w(kv_heads * head_dim, hidden, 0.3)
        t[p + "attn_v.weight"] = w(kv_heads * head_dim, hidden, 0.3)
        t[p + "attn_output.weight"] = w(hidden, heads * head_dim, 0.1)
        t[p + "ffn_norm.weight"] = np.ones(hidden, dtype=np.float32)
        t[p + "ffn_gate.weight"] = w(ffn, hidden, 0.1)
        t[p + "ffn_up.weight"] = w(ffn, hidden, 0.1)
        t[p + "ffn_down.weight"] = w(hidden, ffn, 0.1)
    return t


def _write(path: Path, shape: Shape = DEFAULT_SHAPE) -> None:
    import logging

    import gguf  # imported here: only needed when (re)building

    logging.getLogger("gguf").setLevel(logging.WARNING)  # it logs every write at INFO
    tokens, types, _ = _vocab()
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name(MODEL_NAME)
    writer.add_context_length(CONTEXT_LENGTH)
    writer.add_embedding_length(shape.hidden)
    writer.add_block_count(shape.layers)
    writer.add_feed_forward_length(shape.ffn)
    writer.add_head_count(shape.heads)
    writer.add_head_count_kv(shape.kv_heads)
    writer.add_rope_dimension_count(shape.hidden // shape.heads)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_freq_base(10000.0)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges([f"{a} {b}" for a, b in MERGES])
    writer.add_bos_token_id(tokens.index("<|endoftext|>"))
    writer.add_eos_token_id(tokens.index(EOS_TOKEN))
    writer.add_pad_token_id(tokens.index("<|endoftext|>"))
    writer.add_add_bos_token(False)
    writer.add_chat_template(CHAT_TEMPLATE)
    for name, arr in _tensors(shape).items():
        writer.add_tensor(name, arr)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def resolve_target(out: str | os.PathLike[str]) -> Path:
    """A `.gguf` path is used as is; anything else is a directory to write into."""
    p = Path(out).expanduser()
    return p if p.suffix == ".gguf" else p / FILE_NAME


def build_tiny_model(out: str | os.PathLike[str], shape: Shape = DEFAULT_SHAPE) -> Path:
    """Write the model (idempotent: an identical existing file is left alone).

    Written to a temporary file first and renamed, so a concurrent reader or
    a crash never sees half a file. `shape` other than the default gives a
    larger random model with the same vocabulary, template and output-layer
    tricks (for benchmarks); the default shape is the built-in `jerry-tiny`.
    """
    target = resolve_target(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".jerry-tiny-", suffix=".gguf", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        _write(tmp, shape)
        if target.exists() and _digest(target) == _digest(tmp):
            tmp.unlink()
        else:
            os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
    return target
