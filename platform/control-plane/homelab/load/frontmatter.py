"""Split a SERVICE_SPEC.md into its YAML front matter (for tools) and prose (for people)."""

from __future__ import annotations

from dataclasses import dataclass

from homelab.errors import InputError

FENCE = "---"


@dataclass(frozen=True)
class FrontMatter:
    yaml_text: str
    first_line: int  # 1-based line of the first YAML line in the file
    body: str


def split(text: str, path: str) -> FrontMatter:
    lines = text.splitlines()
    if not lines or lines[0].strip() != FENCE:
        raise InputError.one(path, "must start with a YAML front-matter block opened by '---'", 1)
    for i in range(1, len(lines)):
        if lines[i].strip() == FENCE:
            return FrontMatter("\n".join(lines[1:i]) + "\n", 2, "\n".join(lines[i + 1:]))
    raise InputError.one(path, "front-matter block opened on line 1 is never closed by '---'", 1)
