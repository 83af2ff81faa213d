"""OpenAI-shaped error bodies, and the request errors the gateway raises itself.

Every error a client sees is `{"error": {"message", "type", "param", "code"}}` with a message
that says what happened and what to do, in one or two sentences.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from meshkit import requestid

# Absolute paths of this machine or of a dependency's build (site-packages, build trees, sources)
# never reach a client: they say nothing useful to a user and tell an attacker our layout.
_PATHS = re.compile(
    r"(?:[A-Za-z]:\\|/)(?:[\w.+@-]+[/\\]){1,}[\w.+@-]+\.(?:py|pyc|so|dll|cpp|hpp|cc|c|h)(?::\d+)?"
    r"|/(?:home|root|opt|usr|tmp|var|srv|etc|work|proc|mnt|lib|lib64|build|__w|Users)/[^\s'\"),;]*"
)


def scrub(text: str) -> str:
    """`text` without filesystem paths."""
    return _PATHS.sub("<path>", text)


def error_type(status: int) -> str:
    if status == 401:
        return "auth_error"
    return "invalid_request_error" if status < 500 else "server_error"


def error_body(status: int, message: str, param: str | None = None, code: str | None = None) -> dict:
    err = {"message": scrub(message), "type": error_type(status), "param": param, "code": code}
    rid = requestid.current.get()  # set for the whole request (meshkit.requestid): findable in the logs
    if rid is not None:
        err["request_id"] = rid
    return {"error": err}


def encode(payload: dict) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


@dataclass
class GatewayError(Exception):
    """An error the gateway answers itself, before LiteLLM sees the request."""

    status: int
    message: str
    param: str | None = None
    code: str | None = None
    # Extra response headers (e.g. `connection: close` when the body was left unread).
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def body(self) -> bytes:
        return encode(error_body(self.status, self.message, self.param, self.code))
