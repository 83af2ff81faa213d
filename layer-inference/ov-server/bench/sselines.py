"""SSE lines as the spec splits them (LF, CR LF or CR), for the benches' clients.

httpx's `aiter_lines` also splits on U+0085, U+2028 and U+2029 (it follows `str.splitlines()`);
a server that sends those raw inside a JSON string (legal JSON; llama-server does, ov-server
escapes them) would have its event cut in two, and a random-weight model emits them."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx

_EOL = re.compile(r"\r\n|\r|\n")


async def sse_lines(response: httpx.Response) -> AsyncIterator[str]:
    pending = ""
    async for text in response.aiter_text():
        pending += text
        *lines, pending = _EOL.split(pending)
        for line in lines:
            yield line
    if pending:
        yield pending
