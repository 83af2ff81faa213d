"""The body of `POST /run`, read and validated before the agent sees it.

Every mistake is a `RequestError` (status, message, param) that HTTP mode answers in OpenAI's
error shape: wrong content type (415, which also refuses the `text/plain` bodies a cross-site
form can send without a CORS preflight), too large (413, judged before the body is read when
Content-Length says so), not JSON, nested too deeply for the parser (400, not a 500), not an
object, unknown or mistyped fields (400 naming the field)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

MAX_BODY_BYTES = 1 << 20  # a question, not a document: 1 MiB is plenty
MAX_STEPS_LIMIT = 50
FIELDS = ("question", "prompt", "max_steps")


class RequestError(Exception):
    def __init__(self, status: int, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param = status, message, param


@dataclass(frozen=True)
class RunRequest:
    question: str
    max_steps: int


def check_content_type(content_type: str | None) -> None:
    mime = (content_type or "").split(";")[0].strip().lower()
    if mime != "application/json":
        raise RequestError(415, f"Content-Type must be application/json, got {mime or 'none'!r}",
                           param="Content-Type")


async def read_limited(content_length: str | None, chunks: AsyncIterator[bytes],
                       limit: int = MAX_BODY_BYTES) -> bytes:
    too_large = RequestError(413, f"request body over {limit} bytes")
    if content_length is not None:
        if not content_length.strip().isdigit():
            raise RequestError(400, "invalid Content-Length header", param="Content-Length")
        if int(content_length) > limit:
            raise too_large
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > limit:
            raise too_large
    return bytes(body)


def parse(raw: bytes, default_max_steps: int) -> RunRequest:
    try:
        body = json.loads(raw)
    except RecursionError:
        raise RequestError(400, "request body is nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise RequestError(400, f"request body must be JSON: {exc}") from None
    if not isinstance(body, dict):
        raise RequestError(400, f"request body must be a JSON object, got {type(body).__name__}")
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise RequestError(400, f"unknown field {unknown[0][:100]!r} (accepted: {', '.join(FIELDS)})",
                           param=unknown[0][:100])
    question = body.get("question", body.get("prompt"))
    if not isinstance(question, str) or not question.strip():
        raise RequestError(400, "`question` must be a non-empty string", param="question")
    max_steps = body.get("max_steps", default_max_steps)
    if not isinstance(max_steps, int) or isinstance(max_steps, bool) or not 1 <= max_steps <= MAX_STEPS_LIMIT:
        raise RequestError(400, f"`max_steps` must be an integer from 1 to {MAX_STEPS_LIMIT}", param="max_steps")
    return RunRequest(question, max_steps)
