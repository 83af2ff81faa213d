"""Which CPUs each model's engine process may run on (a registry entry's `cpus`). Pure.

Why pin at all: OpenVINO GenAI's ContinuousBatchingPipeline samples every step on a thread pool
of its own (one thread per online CPU) and waits for it. A model computed on one inference thread
then hands each token from its step thread to a pool thread; unpinned, that thread is often woken
on the other core, which on a small machine the HTTP process and its clients hold, and the step
waits for a core it cannot have (measured: the engine's step thread blocked ~0.6 times per token,
runqueue waits a quarter of its run time). With the whole engine process on one CPU the hand-off
stays on that core: jerry-tiny streamed 1.4x more tokens/s at concurrency 1 on 2 cores and 1.16x
at concurrency 8; its first token came ~0.5 ms later (ARCHITECTURE.md, "CPU placement").

`auto` (the default): one CPU for a model with `INFERENCE_NUM_THREADS: 1`, chosen where the fewest
other pinned engines run (ties: the highest-numbered CPU, as CPU 0 usually takes more interrupts);
every usable CPU otherwise (pinning several inference threads was not measured to help). `all`: never
pinned. A list: exactly those CPUs (the ones this server may not use are dropped; none left is an
error naming the field).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import groupby

from .cpu import inference_threads
from .registry import ModelSpec

AUTO = "auto"


class PlacementError(ValueError):
    """A registry entry's `cpus` names no CPU this server may use."""


def format_cpus(cpus: Sequence[int]) -> str:
    """`0-3,6`: the kernel's list format (taskset, /proc/PID/status)."""
    runs = []
    # Consecutive numbers share their distance from their index in the sorted list.
    for _, group in groupby(enumerate(sorted(set(cpus))), key=lambda pair: pair[1] - pair[0]):
        run = [c for _, c in group]
        runs.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
    return ",".join(runs)


def _listed(model_id: str, cpus: list[int], usable: Sequence[int]) -> tuple[int, ...]:
    kept = tuple(sorted(set(cpus) & set(usable)))
    if not kept:
        raise PlacementError(f"models.{model_id}.cpus {cpus}: none of these CPUs is usable by this server "
                             f"(usable: {format_cpus(usable)})")
    return kept


def engine_cpus(model_id: str, specs: Mapping[str, ModelSpec], usable: Sequence[int]) -> tuple[int, ...] | None:
    """The CPUs `model_id`'s engine process is confined to; None = not confined (every usable CPU).

    `specs` is the whole registry in its order: an `auto` one-thread model takes the least loaded
    CPU after the entries before it (an entry listing k CPUs weighs 1/k on each), so two such models
    on a 2-CPU machine get one CPU each, and the answer for a model does not depend on load order.
    Raises PlacementError when `model_id` lists no usable CPU."""
    usable = sorted(set(usable))
    load = {c: 0.0 for c in usable}
    for mid, spec in specs.items():
        cpus: tuple[int, ...] | None
        if isinstance(spec.cpus, list):
            try:
                cpus = _listed(mid, spec.cpus, usable)
            except PlacementError:
                if mid == model_id:
                    raise
                continue  # that model's own load reports it
        elif spec.cpus == AUTO and inference_threads(spec.properties) == 1 and len(usable) > 1:
            cpus = (min(usable, key=lambda c: (load[c], -c)),)
        else:
            cpus = None
        if mid == model_id:
            return cpus
        for c in cpus or ():
            load[c] += 1 / len(cpus)
    raise KeyError(model_id)
