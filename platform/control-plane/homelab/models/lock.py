"""One `homelab models add|rm` at a time per checkout.

Each one reads the contracts, plans its edit from them, writes them back and restarts the gateway.
Two at once would plan from the same contracts: the later write would drop the earlier model
(registered with its engine, routed nowhere), and their gateway restarts would collide (`up`
refuses a second one). So a second command waits for the first, saying so, and only then reads
the contracts, the first one's change included.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from homelab.runtime.paths import RuntimePaths

LOCK_FILE = "models.lock"


@contextlib.contextmanager
def models_lock(root: Path, say: Callable[[str], None]) -> Iterator[None]:
    """Hold the checkout's models lock (blocking); `say` tells the user when it has to wait."""
    path = RuntimePaths(root).state / LOCK_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip()
            say(f"waiting for another `homelab models add/rm` on this checkout"
                f"{f' (pid {holder})' if holder.isdigit() else ''} to finish ...")
            fcntl.flock(fh, fcntl.LOCK_EX)
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        yield  # the kernel drops the lock when the file closes, or the process dies
