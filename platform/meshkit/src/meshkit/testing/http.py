"""The small HTTP wait test helpers need (standard library only: every suite can import it)."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# Test servers run on loopback: never send their health checks through an outer proxy.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def status(url: str, timeout: float = 2.0) -> int | None:
    """The HTTP status `url` answers a GET with, or None when nothing answers."""
    try:
        with _OPENER.open(url, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (OSError, ValueError):  # refused, reset, timed out, not HTTP at all
        return None


def wait_until(predicate: Callable[[], T], what: str, timeout: float = 60.0,
               interval: float = 0.2) -> T:
    """Poll `predicate` until it returns something true, and return that. The timeout only stops
    a hung test (it is not a timing assertion): TimeoutError names `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)
