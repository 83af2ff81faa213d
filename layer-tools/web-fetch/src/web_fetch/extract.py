"""Turn a fetched page into model-ready text with trafilatura (main content, no boilerplate)."""

from __future__ import annotations

from dataclasses import dataclass

import trafilatura

from web_fetch.fetcher import Page


@dataclass(frozen=True)
class Extracted:
    title: str | None
    text: str


def _decode(page: Page) -> str:
    try:
        return page.body.decode(page.charset or "utf-8", errors="replace")
    except LookupError:  # unknown charset name in the header
        return page.body.decode("utf-8", errors="replace")


def extract(page: Page) -> Extracted:
    if page.kind == "text":
        return Extracted(None, _decode(page).strip())
    html = _decode(page) if page.charset else page.body  # trafilatura detects bytes' encoding
    doc = trafilatura.bare_extraction(
        html, url=page.final_url, with_metadata=True, include_comments=False,
        include_tables=True, favor_recall=True,
    )
    title = getattr(doc, "title", None) if doc is not None else None
    text = getattr(doc, "text", None) if doc is not None else None
    if not text:
        # Short or unusual pages defeat main-content detection: fall back to all visible text.
        text = trafilatura.html2txt(html) or ""
    if title is None:
        meta = trafilatura.extract_metadata(html)
        title = meta.title if meta is not None else None
    return Extracted(title or None, text.strip())
