"""Bytes to text with the charset a server declared, never failing on a wrong or unknown one."""

from __future__ import annotations


def decode(body: bytes, charset: str | None) -> str:
    try:
        return body.decode(charset or "utf-8", errors="replace")
    except LookupError:  # unknown charset name in the header
        return body.decode("utf-8", errors="replace")
