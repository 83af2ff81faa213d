"""Which channel between the HTTP process and an engine process? Prints the cost of each candidate.

Run from the service folder:  CI=true uv run python bench/bench_channel.py

A producer process plays the engine: it sends one message per "step" carrying every running
sequence's new token, `(rid, [token], None, "")` per sequence, as `engine_worker` does. The HTTP
process receives on its uvloop event loop (where the request handlers run) and hands each token to
its sequence. Candidates:
- pipe+thread : multiprocessing.Pipe (pickle), a reader thread blocked in recv(), tokens handed to
                the event loop with call_soon_threadsafe (the obvious design without a loop reader);
- socket+loop : socketpair, length-prefixed pickle frames (`ov_server.channel`), read by the event
                loop itself through a Protocol: no thread, one read takes every frame that arrived;
- shm-ring    : a shared-memory ring (multiprocessing.shared_memory) with a pipe doorbell rung only
                when the reader sleeps; the event loop watches the doorbell and drains the ring.
Figures, per candidate and sequence count:
- flood  : the producer sends as fast as it can; HTTP-process CPU per message and per token, and
           messages/s (the rate the engine could step without waiting on the channel);
- paced  : one message every 150 us (a step of the built-in model): HTTP-process CPU per message
           (wake-ups included) and one-way latency p50/p99 (monotonic clock, shared by processes);
- rtt    : a request and its answer, p50 (what an admission round trip costs).
Plus the encode+decode cost of one step message with pickle, marshal and json (msgpack is not
installed; it would sit between marshal and json).
"""

from __future__ import annotations

import asyncio
import json
import marshal
import os
import pickle
import socket
import struct
import subprocess
import sys
import threading
import time
from multiprocessing import resource_tracker, shared_memory
from multiprocessing.connection import Connection

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "src"))

from ov_server.channel import FrameReader, encode  # noqa: E402

FLOOD = 20_000
PACED = 4_000
PACE_S = 150e-6
RTT = 2_000
RING = 1 << 20
HDR = struct.Struct("<QQB")  # head, tail, reader sleeping


def step_message(seqs: int, k: int) -> tuple:
    return ("step", [(rid, [k % 250], None, "") for rid in range(seqs)], time.perf_counter_ns())


# -- producer (the "engine" process) -----------------------------------------------------------
def produce(kind: str, fd: int, mode: str, seqs: int, shm_name: str, bell: int) -> None:
    count = {"flood": FLOOD, "paced": PACED, "rtt": RTT}[mode]
    if kind == "pipe+thread":
        conn = Connection(fd)
        send = conn.send
        recv = conn.recv
    elif kind == "socket+loop":
        sock = socket.socket(fileno=fd)
        reader = FrameReader()

        def send(msg):
            sock.sendall(encode(msg))

        def recv():
            while True:
                got = reader.feed(sock.recv(65536))
                if got:
                    return got[0]
    else:
        shm = shared_memory.SharedMemory(shm_name)
        # Python 3.11 registers an attached segment for removal at exit: the HTTP side owns it.
        resource_tracker.unregister(shm._name, "shared_memory")  # type: ignore[attr-defined]
        buf = shm.buf
        head = 0
        ack = os.fdopen(fd, "rb", buffering=0)

        def send(msg):
            nonlocal head
            body = pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL)
            frame = struct.pack("<I", len(body)) + body
            while head + len(frame) - HDR.unpack_from(buf, 0)[1] > RING:
                time.sleep(0)  # ring full: the reader is behind
            pos = head % RING
            first = min(len(frame), RING - pos)
            buf[HDR.size + pos:HDR.size + pos + first] = frame[:first]
            if first < len(frame):
                buf[HDR.size:HDR.size + len(frame) - first] = frame[first:]
            head += len(frame)
            struct.pack_into("<Q", buf, 0, head)
            if buf[16]:
                os.write(bell, b"x")

        def recv():
            return ack.read(1)
    rtts: list[int] = []
    for k in range(count):
        if mode == "rtt":
            t0 = time.perf_counter_ns()
            send(("ping",))
            recv()
            rtts.append(time.perf_counter_ns() - t0)
            continue
        send(step_message(seqs, k))
        if mode == "paced":
            until = time.perf_counter() + PACE_S
            while time.perf_counter() < until:
                pass
    send(("end", sorted(rtts)[len(rtts) // 2] if rtts else 0))
    if kind == "shm-ring":
        ack.read(1)  # the reader is done with the ring
        del buf
        shm.close()


# -- consumer (the HTTP process) ----------------------------------------------------------------
class Sink:
    """Per-sequence token lists plus latency samples: the same work for every candidate."""

    def __init__(self, seqs: int) -> None:
        self.tokens: list[list[int]] = [[] for _ in range(seqs)]
        self.latency_ns: list[int] = []
        self.messages = 0
        self.done: asyncio.Future | None = None
        self.reply = None

    def dispatch(self, msg: tuple) -> None:
        kind = msg[0]
        if kind == "step":
            for rid, ids, _, _ in msg[1]:
                self.tokens[rid] += ids
            self.latency_ns.append(time.perf_counter_ns() - msg[2])
            self.messages += 1
        elif kind == "ping":
            self.reply()
        elif kind == "end" and not self.done.done():
            if msg[1]:
                self.latency_ns.append(msg[1])  # the producer's round-trip p50
            self.done.set_result(None)


async def consume(kind: str, mode: str, seqs: int) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    sink = Sink(seqs)
    sink.done = loop.create_future()
    shm = None
    after_spawn: list = []  # our copies of the child's ends
    at_end: list = []
    if kind == "pipe+thread":
        ours, theirs = socket.socketpair()
        conn = Connection(os.dup(ours.fileno()))
        ours.close()
        sink.reply = lambda: conn.send(("pong",))

        def reader() -> None:
            while True:
                msg = conn.recv()
                loop.call_soon_threadsafe(sink.dispatch, msg)
                if msg[0] == "end":
                    return

        threading.Thread(target=reader, daemon=True).start()
        child_fd, shm_name, bell_w = theirs.fileno(), "", -1
        after_spawn.append(theirs.close)
    elif kind == "socket+loop":
        ours, theirs = socket.socketpair()
        reader_frames = FrameReader()

        class Proto(asyncio.Protocol):
            def connection_made(self, transport):  # type: ignore[no-untyped-def]
                self.t = transport

            def data_received(self, data: bytes) -> None:
                for msg in reader_frames.feed(data):
                    sink.dispatch(msg)

        ours.setblocking(False)
        transport, proto = await loop.create_unix_connection(Proto, sock=ours)
        sink.reply = lambda: transport.write(encode(("pong",)))
        child_fd, shm_name, bell_w = theirs.fileno(), "", -1
        after_spawn.append(theirs.close)
        at_end.append(transport.close)
    else:
        shm = shared_memory.SharedMemory(create=True, size=HDR.size + RING)
        shm.buf[:HDR.size] = bytes(HDR.size)
        bell_r, bell_w = os.pipe()
        ack_r, ack_w = os.pipe()
        os.set_blocking(bell_r, False)
        buf = shm.buf
        tail = 0
        pending = bytearray()

        def drain() -> None:
            nonlocal tail
            try:
                os.read(bell_r, 65536)
            except BlockingIOError:
                pass
            while True:
                buf[16] = 0
                head = HDR.unpack_from(buf, 0)[0]
                if head == tail:
                    buf[16] = 1  # going to sleep: ring the bell from now on ...
                    if HDR.unpack_from(buf, 0)[0] == tail:  # ... unless something came meanwhile
                        # x86 may reorder our flag store after the head load: a timer covers a
                        # wake-up lost that way (at most 2 ms late).
                        if timers:
                            timers.pop().cancel()
                        timers.append(loop.call_later(0.002, drain))
                        return
                    continue
                start = tail % RING
                end = start + (head - tail)
                if end <= RING:
                    pending.extend(buf[HDR.size + start:HDR.size + end])
                else:
                    pending.extend(buf[HDR.size + start:HDR.size + RING])
                    pending.extend(buf[HDR.size:HDR.size + end - RING])
                tail = head
                struct.pack_into("<Q", buf, 8, tail)
                pos = 0
                while len(pending) - pos >= 4:
                    (n,) = struct.unpack_from("<I", pending, pos)
                    if len(pending) - pos - 4 < n:
                        break
                    sink.dispatch(pickle.loads(pending[pos + 4:pos + 4 + n]))
                    pos += 4 + n
                del pending[:pos]

        timers: list = []
        buf[16] = 1
        loop.add_reader(bell_r, drain)
        sink.reply = lambda: os.write(ack_w, b"x")
        child_fd, shm_name = ack_r, shm.name
        after_spawn += [lambda: os.close(ack_r), lambda: os.close(bell_w)]
        at_end += [lambda: loop.remove_reader(bell_r), lambda: os.close(bell_r),
                   lambda: [t.cancel() for t in timers]]
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, __file__, "--produce", kind, str(child_fd), mode, str(seqs),
                             shm_name, str(bell_w)], pass_fds=[fd for fd in (child_fd, bell_w) if fd >= 0])
    for fn in after_spawn:
        fn()
    await sink.done
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    if kind == "shm-ring":
        os.write(ack_w, b"x")
    await loop.run_in_executor(None, proc.wait)
    for fn in at_end:
        fn()
    if shm is not None:
        del buf
        shm.close()
        shm.unlink()
        os.close(ack_w)
    n = sink.messages or RTT
    lat = sorted(sink.latency_ns)
    return {"wall": wall, "cpu_per_msg_us": cpu / n * 1e6, "cpu_per_token_us": cpu / (n * seqs) * 1e6,
            "msgs_per_s": n / wall, "p50_us": lat[len(lat) // 2] / 1000, "p99_us": lat[int(len(lat) * 0.99)] / 1000}


def codec_costs(seqs: int) -> dict[str, float]:
    msg = step_message(seqs, 7)
    jmsg = ["step", [[rid, ids, None, ""] for rid, ids, _, _ in msg[1]], msg[2]]
    codecs = {
        "pickle": (lambda: pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL), pickle.loads),
        "marshal": (lambda: marshal.dumps(msg), marshal.loads),
        "json": (lambda: json.dumps(jmsg).encode(), json.loads),
    }
    out = {}
    for name, (enc, dec) in codecs.items():
        data = enc()
        t0 = time.perf_counter()
        for _ in range(20_000):
            dec(enc())
        out[name] = (time.perf_counter() - t0) / 20_000 * 1e6
        out[name + "_bytes"] = len(data)
    return out


def main() -> int:
    if sys.argv[1:2] == ["--produce"]:
        kind, fd, mode, seqs, shm_name, bell = sys.argv[2:8]
        produce(kind, int(fd), mode, int(seqs), shm_name, int(bell))
        return 0
    import uvloop

    kinds = ["pipe+thread", "socket+loop", "shm-ring"]
    load0 = os.getloadavg()[0]
    rows = []
    for seqs in (1, 8):
        for mode in ("flood", "paced"):
            for kind in kinds:
                rows.append((kind, mode, seqs, uvloop.run(consume(kind, mode, seqs))))
    rtt = {kind: uvloop.run(consume(kind, "rtt", 1))["p50_us"] for kind in kinds}
    print(f"{os.cpu_count()} CPUs, load average {load0:.1f} -> {os.getloadavg()[0]:.1f}; HTTP-process CPU is "
          "process_time of the receiving process (its event loop and any reader thread)")
    print(f"{'candidate':12} {'mode':6} {'seqs':>4} {'msgs/s':>9} {'cpu/msg us':>11} {'cpu/token us':>13} "
          f"{'lat p50 us':>11} {'lat p99 us':>11}")
    for kind, mode, seqs, r in rows:
        print(f"{kind:12} {mode:6} {seqs:4d} {r['msgs_per_s']:9.0f} {r['cpu_per_msg_us']:11.1f} "
              f"{r['cpu_per_token_us']:13.2f} {r['p50_us']:11.0f} {r['p99_us']:11.0f}")
    for kind, p50 in rtt.items():
        print(f"{kind:12} round trip p50 {p50:.0f} us")
    for seqs in (1, 8):
        c = codec_costs(seqs)
        print(f"encode+decode of one step message with {seqs} sequence(s): " + ", ".join(
            f"{k} {c[k]:.1f} us ({c[k + '_bytes']} B)" for k in ("pickle", "marshal", "json")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
