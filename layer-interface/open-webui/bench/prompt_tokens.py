"""Prompt tokens a chat request becomes, exactly as ov-server builds it (chat template with the
request's tools, then tokenized): runs in ov-server's environment. Prints one JSON line per
(model, file).

    uv run --project ../../layer-inference/ov-server --frozen python bench/prompt_tokens.py MODEL.gguf REQ.json...
"""

from __future__ import annotations

import json
import sys

import openvino_genai as ov_genai


def main() -> None:
    model, files = sys.argv[1], sys.argv[2:]
    tokenizer = ov_genai.LLMPipeline(model, "CPU").get_tokenizer()
    for path in files:
        with open(path, encoding="utf-8") as fh:
            body = json.load(fh)
        prompt = tokenizer.apply_chat_template(body["messages"], add_generation_prompt=True,
                                               tools=body.get("tools") or None)
        tokens = sum(len(tokenizer.encode(piece, add_special_tokens=False).input_ids.data[0])
                     for piece in pieces(prompt))
        print(json.dumps({"model": model, "file": path, "prompt_chars": len(prompt), "prompt_tokens": tokens}))


def pieces(text: str, size: int = 4096) -> list[str]:
    """GenAI's tokenizer returns at most 8,192 ids whatever max_length/truncation say (seen with
    openvino-genai 2026.4 on jerry-tiny): count long prompts in pieces cut at whitespace (a token
    or so of difference per cut at most)."""
    out = []
    while len(text) > size:
        cut = max(text.rfind(" ", 0, size), text.rfind("\n", 0, size)) + 1 or size
        out.append(text[:cut])
        text = text[cut:]
    return [*out, text]


if __name__ == "__main__":
    main()
