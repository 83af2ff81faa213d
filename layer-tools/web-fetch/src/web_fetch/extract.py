"""Turn fetched HTML into model-ready text with trafilatura (main content, no boilerplate).

Runs inside an extraction worker process (`worker.py`), never in the server: trafilatura's time
and memory grow with the number of HTML elements, and a tag-dense page of 2 MB can take minutes.
Two limits keep a hostile page cheap before the worker's hard deadline has to kill it:
- a page with more than `max_elements` elements skips main-content detection and gets all
  visible text (`html2txt`, linear in the page size);
- main-content detection gets `soft_budget_s`; when it runs out, the same fallback answers.
Imports stay light (no httpx/mcp): a fresh worker must be ready quickly."""

from __future__ import annotations

import math
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import trafilatura
from trafilatura.utils import load_html

from web_fetch.charset import decode


@dataclass(frozen=True)
class Extracted:
    title: str | None
    text: str


class SoftBudgetExceeded(Exception):
    """Main-content detection ran out of its share of the deadline."""


@contextmanager
def soft_budget(seconds: float) -> Iterator[None]:
    """Raise SoftBudgetExceeded in this (main) thread after `seconds` (SIGALRM; the worker is
    single-threaded). The signal lands between Python bytecodes: trafilatura is a Python loop
    over lxml calls, so it stops within one lxml call. An alarm already set (e.g. a test
    runner's timeout) is put back afterwards, minus the time spent here."""
    if seconds <= 0:
        raise SoftBudgetExceeded
    if not math.isfinite(seconds):
        yield
        return

    def expire(_signum, _frame):
        raise SoftBudgetExceeded

    start = time.monotonic()
    previous_handler = signal.signal(signal.SIGALRM, expire)
    previous_delay, previous_interval = signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous_handler)
        if previous_delay > 0:
            left = previous_delay - (time.monotonic() - start)
            signal.setitimer(signal.ITIMER_REAL, max(left, 0.001), previous_interval)


def count_elements(tree, limit: int) -> int:
    """Elements in the tree, counting stops just past `limit`."""
    n = 0
    for _ in tree.iter():
        n += 1
        if n > limit:
            break
    return n


def _plain_title(tree) -> str | None:
    for path in (".//title", ".//h1"):
        node = tree.find(path)
        if node is not None:
            text = " ".join("".join(node.itertext()).split())
            if text:
                return text
    return None


def extract_html(body: bytes, charset: str | None, url: str, *, max_elements: int,
                 soft_budget_s: float = float("inf")) -> Extracted:
    html = decode(body, charset) if charset else body  # trafilatura detects bytes' encoding
    tree = load_html(html)
    if tree is None:
        return Extracted(None, "")
    title = _plain_title(tree)
    if count_elements(tree, max_elements) <= max_elements:
        try:
            with soft_budget(soft_budget_s):
                doc = trafilatura.bare_extraction(
                    tree, url=url, with_metadata=True, include_comments=False,
                    include_tables=True, favor_recall=True,
                )  # works on a copy of the tree
            if doc is not None and getattr(doc, "text", None):
                return Extracted(getattr(doc, "title", None) or title, doc.text.strip())
        except SoftBudgetExceeded:
            pass
    # Tag-dense, slow or short/unusual pages: all visible text instead of the main content.
    return Extracted(title, (trafilatura.html2txt(tree) or "").strip())
