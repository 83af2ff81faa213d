"""Edit files people also edit by hand, changing only what must change.

Contracts: the front matter goes through ruamel's round trip (comments, flow style and quoting
kept; byte-identical for an unchanged document) and the prose is untouched. The port ledger: one
line appended or one flow-style line rewritten, so review diffs show exactly the change.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from collections.abc import Callable
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from homelab.errors import InputError
from homelab.load import frontmatter, yamlio


def _yaml() -> YAML:
    y = YAML(typ="rt")
    y.width = 4096
    y.preserve_quotes = True
    y.indent(mapping=2, sequence=4, offset=2)
    return y


def edit_contract(text: str, path: str, change: Callable[[CommentedMap], None]) -> str:
    """The SERVICE_SPEC.md text with `change` applied to its front matter."""
    fm = frontmatter.split(text, path)
    y = _yaml()
    data = y.load(fm.yaml_text)
    change(data)
    buf = io.StringIO()
    y.dump(data, buf)
    lines = text.splitlines(keepends=True)
    close = next(i for i in range(1, len(lines)) if lines[i].strip() == frontmatter.FENCE)
    return "".join([lines[0], buf.getvalue(), *lines[close:]])


def flow_list(items: list[Any]) -> CommentedSeq:
    seq = CommentedSeq(items)
    seq.fa.set_flow_style()
    return seq


def add_to_list(node: CommentedMap, key: str, value: str, *, after: str | None = None) -> bool:
    """Append `value` to the list `node[key]` (created in flow style, after key `after`)."""
    current = node.get(key)
    if current is None:
        new = flow_list([value])
        keys = list(node)
        at = keys.index(after) + 1 if after in keys else len(keys)
        node.insert(at, key, new)
        return True
    if value in current:
        return False
    current.append(value)
    return True


def remove_from_list(node: CommentedMap, key: str, value: str) -> bool:
    current = node.get(key)
    if not current or value not in current:
        return False
    while value in current:
        current.remove(value)
    if not current:
        del node[key]
    return True


LEDGER_ITEM = re.compile(r"^(?P<indent>\s*-\s*)\{(?P<body>.*)\}(?P<rest>\s*(#.*)?)$")


def ledger_append(text: str, host: str, port: int, service: str, since: dt.date) -> str:
    return text.rstrip("\n") + \
        f"\n  - {{host: {host}, port: {port}, service: {service}, since: {since.isoformat()}}}\n"


def ledger_retire(text: str, line: int, path: str, today: dt.date) -> str:
    """Mark the flow-style ledger item on `line` (1-based) retired today."""
    lines = text.splitlines(keepends=True)
    m = LEDGER_ITEM.match(lines[line - 1].rstrip("\n"))
    if m is None:
        raise InputError.one(path, "this ledger line is not a one-line `- {host: ..., port: ...}` "
                                   "item; retire it by hand (`status: retired`, `retired: <date>`)",
                             line)
    item = yamlio.parse("{" + m["body"] + "}", path, line - 1)
    item = {**{k: v for k, v in item.items() if k not in ("status", "retired")},
            "status": "retired", "retired": today.isoformat()}
    fields = ", ".join(f"{k}: {_scalar(v)}" for k, v in item.items())
    lines[line - 1] = f"{m['indent']}{{{fields}}}{m['rest']}\n"
    return "".join(lines)


def _scalar(value: Any) -> str:
    text = str(value)
    return text if re.fullmatch(r"[A-Za-z0-9_.:/@+-]+", text) else json.dumps(text)
