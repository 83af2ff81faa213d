"""The MCP server: one `fetch` tool plus GET /health on the HTTP transport."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import httpx
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse

from web_fetch import __doc__ as purpose
from web_fetch.config import Settings
from web_fetch.extract import extract
from web_fetch.fetcher import FetchError, fetch, make_client


class FetchResult(BaseModel):
    title: str | None = Field(description="Page title, when the page has one")
    final_url: str = Field(description="URL after redirects")
    content_type: str
    text: str = Field(description="Main text of the page, boilerplate removed")
    truncated: bool = Field(description="True when text was cut to max_chars")


def build_server(settings: Settings,
                 client_factory: Callable[[], httpx.AsyncClient] | None = None) -> MCPServer:
    """`client_factory` lets tests inject a client (fake DNS, loopback-only sentinel)."""
    server = MCPServer("web-fetch", instructions=purpose, version="0.1.0")
    factory = client_factory or (lambda: make_client(settings))

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
        async with factory() as client:
            try:
                page = await fetch(url, settings, client=client)
            except FetchError as exc:
                raise ToolError(str(exc)) from None
        # trafilatura is CPU-bound: keep the event loop (other sessions, /health) responsive.
        result = await anyio.to_thread.run_sync(extract, page)
        text = result.text
        return FetchResult(
            title=result.title, final_url=page.final_url, content_type=page.content_type,
            text=text[:limit], truncated=len(text) > limit,
        )

    # The contract names the tool `fetch`; the Python function is named fetch_page to avoid
    # shadowing the fetcher, so register it under the contract name.
    server.remove_tool("fetch_page")
    server.add_tool(fetch_page, name="fetch")

    @server.custom_route("/health", methods=["GET"])
    async def health(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "service": "web-fetch"})

    return server
