"""The router's model presets file (LLAMACPP_SERVER_PRESETS): llama.cpp's own INI format, one
`[NAME]` section per model (`model = /path/file.gguf`, `load-on-startup = true`).

llamacpp-server owns the file: `serve` writes it when it is missing and keeps the built-in
section (`[jerry-chat-lcpp]`, LLAMACPP_SERVER_MODEL's file) true at every start; `homelab models
add|rm` add and remove the other sections and ask the running router to re-read it
(`GET /models?reload=1`). Every write is atomic (temp file, fsync, rename).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

HEADER = ("; llama-server router presets (llamacpp-server). One [NAME] section per model; NAME is the\n"
          "; model the gateway sends. Edited by `homelab models add|rm`; the built-in section is\n"
          "; rewritten from LLAMACPP_SERVER_MODEL at every start.\n"
          "version = 1\n")

Sections = dict[str, dict[str, str]]


class PresetsError(ValueError):
    """The file cannot be read as presets; the message names the file and line."""


def parse(text: str, where: str = "presets") -> Sections:
    """Sections in file order; keys before the first section (`version`) are llama.cpp's, skipped."""
    out: Sections = {}
    current: dict[str, str] | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in ";#":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = out.setdefault(line[1:-1].strip(), {})
            continue
        key, eq, value = line.partition("=")
        if not eq:
            raise PresetsError(f"{where}:{number}: expected `key = value` or `[section]`, got {raw!r}")
        if current is not None:
            current[key.strip()] = value.strip()
    return out


def render(sections: Sections) -> str:
    blocks = [HEADER]
    for name, keys in sections.items():
        blocks.append(f"\n[{name}]\n" + "".join(f"{k} = {v}\n" for k, v in keys.items()))
    return "".join(blocks)


def read(path: Path) -> Sections:
    return parse(path.read_text(encoding="utf-8"), str(path)) if path.exists() else {}


def write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def entry(model: Path) -> dict[str, str]:
    """One model's section: its file, loaded when the router starts (not only on first request)."""
    return {"model": str(model.resolve()), "load-on-startup": "true"}


def ensure_builtin(path: Path, name: str, model: Path) -> None:
    """Write the file if missing, else put the built-in section first with the current model file;
    the other sections are kept as they are."""
    if not path.parent.is_dir():
        raise PresetsError(f"LLAMACPP_SERVER_PRESETS={path}: folder {path.parent} does not exist")
    current = read(path)
    wanted = {name: entry(model), **{k: v for k, v in current.items() if k != name}}
    if not path.exists() or wanted != current or list(wanted) != list(current):
        write_atomic(path, render(wanted))
