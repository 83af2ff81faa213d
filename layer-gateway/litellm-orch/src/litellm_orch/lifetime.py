"""Processes of the gateway end with the process that started them.

Why: uvicorn's workers are children of its master; when the master was killed with SIGKILL they
lived on as orphans, still serving the port, unsupervised, and the restarted gateway could not
bind it. With PR_SET_PDEATHSIG the kernel signals a process when its parent exits, whatever the
reason. Each worker asks for SIGKILL (its master is gone, nothing is left to hand over to); the
master asks for SIGTERM when its own parent (`uv run`, under supervisord or systemd) goes, so it
stops its workers cleanly.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
MASTER_PID_ENV = "LITELLM_ORCH_MASTER_PID"


def die_with_parent(sig: signal.Signals, expected_parent: int) -> bool:
    """Have the kernel send `sig` to this process when its parent exits. False off Linux.

    `expected_parent` closes the race where the parent exited before the call: then the signal
    is sent at once.
    """
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl(PR_SET_PDEATHSIG): {os.strerror(err)}")
    if os.getppid() != expected_parent:
        os.kill(os.getpid(), sig)
    return True


def bind_worker_to_master() -> None:
    """In a worker spawned by the launcher's master: die with it. No-op in the master itself
    (one worker runs in the master process) and outside the launcher."""
    raw = os.environ.get(MASTER_PID_ENV, "")
    if not raw.isdigit() or int(raw) == os.getpid():
        return
    die_with_parent(signal.SIGKILL, int(raw))
