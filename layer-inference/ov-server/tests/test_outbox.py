"""The stream interval's hold-back (`outbox.Outbox`): what goes out at once, what waits, and that
nothing is lost or reordered. Pure: the clock is the test's."""

from __future__ import annotations

import random

from ov_server.outbox import IMMEDIATE_TOKENS, Outbox


def test_first_tokens_go_out_at_once_then_wait_for_the_interval() -> None:
    box = Outbox(0.002)
    now = 10.0
    for i in range(IMMEDIATE_TOKENS):  # one token per step, each due at once
        box.add([(1, [i], None, "")])
        assert box.take(now) == [(1, [i], None, "")]
    box.add([(1, [100], None, "")])
    assert box.take(now + 0.001) is None  # held: less than the interval since the last frame
    box.add([(1, [101], None, "")])
    assert box.take(now + 0.0015) is None
    assert box.take(now + 0.002) == [(1, [100, 101], None, "")]
    assert box.take(now + 0.010) is None  # nothing held: no frame


def test_the_end_goes_out_at_once_with_what_was_held() -> None:
    box = Outbox(0.002)
    box.add([(1, [1, 2, 3, 4], None, "")])
    assert box.take(0.0)
    box.add([(1, [5], None, "")])
    box.add([(1, [6], "length", "")])
    assert box.take(0.0001) == [(1, [5, 6], "length", "")]


def test_a_new_sequence_is_not_held_behind_a_streaming_one() -> None:
    box = Outbox(0.002)
    box.add([(1, [1, 2, 3, 4], None, "")])
    assert box.take(0.0)
    box.add([(1, [5], None, ""), (2, [9], None, "")])  # 2's first token: due, and takes 1's along
    assert box.take(0.0005) == [(1, [5], None, ""), (2, [9], None, "")]


def test_idle_always_flushes_and_zero_interval_sends_every_step() -> None:
    box = Outbox(0.002)
    box.add([(1, [1, 2, 3, 4, 5], None, "")])
    box.take(0.0)
    box.add([(1, [6], None, "")])
    assert box.take(0.0001, idle=True) == [(1, [6], None, "")]
    zero = Outbox(0.0)
    zero.add([(1, list(range(10)), None, "")])
    zero.take(0.0)
    for i in range(10, 20):
        zero.add([(1, [i], None, "")])
        assert zero.take(0.0) == [(1, [i], None, "")]


def test_nothing_is_lost_or_reordered_over_a_random_schedule() -> None:
    rnd = random.Random(7)
    box = Outbox(0.002)
    sent: dict[int, list[int]] = {}
    ended: dict[int, str] = {}
    made: dict[int, list[int]] = {rid: [] for rid in range(6)}
    now, frames, steps = 0.0, 0, 0
    running = set(made)
    while running:
        steps += 1
        now += rnd.uniform(0.0001, 0.001)
        updates = []
        for rid in sorted(running):
            ids = [rnd.randrange(1000) for _ in range(rnd.choice((0, 1, 1, 2)))]
            made[rid] += ids
            reason = "stop" if rnd.random() < 0.01 else None
            if ids or reason:
                updates.append((rid, ids, reason, ""))
            if reason:
                running.discard(rid)
        box.add(updates)
        frame = box.take(now, idle=not running)
        if frame:
            frames += 1
            for rid, ids, reason, _ in frame:
                assert rid not in ended  # nothing after a sequence's end
                sent.setdefault(rid, []).extend(ids)
                if reason:
                    ended[rid] = reason
    assert not box
    assert sent == {rid: ids for rid, ids in made.items() if ids or rid in ended}
    assert set(ended) == set(made)
    assert frames < steps / 2  # steps of ~0.55 ms under a 2 ms interval: held for real
