"""An extraction worker process: `python -m web_fetch.worker --memory-mb N`.

The server (`extractpool.py`) keeps a few of these and kills one whose job outlives the fetch's
deadline; killing a process is the only way to stop C-level parsing at once and to give all of
its memory back to the OS. Protocol on stdin/stdout, one job at a time:

  request: one JSON line {"size", "charset", "url", "max_elements", "max_chars", "soft_budget_s"},
           then `size` bytes of HTML
  reply:   one JSON line {"ok": true, "title", "truncated", "size", "rss_bytes"}, then `size`
           bytes of UTF-8 text; or {"ok": false, "error"}

The worker exits on end of input, and (Linux) when the server dies: PR_SET_PDEATHSIG.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import gc
import json
import os
import resource
import signal
import sys
from typing import BinaryIO

PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int | None) -> None:
    """Ask the kernel to SIGKILL us when the server process goes away (Linux only)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # elsewhere: end of input (the server's pipe closing) still ends the loop
    if parent_pid is not None and os.getppid() != parent_pid:
        sys.exit(0)  # the server died before the request above took effect


def cap_memory(megabytes: int) -> None:
    """Address-space cap: a page that needs more fails with MemoryError instead of swapping."""
    limit = megabytes * 1024 * 1024
    try:
        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        resource.setrlimit(resource.RLIMIT_AS, (limit if hard == resource.RLIM_INFINITY else min(limit, hard), hard))
    except (ValueError, OSError):
        pass


def _trim() -> None:
    """Give freed heap back to the OS now (glibc keeps it otherwise), so idle workers stay small."""
    gc.collect()
    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def rss_bytes() -> int:
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # peak: errs on recycling


def _reply(out: BinaryIO, header: dict, payload: bytes = b"") -> None:
    out.write(json.dumps(header).encode() + b"\n" + payload)
    out.flush()


def serve(inp: BinaryIO, out: BinaryIO) -> None:
    from web_fetch.extract import extract_html  # after the limits are set: trafilatura is the bulk

    while True:
        line = inp.readline()
        if not line:
            return  # the server closed our input: exit
        job = json.loads(line)
        body = inp.read(job["size"])
        try:
            result = extract_html(body, job.get("charset"), job.get("url", ""),
                                  max_elements=job["max_elements"], soft_budget_s=job["soft_budget_s"])
            text = result.text[:job["max_chars"]].encode("utf-8", errors="replace")
            header = {"ok": True, "title": result.title, "truncated": len(result.text) > job["max_chars"],
                      "size": len(text)}
        except MemoryError:
            header, text = {"ok": False, "error": "page needs more memory than WEB_FETCH_WORKER_MEMORY_MB allows"}, b""
        except Exception as exc:  # noqa: BLE001 - one bad page must not end the worker
            header, text = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:500]}, b""
        del body
        result = None
        _trim()
        header["rss_bytes"] = rss_bytes()
        _reply(out, header, text)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="web_fetch.worker", description=__doc__.splitlines()[0])
    p.add_argument("--memory-mb", type=int, required=True)
    p.add_argument("--parent-pid", type=int)
    args = p.parse_args(argv)
    die_with_parent(args.parent_pid)
    cap_memory(args.memory_mb)
    # The protocol owns the real stdout; anything a library prints goes to stderr instead.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    serve(sys.stdin.buffer, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
