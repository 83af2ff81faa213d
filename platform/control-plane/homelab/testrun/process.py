"""Run one suite's command under a wall clock that fires.

The suite runs in its own session (process group), its output copied line by line by a thread,
so the clock is independent of the output. At the deadline the group gets SIGINT (pytest then
reports where it was and tears its fixtures down), SIGKILL after a grace period. Every process
the suite started carries a marker in its environment (`HOMELAB_TEST_RUN=<token>`), so what
escaped the group (a daemon in its own session, a process in a network namespace) is found and
stopped too, after a timeout and after a normal end alike.
"""

from __future__ import annotations

import collections
import json
import os
import secrets
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

MARKER = "HOMELAB_TEST_RUN"
INTERRUPT_GRACE_S = 30.0  # pytest's teardown after SIGINT (stopping real services)
LEFTOVER_GRACE_S = 5.0  # children still exiting on their own after the suite ended


@dataclass(frozen=True)
class Progress:
    """What the suite's pytest last said (homelab_progress plugin), if anything."""

    phase: str | None = None
    test: str | None = None
    per_test_timeout_s: float | None = None

    @classmethod
    def read(cls, path: Path) -> Progress:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return cls()
        return cls(data.get("phase"), data.get("test"), data.get("per_test_timeout_s"))

    def where(self) -> str:
        if self.phase == "running" and self.test:
            return f"while running {self.test}"
        if self.phase == "between tests" and self.test:
            return f"after {self.test} (between tests)"
        if self.phase:
            return f"while {self.phase}"
        return "before pytest started (environment sync?)"


@dataclass
class RunResult:
    returncode: int
    seconds: float
    timed_out: bool = False
    progress: Progress = field(default_factory=Progress)
    leftovers: list[str] = field(default_factory=list)  # "pid cmdline" of processes we stopped
    tail: str = ""  # the last lines of output


def marked_processes(token: str) -> list[int]:
    needle = f"{MARKER}={token}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if needle in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:  # exited meanwhile, or not ours to read
                pass
    return found


def _cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()[:160]


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def stop_leftovers(token: str, grace_s: float = LEFTOVER_GRACE_S) -> list[str]:
    """Wait `grace_s` for marked processes to end, then KILL the rest; describe those."""
    deadline = time.monotonic() + grace_s
    while (pids := marked_processes(token)) and time.monotonic() < deadline:
        time.sleep(0.2)
    described = [f"{pid} {_cmdline(pid)}" for pid in pids]
    for _ in range(50):  # a dying parent may still fork: repeat until none is left
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1)
        pids = marked_processes(token)
    return described


def run(cmd: list[str], *, cwd: Path, env: dict[str, str], timeout_s: float,
        echo: Callable[[str], None], progress_file: Path | None = None,
        interrupt_grace_s: float = INTERRUPT_GRACE_S) -> RunResult:
    token = secrets.token_hex(8)
    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=cwd, env={**env, MARKER: token}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
                            errors="replace", start_new_session=True)
    assert proc.stdout is not None
    stdout = proc.stdout
    tail: collections.deque[str] = collections.deque(maxlen=50)

    def copy() -> None:
        for line in stdout:
            tail.append(line)
            echo(line)

    reader = threading.Thread(target=copy, daemon=True)
    reader.start()
    timed_out, progress = False, Progress()
    try:
        rc = proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
        progress = Progress.read(progress_file) if progress_file else Progress()
        echo(f"\nhomelab test: wall clock of {timeout_s:.0f} s reached {progress.where()}: "
             "interrupting the suite\n")
        _signal_group(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=interrupt_grace_s)
        except subprocess.TimeoutExpired:
            pass
        _signal_group(proc.pid, signal.SIGKILL)  # the group, even when its leader is gone
        rc = proc.wait()
    leftovers = stop_leftovers(token)
    reader.join(timeout=10)  # the pipe closes once every holder of it is gone
    secs = time.monotonic() - start
    if not timed_out and progress_file:  # the last word of a suite that ended by itself
        progress = Progress.read(progress_file)
    return RunResult(rc, secs, timed_out, progress, leftovers, "".join(tail))
