"""Read and write KEY=VALUE env files. Parsing is meshkit.envfile's (the one parser ov-server and
the gateway's start.sh use too): strict, a malformed line is an InputError naming file:line."""

from __future__ import annotations

import os
from pathlib import Path

from meshkit.envfile import EnvFileError, parse

from homelab.errors import InputError


def read(path: Path) -> dict[str, str]:
    """The file's values, or {} when it does not exist or cannot be read on this machine (a
    root-only /etc file on a developer machine); InputError when it is malformed."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return {}
    try:
        return parse(text, str(path))
    except EnvFileError as exc:
        raise InputError.one(exc.path, exc.message, exc.line) from None


__all__ = ["parse", "read", "render", "write_private"]


def render(values: dict[str, str], header: str = "") -> str:
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    lines += [f"{k}={v}" for k, v in values.items()]
    return "\n".join(lines) + "\n"


def write_private(path: Path, text: str) -> None:
    """Write a file readable by its owner only, created with mode 0600 (never world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
