"""Frames between the HTTP process and an engine process."""

from __future__ import annotations

import socket

import pytest

from ov_server.channel import BlockingChannel, FrameReader, encode
from ov_server.engine import SamplingParams

MSGS = [("step", [(1, [5, 6], None, ""), (2, [], "stop", "")]), ("add", 3, list(range(5000)), SamplingParams(9)),
        ("stop",)]


def test_frames_survive_any_split():
    data = b"".join(encode(m) for m in MSGS)
    for cut in (1, 3, 4, 5, 17, len(data) // 2, len(data) - 1):
        r = FrameReader()
        got = r.feed(data[:cut]) + r.feed(data[cut:])
        assert got == MSGS and r.pending == 0
    r = FrameReader()
    assert [m for b in data for m in r.feed(bytes([b]))] == MSGS  # byte by byte


def test_a_corrupt_length_is_refused():
    with pytest.raises(ValueError, match="corrupt"):
        FrameReader().feed(b"\xff\xff\xff\xff" + b"x" * 8)


def test_blocking_channel_poll_recv_and_eof():
    a, b = socket.socketpair()
    left, right = BlockingChannel(a), BlockingChannel(b)
    assert right.poll() == []
    for m in MSGS:
        left.send(m)
    assert right.recv(timeout=5) == MSGS[0]
    assert right.poll() == MSGS[1:]
    with pytest.raises(TimeoutError):
        right.recv(timeout=0.05)
    left.send(("last",))
    a.close()
    assert right.poll() == [("last",)]  # what came before the close is delivered first
    with pytest.raises(EOFError):
        right.poll()
    with pytest.raises(EOFError):
        right.recv(timeout=5)
