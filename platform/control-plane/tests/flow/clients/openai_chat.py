"""The official `openai` client against the gateway, as any user's program would call it.
Run in an environment that has `openai` (the gateway's). Prints one JSON object."""

from __future__ import annotations

import json
import sys

import httpx
from openai import OpenAI


def main() -> None:
    base, key, model, prompt = sys.argv[1:5]
    client = OpenAI(base_url=base, api_key=key, max_retries=0, timeout=120,
                    http_client=httpx.Client(trust_env=False))
    messages = [{"role": "user", "content": prompt}]
    raw = client.chat.completions.with_raw_response.create(model=model, messages=messages)
    reply = raw.parse()
    streamed = "".join(chunk.choices[0].delta.content or ""
                       for chunk in client.chat.completions.create(model=model, messages=messages,
                                                                   stream=True)
                       if chunk.choices)
    print(json.dumps({"content": reply.choices[0].message.content, "stream": streamed,
                      "fallbacks": raw.headers.get("x-litellm-attempted-fallbacks"),
                      "models": sorted(m.id for m in client.models.list())}))


if __name__ == "__main__":
    main()
