"""The requests Open WebUI sends for a first message, as captured on the wire, and how to replay
them against a gateway and read a streamed answer."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path

import httpx

CAPTURED = Path(__file__).resolve().parent / "captured"


def captured(name: str = "first-message.json") -> list[dict]:
    """[{purpose, body}] in the order Open WebUI sent them (chat first)."""
    return json.loads((CAPTURED / name).read_text(encoding="utf-8"))["requests"]


def for_model(body: dict, model: str) -> dict:
    out = copy.deepcopy(body)
    out["model"] = model
    return out


@dataclass
class StreamedAnswer:
    status: int
    content_type: str
    text: str = ""
    content_chunks: int = 0  # SSE events carrying non-empty delta content
    finish_reason: str | None = None
    done: bool = False  # saw `data: [DONE]`
    errors: list[str] = field(default_factory=list)
    body: str = ""  # the raw response when it was not a stream


def stream_chat(base: str, key: str, body: dict, timeout: float = 300) -> StreamedAnswer:
    """POST a streaming chat request the way Open WebUI does; collect the SSE answer."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    with httpx.Client(trust_env=False, timeout=timeout) as client, \
            client.stream("POST", f"{base}/chat/completions", content=json.dumps(body), headers=headers) as response:
        answer = StreamedAnswer(response.status_code, response.headers.get("content-type", ""))
        if response.status_code != 200 or not answer.content_type.startswith("text/event-stream"):
            answer.body = response.read().decode(errors="replace")
            return answer
        for line in response.iter_lines():
            if not line.startswith("data: "):
                continue
            data = line.removeprefix("data: ")
            if data == "[DONE]":
                answer.done = True
                continue
            event = json.loads(data)
            if "error" in event:
                answer.errors.append(json.dumps(event["error"]))
                continue
            for choice in event.get("choices") or []:
                piece = (choice.get("delta") or {}).get("content") or ""
                if piece:
                    answer.text += piece
                    answer.content_chunks += 1
                answer.finish_reason = choice.get("finish_reason") or answer.finish_reason
    return answer


def complete(base: str, key: str, body: dict, timeout: float = 300) -> httpx.Response:
    """POST a non-streaming request (Open WebUI's title task) as captured."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    return httpx.post(f"{base}/chat/completions", content=json.dumps(body), headers=headers, timeout=timeout,
                      trust_env=False)
