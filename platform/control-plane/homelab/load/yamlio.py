"""YAML parsing. Data comes from libyaml (fast); positions come from ruamel, parsed lazily and
only when something needs a line number (an error or a violation)."""

from __future__ import annotations

import re

from collections.abc import Sequence
from typing import Any

import yaml
from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError as RuamelError

from homelab.errors import InputError, Problem


class _StrictLoader(yaml.CSafeLoader):
    """Safe loader that refuses duplicate keys (PyYAML silently keeps the last one)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, (dict, list)):
                raise yaml.constructor.ConstructorError(None, None, "a mapping key must be a scalar",
                                                        key_node.start_mark)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f'found duplicate key "{key}"', key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_StrictLoader.add_constructor("tag:yaml.org,2002:map", _StrictLoader.construct_mapping)
# Dates and times stay strings: pydantic parses the fields that are dates, and no other value
# silently changes type (a version "2026-11-27" is text).
_StrictLoader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
    for k, v in yaml.CSafeLoader.yaml_implicit_resolvers.items()}


def parse(text: str, path: str, line_offset: int = 0) -> Any:
    """Parse YAML text into plain data; a syntax error or duplicate key names file:line."""
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a safe loader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 + line_offset if mark else None
        reason = (exc.problem or exc.context or "invalid YAML").strip()
        raise InputError.one(path, f"invalid YAML: {reason}", line) from None
    except (yaml.YAMLError, RecursionError) as exc:
        raise InputError.one(path, f"invalid YAML: {exc}") from None


def position_tree(text: str) -> Any:
    """ruamel's round-trip tree: knows the line of every key and item. None if unparsable."""
    try:
        return YAML(typ="rt").load(text)
    except (RuamelError, RecursionError):
        return None


def line_of(node: Any, loc: Sequence[str | int], line_offset: int = 0, *,
            exact: bool = False) -> int | None:
    """1-based line of the deepest node on `loc` that the YAML tree still has (with `exact`,
    None unless the whole path exists: callers then fall back to a field of their choice)."""
    line: int | None = None
    for key in loc:
        if isinstance(node, CommentedMap) and key in node:
            line = node.lc.key(key)[0] + 1 + line_offset
            node = node[key]
        elif isinstance(node, CommentedSeq) and isinstance(key, int) and 0 <= key < len(node):
            line = node.lc.item(key)[0] + 1 + line_offset
            node = node[key]
        elif exact:
            return None
        else:
            break
    if line is None and isinstance(node, (CommentedMap, CommentedSeq)) and node.lc.line is not None:
        line = node.lc.line + 1 + line_offset
    return line


def _named_key(tree: Any, message: str) -> list[str | int]:
    """A whole-document rule's error points at the first top-level key its message names in
    backticks (e.g. "`run` and `external` exclude each other" -> the line of `run`)."""
    if not isinstance(tree, dict):
        return []
    for name in re.findall(r"`([a-z_]+)`", message):
        if name in tree:
            return [name]
    return []


def validation_problems(exc: ValidationError, text: str, path: str,
                        line_offset: int = 0) -> list[Problem]:
    """One Problem per pydantic error, with the dotted field path and its line."""
    tree = position_tree(text)
    problems = []
    for err in exc.errors(include_url=False):
        loc = [part for part in err["loc"] if not (isinstance(part, str) and part.startswith("function-"))]
        if not loc:
            loc = _named_key(tree, err["msg"])
        field = ".".join(str(p) for p in loc) or "(document)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        elif err["type"] == "missing":
            msg = "required field is missing"
        problems.append(Problem(path, line_of(tree, loc, line_offset), f"{field}: {msg}"))
    return problems
