"""Scalar metadata from a GGUF header, read in milliseconds.

Why not gguf-py's `GGUFReader` (which builds the test models): it materializes every field as
numpy views, the tokenizer's vocabulary too; on SmolLM2 (49,152 tokens, three per-token arrays)
that took 5 s of every engine start on 2 cores, for the one number the server needs (the context
length). Here arrays are skipped, not read, and reading stops once the caller has what it wants.
Layout (GGUF v2/v3): magic, version u32, tensor count u64, key/value count u64, then per pair:
key (u64 length + UTF-8), value type u32, value.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Callable, Iterator
from pathlib import Path

MAGIC = b"GGUF"
VERSIONS = (2, 3)  # v1 used 32-bit lengths; no file we load has it
STRING, ARRAY = 8, 9
SCALARS: dict[int, struct.Struct] = {t: struct.Struct("<" + c) for t, c in {
    0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}.items()}
U32, U64 = struct.Struct("<I"), struct.Struct("<Q")

Value = int | float | bool | str | None  # None: an array, skipped


class GGUFHeaderError(ValueError):
    """The file is not a GGUF header this reader understands; the message says where it broke."""


class _Cursor:
    def __init__(self, buf: mmap.mmap) -> None:
        self.buf, self.at = buf, 0

    def unpack(self, s: struct.Struct) -> int | float | bool:
        if self.at + s.size > len(self.buf):
            raise GGUFHeaderError(f"truncated at byte {self.at}")
        (v,) = s.unpack_from(self.buf, self.at)
        self.at += s.size
        return v

    def string(self) -> str:
        n = int(self.unpack(U64))
        if self.at + n > len(self.buf):
            raise GGUFHeaderError(f"a string of {n} bytes at byte {self.at} runs past the end")
        raw = self.buf[self.at:self.at + n]
        self.at += n
        return raw.decode("utf-8", errors="replace")

    def skip_string(self) -> None:
        n = int(self.unpack(U64))
        self.at += n

    def value(self, vtype: int) -> Value:
        if vtype in SCALARS:
            return self.unpack(SCALARS[vtype])
        if vtype == STRING:
            return self.string()
        if vtype == ARRAY:
            etype, count = int(self.unpack(U32)), int(self.unpack(U64))
            if etype in SCALARS:
                self.at += SCALARS[etype].size * count
            elif etype == STRING:
                for _ in range(count):
                    self.skip_string()
            else:  # arrays of arrays: GGUF allows them, no model we know writes them
                for _ in range(count):
                    self.value(etype)
            if self.at > len(self.buf):
                raise GGUFHeaderError(f"an array of {count} runs past the end")
            return None
        raise GGUFHeaderError(f"unknown value type {vtype} at byte {self.at - 4}")


def gguf_fields(path: Path) -> Iterator[tuple[str, Value]]:
    """(key, value) in file order; arrays come as None. Raises GGUFHeaderError or OSError."""
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        cur = _Cursor(buf)
        if buf[:4] != MAGIC:
            raise GGUFHeaderError("not a GGUF file (no GGUF magic)")
        cur.at = 4
        version = cur.unpack(U32)
        if version not in VERSIONS:
            raise GGUFHeaderError(f"GGUF version {version} (this reader knows {VERSIONS})")
        cur.unpack(U64)  # tensor count
        for _ in range(int(cur.unpack(U64))):
            key = cur.string()
            yield key, cur.value(int(cur.unpack(U32)))


def first_fields(path: Path, done: Callable[[dict[str, Value]], bool]) -> dict[str, Value]:
    """Scalar fields read in order until `done(fields so far)` is true or the header ends."""
    found: dict[str, Value] = {}
    for key, value in gguf_fields(path):
        if value is not None:
            found[key] = value
            if done(found):
                break
    return found


def context_length(path: Path) -> int | None:
    """`{general.architecture}.context_length`, the model's context window, if the header has it."""
    def done(f: dict[str, Value]) -> bool:
        arch = f.get("general.architecture")
        return isinstance(arch, str) and f"{arch}.context_length" in f

    fields = first_fields(path, done)
    arch = fields.get("general.architecture")
    value = fields.get(f"{arch}.context_length") if isinstance(arch, str) else None
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None
