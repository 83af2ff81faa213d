"""Why a service died, in words: exit code or signal name, and what usually causes that.

supervisord says "Exited too quickly" and keeps the rest in its own log ("exited: NAME (exit
status 136; not expected)", "terminated by SIGFPE"). Services run under `uv run`, which exits
128+N when its child dies of signal N, so exit 136 is SIGFPE (a native crash) and 137 SIGKILL
(often the OOM killer). This module turns both forms into one sentence and a hint.
"""

from __future__ import annotations

import re
import signal
from dataclasses import dataclass
from pathlib import Path

_EXITED = re.compile(r"^(?P<when>\S+ \S+) \w+ exited: (?P<name>\S+) \((?P<what>.*); (?:not )?expected\)$")
_GAVE_UP = re.compile(r"^(?P<when>\S+ \S+) \w+ gave up: (?P<name>\S+) entered FATAL state")
_SIGNAL = re.compile(r"terminated by (SIG[A-Z0-9]+)")
_STATUS = re.compile(r"exit status (-?\d+)")

SIGNAL_HINTS = {
    "SIGFPE": "an arithmetic fault in native code (e.g. a divide error in a compiled library): "
              "the kernel log names the library (`dmesg | grep -i traps`); a CPU-specific code path "
              "is a common cause",
    "SIGSEGV": "a segmentation fault in native code: the kernel log names the library (`dmesg | tail`)",
    "SIGABRT": "aborted by a native library (failed assertion, std::terminate): the log lines "
               "above usually say why",
    "SIGKILL": "killed with SIGKILL: most often the kernel's OOM killer (`dmesg | grep -i "
               "'out of memory'`), or someone ran kill -9",
    "SIGILL": "an illegal instruction: a binary built for a CPU feature this machine lacks",
    "SIGBUS": "a bus error: a memory-mapped file (e.g. a model) was truncated or replaced while in use",
    "SIGTERM": "terminated by a signal from outside supervisord",
    "SIGINT": "interrupted by a signal from outside supervisord",
}
EXIT_HINTS = {
    0: "it exited by itself with status 0: a server must keep running (is run.command a server?)",
    1: "the service reported an error and exited: the log lines above say why",
    2: "a usage or configuration error: the log lines above name the argument or setting",
    126: "the command is not executable",
    127: "command not found: check run.command, and that `uv sync` ran (`homelab up` does it)",
}


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


@dataclass(frozen=True)
class Death:
    """How a program last ended."""

    summary: str  # "exit 136 = SIGFPE (signal 8)" / "terminated by SIGKILL" / "exit 2"
    hint: str
    when: str = ""  # supervisord's timestamp of that exit
    gave_up: bool = False  # supervisord stopped retrying (FATAL)

    def sentence(self) -> str:
        return f"died: {self.summary}" + (" (supervisord gave up restarting it)" if self.gave_up else "")


def from_exit(what: str) -> tuple[str, str]:
    """(summary, hint) from supervisord's "exit status N" / "terminated by SIGX" text."""
    if m := _SIGNAL.search(what):
        name = m.group(1)
        number = getattr(signal, name, None)
        num = f" (signal {int(number)})" if number is not None else ""
        core = " (core dumped)" if "core dumped" in what else ""
        return f"terminated by {name}{num}{core}", SIGNAL_HINTS.get(name, "killed by a signal")
    if m := _STATUS.search(what):
        code = int(m.group(1))
        if 128 < code <= 128 + 64:  # `uv run` (and shells) report a child's death by signal N
            name = signal_name(code - 128)
            return (f"exit {code} = {name} (signal {code - 128})",
                    SIGNAL_HINTS.get(name, "its process died of a signal"))
        return f"exit {code}", EXIT_HINTS.get(code, EXIT_HINTS[1])
    return what, "see the log lines above"


def last_death(supervisord_log: Path, name: str, max_bytes: int = 2_000_000) -> Death | None:
    """The last exit of `name` recorded in supervisord's log (None when it never exited)."""
    try:
        with supervisord_log.open("rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            lines = fh.read().decode(errors="replace").splitlines()
    except OSError:
        return None
    gave_up = False
    for line in reversed(lines):
        if (m := _GAVE_UP.match(line)) and m["name"] == name:
            gave_up = True
        elif (m := _EXITED.match(line)) and m["name"] == name:
            summary, hint = from_exit(m["what"])
            return Death(summary, hint, m["when"], gave_up)
        elif f"success: {name} entered RUNNING" in line and not gave_up:
            return None  # it came up after its last exit: nothing to explain
    return None


DEAD_STATES = ("FATAL", "BACKOFF", "EXITED")


def explain(name: str, state: str, exitstatus: int, spawnerr: str,
            supervisord_log: Path) -> Death | None:
    """Why a program in a dead or dying state is not running (None when it is not dead)."""
    if state not in DEAD_STATES:
        return None
    # supervisord also files "Exited too quickly" and "Bad exit code" as spawnerr: those are
    # exits, explained from its log below; anything else means the command never ran.
    if spawnerr and not spawnerr.startswith(("Exited too quickly", "Bad exit code")):
        return Death(f"could not be started: {spawnerr}",
                     "check run.command (and that `uv sync` ran)", gave_up=state == "FATAL")
    found = last_death(supervisord_log, name)
    if found is not None:
        return Death(found.summary, found.hint, found.when, found.gave_up or state == "FATAL")
    summary, hint = from_exit(f"exit status {exitstatus}")
    return Death(summary, hint, gave_up=state == "FATAL")
