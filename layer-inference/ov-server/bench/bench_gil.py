"""Does `ContinuousBatchingPipeline.step()` release the GIL?  (It does not.)

Run from the service folder:  CI=true uv run python bench/bench_gil.py

A Python thread counts loop iterations for one second alone, then again while
another thread calls `step()` on the built-in model as fast as it can. If
`step()` released the GIL, the counting thread would keep ~100% of its solo
rate on a second core and the stepping thread would wait for the GIL after
every step; if it holds the GIL, the two share it in switch-interval slices
(~50% each). Control: the same measurement beside a thread hashing 4 MB
blocks (hashlib releases the GIL for large inputs) shows what "released"
looks like on this machine. Prints the rates and ratios.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("CI", "true")

import ov_server  # noqa: F401  (blocks telemetry before openvino is imported)
from ov_server.tiny_model import build_tiny_model


def count_for(seconds: float) -> int:
    n = 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        n += 1
    return n


def beside(work, seconds: float = 1.0) -> float:
    """Counting rate while `work()` runs in a loop on another thread."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            work()

    t = threading.Thread(target=loop)
    t.start()
    time.sleep(0.2)
    n = count_for(seconds)
    stop.set()
    t.join()
    return n


def main() -> int:
    import numpy as np
    import openvino as ov
    import openvino_genai as ov_genai

    with tempfile.TemporaryDirectory() as tmp:
        sc = ov_genai.SchedulerConfig()
        sc.cache_size = 1
        pipe = ov_genai.ContinuousBatchingPipeline(str(build_tiny_model(Path(tmp))), sc, "CPU",
                                                   {"INFERENCE_NUM_THREADS": 1, "ENABLE_CPU_PINNING": False})
        cfg = ov_genai.GenerationConfig()
        cfg.max_new_tokens = cfg.min_new_tokens = 100_000
        cfg.ignore_eos = True
        handle = pipe.add_request(0, ov.Tensor(np.asarray([[1, 2, 3]], dtype=np.int64)), cfg)
        steps = 0
        stop = threading.Event()

        def stepper() -> None:
            nonlocal steps
            while not stop.is_set():
                pipe.step()
                steps += 1
                if handle.can_read():
                    handle.read()

        solo_steps_t0 = time.perf_counter()
        for _ in range(2000):
            pipe.step()
            handle.read()
        solo_steps = 2000 / (time.perf_counter() - solo_steps_t0)
        solo = count_for(1.0)
        block = os.urandom(4 << 20)
        control = beside(lambda: hashlib.sha256(block).digest())
        t = threading.Thread(target=stepper)
        t.start()
        time.sleep(0.2)
        s0 = steps
        shared = count_for(1.0)
        s1 = steps
        stop.set()
        t.join()
        handle.cancel()
        pipe.step()
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print(f"steps/s alone                          : {solo_steps:8.0f}")
    print(f"steps/s beside a busy Python thread    : {s1 - s0:8.0f}")
    print(f"Python loop rate beside sha256 / alone : {control / solo:8.2f}   (control: GIL released)")
    print(f"Python loop rate beside step() / alone : {shared / solo:8.2f}   (near the control = released, ~0.5 = held)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
