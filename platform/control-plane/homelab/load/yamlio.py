"""YAML parsing that remembers where every value came from, so errors can name a line."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from homelab.errors import InputError, Problem


def _yaml() -> YAML:
    y = YAML(typ="rt")
    y.allow_duplicate_keys = False
    return y


def parse(text: str, path: str, line_offset: int = 0) -> Any:
    """Parse YAML text; a syntax error or duplicate key becomes an InputError naming file:line."""
    try:
        return _yaml().load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 + line_offset if mark else None
        reason = (exc.problem or exc.context or "invalid YAML").strip()
        raise InputError.one(path, f"invalid YAML: {reason}", line) from None
    except YAMLError as exc:
        raise InputError.one(path, f"invalid YAML: {exc}") from None


def line_of(node: Any, loc: Sequence[str | int], line_offset: int = 0) -> int | None:
    """1-based line of the deepest node on `loc` that the YAML tree still has."""
    line: int | None = None
    for key in loc:
        if isinstance(node, CommentedMap) and key in node:
            line = node.lc.key(key)[0] + 1 + line_offset
            node = node[key]
        elif isinstance(node, CommentedSeq) and isinstance(key, int) and 0 <= key < len(node):
            line = node.lc.item(key)[0] + 1 + line_offset
            node = node[key]
        else:
            break
    if line is None and isinstance(node, (CommentedMap, CommentedSeq)) and node.lc.line is not None:
        line = node.lc.line + 1 + line_offset
    return line


def validation_problems(exc: ValidationError, tree: Any, path: str,
                        line_offset: int = 0) -> list[Problem]:
    """One Problem per pydantic error, with the dotted field path and its line."""
    problems = []
    for err in exc.errors(include_url=False):
        loc = [part for part in err["loc"] if not (isinstance(part, str) and part.startswith("function-"))]
        field = ".".join(str(p) for p in loc) or "(document)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        elif err["type"] == "missing":
            msg = "required field is missing"
        problems.append(Problem(path, line_of(tree, loc, line_offset), f"{field}: {msg}"))
    return problems


def plain(node: Any) -> Any:
    """ruamel round-trip types -> plain dicts/lists (what pydantic and renderers want)."""
    if isinstance(node, dict):
        return {str(k): plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [plain(v) for v in node]
    return node
