"""Run HTML extraction in worker processes with a hard deadline (see `worker.py`).

Why processes: extraction is CPU- and memory-bound C and Python code that cannot be interrupted
from another thread; in threads, a hostile page kept the server busy far past the fetch's limit
and its memory was never released. Here each job runs in a worker that is
- killed when the fetch's deadline passes (or the call is cancelled), and replaced at once;
- replaced when, after a job, it still holds more than RECYCLE_RSS_BYTES or has done
  MAX_JOBS_PER_WORKER jobs (its memory goes back to the OS with it);
- capped to `worker_memory_mb` of address space.
At most `workers` jobs run at once; the others wait for a worker, within their own deadline."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import anyio
from anyio.abc import Process
from anyio.streams.buffered import BufferedByteReceiveStream

RECYCLE_RSS_BYTES = 200 * 1024 * 1024  # an idle, trimmed worker holds ~40 MB
MAX_JOBS_PER_WORKER = 200  # bounds slow growth in library caches
SOFT_SHARE = 0.6  # of the time left: main-content detection; the rest is for the cheap fallback
MAX_REPLY_HEADER = 64 * 1024
EXIT_GRACE_S = 1.0  # a worker whose pipe broke is usually exiting: let it finish so its signal is known


class ExtractError(Exception):
    """Extraction failed or ran out of time; str() is the tool error shown to the model."""


@dataclass(frozen=True)
class Extraction:
    title: str | None
    text: str
    truncated: bool


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class _Worker:
    def __init__(self, process: Process) -> None:
        self.process = process
        self.reader = BufferedByteReceiveStream(process.stdout)  # type: ignore[arg-type]
        self.jobs = 0
        self.rss = 0

    @property
    def pid(self) -> int:
        return self.process.pid

    def worn_out(self) -> bool:
        return self.rss > RECYCLE_RSS_BYTES or self.jobs >= MAX_JOBS_PER_WORKER

    async def extract(self, body: bytes, *, charset: str | None, url: str, max_elements: int, max_chars: int,
                      soft_budget_s: float) -> Extraction:
        job = {"size": len(body), "charset": charset, "url": url, "max_elements": max_elements,
               "max_chars": max_chars, "soft_budget_s": soft_budget_s}
        assert self.process.stdin is not None
        await self.process.stdin.send(json.dumps(job).encode() + b"\n" + body)
        reply = json.loads(await self.reader.receive_until(b"\n", MAX_REPLY_HEADER))
        self.jobs += 1
        self.rss = int(reply.get("rss_bytes") or 0)
        if not reply.get("ok"):
            raise ExtractError(f"extraction failed: {reply.get('error') or 'unknown error'}")
        text = (await self.reader.receive_exactly(reply["size"])).decode("utf-8", errors="replace") if reply["size"] else ""
        return Extraction(reply.get("title"), text, bool(reply.get("truncated")))

    async def stop(self, grace_s: float = 0.0) -> int | None:
        """Kill (if needed) and reap; returns the exit code. `grace_s` lets a worker that is already
        exiting (its pipe closed) be reaped by asyncio's watcher first: kill() polls, and a poll that
        reaps the zombie leaves the watcher with no status (it reports 255 instead of the signal)."""
        if self.process.returncode is None and grace_s > 0:
            with anyio.move_on_after(grace_s):
                await self.process.wait()
        if self.process.returncode is None:
            self.process.kill()
        with anyio.move_on_after(5):
            await self.process.wait()
        await self.process.aclose()
        return self.process.returncode


class ExtractorPool:
    def __init__(self, *, workers: int, worker_memory_mb: int, max_elements: int,
                 command: Sequence[str] | None = None) -> None:
        """`command` replaces the worker program (tests use doubles to exercise kills)."""
        self.workers, self.max_elements = workers, max_elements
        self.command = list(command) if command else [
            sys.executable, "-m", "web_fetch.worker", "--memory-mb", str(worker_memory_mb), "--parent-pid", str(os.getpid())]
        self._idle: list[_Worker] = []
        self._live: dict[int, _Worker] = {}
        self._limiter: anyio.CapacityLimiter | None = None  # made in the event loop, on first use

    def pids(self) -> list[int]:
        """Worker processes alive now (tests and diagnostics)."""
        return sorted(pid for pid, w in self._live.items() if w.process.returncode is None)

    async def _spawn(self) -> _Worker:
        # Same process group as the server (supervisord stops the group), stderr to the server's log.
        process = await anyio.open_process(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None)
        worker = _Worker(process)
        self._live[worker.pid] = worker
        return worker

    async def _retire(self, worker: _Worker, why: str | None, *, replace: bool, grace_s: float = 0.0) -> None:
        """Stop a worker (shielded: runs even when the caller was cancelled) and, after a kill,
        start its replacement so the next call finds a warm one."""
        with anyio.CancelScope(shield=True):
            code = await worker.stop(grace_s)
            self._live.pop(worker.pid, None)
            if why:
                print(f"web-fetch: extraction worker {worker.pid} {why} ({_describe_exit(code)})",
                      file=sys.stderr, flush=True)
            if replace and len(self._live) < self.workers:
                try:
                    self._idle.append(await self._spawn())
                except OSError as exc:
                    print(f"web-fetch: could not start an extraction worker: {exc}", file=sys.stderr, flush=True)

    async def _take(self) -> _Worker:
        while self._idle:
            worker = self._idle.pop()
            if worker.process.returncode is None:
                return worker
            await self._retire(worker, "died while idle", replace=False)
        return await self._spawn()

    async def _release(self, worker: _Worker) -> None:
        if worker.worn_out():
            await self._retire(worker, None, replace=True)
        else:
            self._idle.append(worker)

    async def extract(self, body: bytes, *, charset: str | None, url: str, max_chars: int, deadline: float) -> Extraction:
        """Extract within `deadline` (anyio.current_time() clock); raises only ExtractError."""
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.workers)
        remaining = deadline - anyio.current_time()
        timeout = ExtractError(f"timeout: the page ({len(body)} bytes) could not be turned into text in time "
                               "(the fetch's WEB_FETCH_TIMEOUT_S covers download and extraction)")
        if remaining <= 0:
            raise timeout
        try:
            with anyio.fail_after(remaining):
                async with self._limiter:
                    worker = await self._take()
                    soft = max(0.0, (deadline - anyio.current_time()) * SOFT_SHARE)
                    try:
                        result = await worker.extract(body, charset=charset, url=url, max_elements=self.max_elements,
                                                      max_chars=max_chars, soft_budget_s=soft)
                    except ExtractError:
                        await self._release(worker)  # it answered (with an error): it still works
                        raise
                    except (anyio.EndOfStream, anyio.IncompleteRead, anyio.BrokenResourceError,
                            anyio.ClosedResourceError, anyio.DelimiterNotFound, OSError, ValueError, KeyError) as exc:
                        await self._retire(worker, f"failed on {url[:200]}", replace=True, grace_s=EXIT_GRACE_S)
                        raise ExtractError(f"extraction failed: the extraction process died or garbled its answer "
                                           f"({_describe_exit(worker.process.returncode)})") from exc
                    except BaseException:  # deadline, cancelled call: stop the work now
                        await self._retire(worker, None, replace=True)
                        raise
                    await self._release(worker)
                    return result
        except TimeoutError:
            raise timeout from None

    async def aclose(self) -> None:
        """Stop every worker and wait for it (in the event loop that started them)."""
        for worker in list(self._live.values()):
            await self._retire(worker, None, replace=False)
        self._idle.clear()

    def kill_all(self) -> None:
        """At server exit (synchronous): no worker outlives the server."""
        for worker in list(self._live.values()):
            if worker.process.returncode is None:
                try:
                    worker.process.kill()
                except ProcessLookupError:
                    pass
        self._live.clear()
        self._idle.clear()
