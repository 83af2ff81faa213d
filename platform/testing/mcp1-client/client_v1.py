"""An mcp 1.x client: list tools and make one call, print the outcome as JSON.

usage: client_v1.py stdio CMD [ARGS...] -- TOOL JSON_ARGS
       client_v1.py http URL -- TOOL JSON_ARGS
"""

import json
import sys

import anyio
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamablehttp_client


async def session_run(read, write, tool, args):
    async with ClientSession(read, write) as session:
        init = await session.initialize()
        tools = await session.list_tools()
        result = await session.call_tool(tool, args)
        return {
            "protocol": init.protocolVersion,
            "server": init.serverInfo.name,
            "tools": [t.name for t in tools.tools],
            "is_error": result.isError,
            "text": "\n".join(getattr(c, "text", "") for c in result.content),
            "structured": result.structuredContent,
        }


async def main(argv):
    split = argv.index("--")
    mode, target, (tool, raw) = argv[0], argv[1:split], argv[split + 1:]
    args = json.loads(raw)
    if mode == "stdio":
        params = StdioServerParameters(command=target[0], args=target[1:], env=dict(__import__("os").environ))
        async with stdio_client(params) as (read, write):
            out = await session_run(read, write, tool, args)
    else:
        async with streamablehttp_client(target[0]) as (read, write, _):
            out = await session_run(read, write, tool, args)
    print(json.dumps(out))


if __name__ == "__main__":
    anyio.run(main, sys.argv[1:])
