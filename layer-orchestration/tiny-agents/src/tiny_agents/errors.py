"""One error type for every user mistake: the CLI prints it (no traceback), HTTP mode returns it
in OpenAI's error shape."""

from __future__ import annotations


class AgentError(Exception):
    def __init__(self, message: str, *, param: str | None = None, code: str = "invalid_config") -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
