"""The MCP server: one `fetch` tool plus GET /health on the HTTP transport.

One deadline (WEB_FETCH_TIMEOUT_S) covers the whole call: download, then extraction in a worker
process that is killed when the deadline passes (`extractpool.py`)."""

from __future__ import annotations

import logging
from collections.abc import Callable

import anyio
import httpx
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse

from web_fetch import __doc__ as purpose
from web_fetch.charset import decode
from web_fetch.config import Settings
from web_fetch.extractpool import ExtractError, ExtractorPool
from web_fetch.fetcher import FetchError, fetch, make_client

log = logging.getLogger("web_fetch")


class FetchResult(BaseModel):
    title: str | None = Field(description="Page title, when the page has one")
    final_url: str = Field(description="URL after redirects")
    content_type: str
    text: str = Field(description="Main text of the page, boilerplate removed")
    truncated: bool = Field(description="True when text was cut to max_chars")


def make_pool(settings: Settings) -> ExtractorPool:
    return ExtractorPool(workers=settings.workers, worker_memory_mb=settings.worker_memory_mb,
                         max_elements=settings.max_elements)


def build_server(settings: Settings, client_factory: Callable[[], httpx.AsyncClient] | None = None,
                 pool: ExtractorPool | None = None) -> MCPServer:
    """`client_factory` lets tests inject a client (fake DNS, loopback-only sentinel); `pool` is
    the extraction workers (the CLI owns it so it can kill them at exit)."""
    server = MCPServer("web-fetch", instructions=purpose, version="0.1.0")
    factory = client_factory or (lambda: make_client(settings))
    extractors = pool or make_pool(settings)

    async def run(url: str, limit: int) -> FetchResult:
        deadline = anyio.current_time() + settings.timeout_s
        async with factory() as client:
            try:
                page = await fetch(url, settings, client=client)
            except FetchError as exc:
                raise ToolError(str(exc)) from None
        if page.kind == "text":
            text = decode(page.body, page.charset).strip()
            return FetchResult(title=None, final_url=page.final_url, content_type=page.content_type,
                               text=text[:limit], truncated=len(text) > limit)
        try:
            out = await extractors.extract(page.body, charset=page.charset, url=page.final_url, max_chars=limit,
                                           deadline=deadline)
        except ExtractError as exc:
            raise ToolError(str(exc)) from None
        return FetchResult(title=out.title, final_url=page.final_url, content_type=page.content_type,
                           text=out.text.strip(), truncated=out.truncated)

    @server.tool()
    async def fetch_page(url: str, max_chars: int | None = None) -> FetchResult:
        """Fetch a URL (http/https) and return its main text, title and final URL.

        Refuses loopback, private, link-local, multicast and cloud-metadata addresses
        (after DNS and on every redirect), bodies over the size limit, slow answers and
        non-text content types; each refusal comes back as a tool error saying why.
        """
        limit = settings.max_chars if max_chars is None else max_chars
        if limit <= 0:
            raise ToolError(f"max_chars must be a positive integer, got {max_chars}")
        try:
            return await run(url, limit)
        except ToolError:
            raise
        except Exception as exc:  # noqa: BLE001 - a bug must still be a tool error with a message
            log.exception("unexpected error fetching %.200s", url)
            raise ToolError(f"internal error in web-fetch ({type(exc).__name__}); the details are in its log") from None

    # The contract names the tool `fetch`; the Python function is named fetch_page to avoid
    # shadowing the fetcher, so register it under the contract name.
    server.remove_tool("fetch_page")
    server.add_tool(fetch_page, name="fetch")

    @server.custom_route("/health", methods=["GET"])
    async def health(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "service": "web-fetch"})

    return server
