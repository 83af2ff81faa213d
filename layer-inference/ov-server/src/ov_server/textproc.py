"""Pure text processing on the generated stream: incremental detokenizing,
exact `stop` handling and tool-call parsing. No OpenVINO here, so all of it is
unit-testable with a fake decode function."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

REPLACEMENT = "\ufffd"


class Detokenizer:
    """Turns a growing list of token ids into text deltas.

    Decodes a window that starts a few tokens back (so tokenizers that treat
    the first token specially, e.g. SentencePiece's leading space, see
    context) and holds back text ending in U+FFFD, which usually means a UTF-8
    character split across tokens. One decode per feed; the window slides
    every WINDOW tokens at the cost of one extra decode.
    """

    WINDOW = 32
    CONTEXT = 4

    def __init__(self, decode: Callable[[Sequence[int]], str]) -> None:
        self._decode = decode
        self.ids: list[int] = []
        self._prefix = 0  # window start
        self._prefix_len = 0  # chars of decode(ids[_prefix:]) already emitted

    def feed(self, new_ids: Sequence[int]) -> str:
        self.ids.extend(new_ids)
        full = self._decode(self.ids[self._prefix :])
        if len(full) <= self._prefix_len or full.endswith(REPLACEMENT):
            return ""
        delta = full[self._prefix_len :]
        self._prefix_len = len(full)
        if len(self.ids) - self._prefix > self.WINDOW:
            self._prefix = len(self.ids) - self.CONTEXT
            self._prefix_len = len(self._decode(self.ids[self._prefix :]))
        return delta

    def flush(self) -> str:
        full = self._decode(self.ids[self._prefix :])
        out = full[self._prefix_len :]
        self._prefix = len(self.ids)
        self._prefix_len = 0
        return out


class StopFilter:
    """Cuts the text at the first occurrence of any stop string, exactly.

    Text that could be the beginning of a stop string is held back until it
    is known not to be one, so a stop string split over several tokens is
    never partly streamed to the client.
    """

    def __init__(self, stops: Sequence[str]) -> None:
        self._stops = [s for s in stops if s]
        self._pending = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        if self.stopped:
            return ""
        buf = self._pending + text
        if not self._stops:
            self._pending = ""
            return buf
        cut = min((i for i in (buf.find(s) for s in self._stops) if i >= 0), default=-1)
        if cut >= 0:
            self.stopped = True
            self._pending = ""
            return buf[:cut]
        hold = 0
        for s in self._stops:
            for k in range(min(len(s) - 1, len(buf)), 0, -1):
                if buf.endswith(s[:k]):
                    hold = max(hold, k)
                    break
        self._pending = buf[len(buf) - hold :] if hold else ""
        return buf[: len(buf) - hold]

    def flush(self) -> str:
        out, self._pending = ("" if self.stopped else self._pending), ""
        return out


TOOL_OPEN = "<tool_call>"
TOOL_CLOSE = "</tool_call>"
_TOOL_BLOCK = re.compile(re.escape(TOOL_OPEN) + r"(.*?)(?:" + re.escape(TOOL_CLOSE) + r"|$)", re.DOTALL)


@dataclass
class ParsedToolCall:
    name: str
    arguments: str  # JSON text, as OpenAI sends it
    id: str = field(default_factory=lambda: "call_" + uuid.uuid4().hex[:24])

    def to_openai(self, index: int | None = None) -> dict:
        out: dict = {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": self.arguments}}
        if index is not None:
            out["index"] = index
        return out


def _call_from_obj(obj: object, allowed: set[str]) -> ParsedToolCall | None:
    if not isinstance(obj, dict):
        return None
    name = obj.get("name")
    args = obj.get("arguments", obj.get("parameters", {}))
    if not isinstance(name, str) or (allowed and name not in allowed):
        return None
    if isinstance(args, str):
        try:
            json.loads(args)
        except ValueError:
            return None
        return ParsedToolCall(name, args)
    if not isinstance(args, dict):
        return None
    return ParsedToolCall(name, json.dumps(args, ensure_ascii=False))


def parse_tool_calls(text: str, allowed: set[str], drop_cut_tail: bool = False) -> tuple[str | None, list[ParsedToolCall]]:
    """Split model output into (content, tool calls).

    Recognised: Hermes/Qwen `<tool_call>{"name":..,"arguments":..}</tool_call>`
    blocks (the built-in template's format), or a reply that is nothing but
    such a JSON object / a list of them (Llama-3 style). Anything that does not
    parse as a call to a declared tool stays plain text: the server never
    invents a call the model did not make. `drop_cut_tail`: a last block with
    no closing tag (cut by max_tokens) is ignored instead of voiding the rest.
    """
    calls: list[ParsedToolCall] = []
    if TOOL_OPEN in text:
        blocks = list(_TOOL_BLOCK.finditer(text))
        if drop_cut_tail and len(blocks) > 1 and not blocks[-1].group(0).endswith(TOOL_CLOSE):
            text = text[: blocks.pop().start()]
        for m in blocks:
            try:
                obj = json.loads(m.group(1).strip())
            except ValueError:
                return text, []
            call = _call_from_obj(obj, allowed)
            if call is None:
                return text, []
            calls.append(call)
        content = _TOOL_BLOCK.sub("", text).strip()
        return (content or None), calls
    stripped = text.strip()
    if stripped[:1] in "{[":
        try:
            obj = json.loads(stripped)
        except ValueError:
            return text, []
        items = obj if isinstance(obj, list) else [obj]
        for item in items:
            call = _call_from_obj(item, allowed)
            if call is None:
                return text, []
            calls.append(call)
        if calls:
            return None, calls
    return text, []


class ToolStreamGate:
    """For streamed requests with tools: pass text through until a tool call
    starts, then hold everything back so it can be parsed at the end."""

    def __init__(self) -> None:
        self.text = ""  # everything seen
        self._emitted = 0
        self.capturing = False

    def feed(self, delta: str) -> str:
        self.text += delta
        if self.capturing:
            return ""
        idx = self.text.find(TOOL_OPEN, self._emitted)
        if idx >= 0:
            self.capturing = True
            out = self.text[self._emitted : idx]
            self._emitted = idx
            return out
        if self._emitted == 0 and self.text.lstrip()[:1] in ("{", "["):
            # Could be a bare JSON tool call: decide at the end.
            self.capturing = True
            return ""
        hold = 0
        for k in range(min(len(TOOL_OPEN) - 1, len(self.text) - self._emitted), 0, -1):
            if self.text.endswith(TOOL_OPEN[:k]):
                hold = k
                break
        end = len(self.text) - hold
        out = self.text[self._emitted : end]
        self._emitted = end
        return out

    def rest(self) -> str:
        """Text not yet emitted (call at the end)."""
        return self.text[self._emitted :]
