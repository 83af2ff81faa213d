"""A service's log file: why it is down (read after the log), and following new lines."""

from __future__ import annotations

import sys
import time
import xmlrpc.client
from pathlib import Path
from typing import Any

from homelab.runtime import death
from homelab.runtime.paths import RuntimePaths
from homelab.runtime.supervisor import Supervisor


def why_down(paths: RuntimePaths, name: str) -> tuple[str, death.Death] | None:
    """(its state, why it died) when the service is not running and its death is known."""
    sup = Supervisor(paths)
    try:
        proc = sup.info().get(name) if sup.running() else None
    except (OSError, xmlrpc.client.Error):
        proc = None
    if proc is not None:
        died = death.explain(name, proc.state, proc.exitstatus, proc.spawnerr,
                             paths.supervisord_log)
        state = proc.state
    else:
        died, state = death.last_death(paths.supervisord_log, name), "not running"
    return (state, died) if died is not None else None


def follow(path: Path, fh: Any) -> None:
    """Copy what is appended to `path` to stdout until interrupted (a rotated file starts over)."""
    pos = fh.tell()
    while True:
        size = path.stat().st_size if path.exists() else 0
        if size < pos:  # rotated or truncated: start over on the new file
            fh = open(path, "rb")  # noqa: SIM115
            pos = 0
        fh.seek(pos)
        chunk = fh.read()
        if chunk:
            sys.stdout.write(chunk.decode(errors="replace"))
            sys.stdout.flush()
            pos = fh.tell()
        time.sleep(0.3)
