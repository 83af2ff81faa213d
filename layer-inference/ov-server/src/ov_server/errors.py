"""OpenAI-shaped HTTP errors: {"error": {"message", "type", "param", "code"}}, and one-line
messages from dependency exceptions without their source locations or our paths."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # FastAPI only where a response is built: the engine process imports this module
    from fastapi.responses import JSONResponse

# "[06:43:32] /home/jenkins/.../json_schema_converter.cc:898: " (XGrammar) or "src/x/gguf.cpp:260: "
_SOURCE_PREFIX = re.compile(r"^(\[\d\d:\d\d:\d\d\]\s*)?(\S*/)?[\w.-]+\.(?:cc|cpp|cxx|c|h|hpp):\d+:\s*")
# OpenVINO's "Check 'cond' failed at src/core/tensor.cpp:93:" and XGrammar's "Check failed: (cond) is false:"
_CHECK_AT = re.compile(r"\s*failed at \S+:\d+:?")
_CHECK_FAILED = re.compile(r"^Check failed: \(.*?\) is false:\s*")
# An absolute path (two or more components): redacted to its last component in HTTP errors.
_ABS_PATH = re.compile(r"(?<![\w.:/])/(?:[^\s/'\"()]+/)+([^\s/'\"()]+)")


class APIError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        type_: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.type = type_ or _default_type(status)

    def body(self) -> dict:
        # Never a path of this machine or of a dependency's build in a response. The request id
        # (meshkit.requestid, set for the whole request) lets a client's report be found in the logs.
        from meshkit.requestid import current

        err = {"message": redact_paths(self.message), "type": self.type, "param": self.param, "code": self.code}
        rid = current.get()
        if rid is not None:
            err["request_id"] = rid
        return {"error": err}

    def response(self) -> JSONResponse:
        from fastapi.responses import JSONResponse

        return JSONResponse(self.body(), status_code=self.status)


def _default_type(status: int) -> str:
    if status == 401:
        return "authentication_error"
    if status == 404:
        return "invalid_request_error"
    if status == 429:
        return "rate_limit_error"
    if status >= 500:
        return "server_error"
    return "invalid_request_error"


def bad_request(message: str, param: str | None = None, code: str | None = None) -> APIError:
    return APIError(400, message, param=param, code=code)


def redact_paths(text: str) -> str:
    return _ABS_PATH.sub(r"\1", text)


def _clean_line(line: str) -> str:
    line = _SOURCE_PREFIX.sub("", line)
    line = _CHECK_FAILED.sub("", line)
    return _CHECK_AT.sub("", line).strip()


def summarize_exception(exc: BaseException) -> str:
    """One useful line from an exception. OpenVINO's messages start with lines like
    "Exception from src/...cpp:117:" and XGrammar's with "[time] /build/path/file.cc:898:";
    the reason comes last."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    useful = [_clean_line(ln) for ln in lines if not ln.startswith("Exception from ")]
    useful = [ln for ln in useful if ln]
    if useful:
        return useful[-1]
    return _clean_line(lines[0]) if lines else type(exc).__name__
