"""What the engine process holds back between two `step` frames (the stream interval).

A small model makes a token every ~0.5 ms. Sent one frame per step, each token wakes the HTTP
process, becomes one SSE event and wakes the client; on a machine with few cores those wake-ups
take CPU from the engine (measured: bench/bench_server.py --interval). So a sequence's new tokens
are held for up to `interval_s` and sent together, like vLLM's and SGLang's `--stream-interval`
(those count tokens; this counts time, so a slow model is never held). What a client
waits on is never held: a sequence's first tokens (time to first token) and its end go out at
once, each carrying everything held so far. "First tokens" are a sequence's first
`IMMEDIATE_TOKENS`: one token alone may decode to no visible text yet (part of a character, a
leading space a client trims), and holding the next one would then delay the first text a client
sees. A model slower than the interval per step (every
real one here) is unaffected: each of its steps is already due.

Pure: the clock is passed in, so the tests drive it.
"""

from __future__ import annotations

Update = tuple[int, list[int], str | None, str]  # (rid, new ids, finish reason or None, error message)

IMMEDIATE_TOKENS = 4


class Outbox:
    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._held: dict[int, tuple[list[int], str | None, str]] = {}
        self._counts: dict[int, int] = {}  # tokens so far of each running sequence
        self._urgent = False
        self._sent_at = float("-inf")

    def __bool__(self) -> bool:
        return bool(self._held)

    def add(self, updates: list[Update]) -> None:
        held = self._held
        for rid, ids, reason, message in updates:
            before = held.get(rid)
            held[rid] = (before[0] + ids if before else list(ids), reason, message)
            if reason is not None:
                self._urgent = True
                self._counts.pop(rid, None)
                continue
            count = self._counts.get(rid, 0)
            if count < IMMEDIATE_TOKENS:
                self._urgent = True
            self._counts[rid] = count + len(ids)

    def take(self, now: float, idle: bool = False) -> list[Update] | None:
        """The frame's updates if one is due at `now` (always when `idle`: nothing would follow)."""
        if not self._held or not (idle or self._urgent or now - self._sent_at >= self.interval_s):
            return None
        out = [(rid, ids, reason, message) for rid, (ids, reason, message) in self._held.items()]
        self._held = {}
        self._urgent = False
        self._sent_at = now
        return out
