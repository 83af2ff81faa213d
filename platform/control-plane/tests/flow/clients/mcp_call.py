"""The MCP SDK client: list the tools of a server and call the first one, over streamable HTTP
(an http:// URL) or stdio (a command line). Run in the tool's own environment. Prints JSON."""

from __future__ import annotations

import asyncio
import json
import sys

from mcp import Client, StdioServerParameters


async def main(target: list[str]) -> None:
    server = target[0] if target[0].startswith("http") else \
        StdioServerParameters(command=target[0], args=target[1:])
    async with Client(server) as client:
        tools = sorted(t.name for t in (await client.list_tools()).tools)
        result = await client.call_tool(tools[0], {"text": "ab", "times": 2})
        print(json.dumps({"tools": tools, "result": result.structured_content,
                          "error": result.is_error}))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
