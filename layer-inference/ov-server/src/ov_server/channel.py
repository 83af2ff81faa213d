"""The channel between the HTTP process and an engine process: length-prefixed pickle frames over a
Unix stream socket (socketpair). Chosen by measurement (bench/bench_channel.py, ARCHITECTURE.md):
the engine sends one frame per step (per stream interval for a fast model: outbox.py) carrying every
sequence's new tokens, and the HTTP side reads the socket from its event loop, so a busy loop
takes many frames in one read and no thread hands tokens over under the GIL.

Both ends are our own processes from the same installation, so pickle is safe here; it is the
fastest encoder of the candidates for these small tuples of ints.

Messages (tuples, first item the kind):
  parent -> engine: ("add", rid, prompt_ids, SamplingParams, request id or None) | ("cancel", rid) | ("stop",)
  engine -> parent: ("ready", info) | ("load_error", message)
                    | ("admitted", [rid, ...], [(rid, status, message, grammar), ...])  # accepted / refused adds
                    | ("step", [(rid, new_ids, finish_reason_or_None), ...]) | ("fatal", message)
                    | ("stats", running, waiting, kv_ratio) | ("alive",)  # heartbeat while busy
"""

from __future__ import annotations

import pickle
import socket
import struct
from typing import Any

HEADER = struct.Struct("<I")
MAX_FRAME = 1 << 30


def encode(msg: Any) -> bytes:
    body = pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(body)) + body


class FrameReader:
    """Accumulates bytes; `feed` returns every complete message so far."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Any]:
        buf = self._buf
        buf += data
        out = []
        pos = 0
        size = len(buf)
        while size - pos >= 4:
            (n,) = HEADER.unpack_from(buf, pos)
            if n > MAX_FRAME:
                raise ValueError(f"frame of {n} bytes: the stream is corrupt")
            if size - pos - 4 < n:
                break
            out.append(pickle.loads(memoryview(buf)[pos + 4 : pos + 4 + n]))
            pos += 4 + n
        if pos:
            del buf[:pos]
        return out

    @property
    def pending(self) -> int:
        return len(self._buf)


class BlockingChannel:
    """Blocking send/receive on a socket (the engine process, and the parent while loading)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reader = FrameReader()
        self._ready: list[Any] = []

    def send(self, msg: Any) -> None:
        self.sock.sendall(encode(msg))

    def recv(self, timeout: float | None = None) -> Any:
        """The next message; raises EOFError when the other end closed, TimeoutError on timeout."""
        self.sock.settimeout(timeout)
        try:
            while not self._ready:
                try:
                    data = self.sock.recv(1 << 16)
                except socket.timeout:
                    raise TimeoutError("no message from the other process") from None
                if not data:
                    raise EOFError("the other process closed the channel")
                self._ready += self.reader.feed(data)
        finally:
            self.sock.settimeout(None)
        return self._ready.pop(0)

    def poll(self) -> list[Any]:
        """Every message already waiting, without blocking; raises EOFError when closed."""
        while True:
            try:
                data = self.sock.recv(1 << 16, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                break
            if not data:
                if self._ready:
                    break  # hand over what came before the close first
                raise EOFError("the other process closed the channel")
            self._ready += self.reader.feed(data)
        out, self._ready = self._ready, []
        return out
