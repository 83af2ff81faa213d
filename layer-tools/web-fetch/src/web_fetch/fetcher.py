"""Fetch one URL under the limits: scheme, addresses (via GuardedBackend), redirects, size,
time and content type. Every refusal is a FetchError with a message meant for the model."""

from __future__ import annotations

import ipaddress
import math
import re
from dataclasses import dataclass

import anyio
import httpx
import idna

from web_fetch.config import Settings
from web_fetch.guard import Refused
from web_fetch.netguard import GuardedBackend, Resolver, system_resolve

# What the extractor can turn into text; anything else (images, PDFs, archives) is refused.
TEXT_TYPES = {
    "text/html": "html",
    "application/xhtml+xml": "html",
    "text/plain": "text",
    "text/markdown": "text",
    "text/csv": "text",
    "application/json": "text",
    "application/xml": "html",
    "text/xml": "html",
}
REDIRECTS = {301, 302, 303, 307, 308}
USER_AGENT = "homelab-llm web-fetch/0.1 (+MCP tool; one page per request)"


class FetchError(Exception):
    """A refused or failed fetch; str() is the tool error shown to the model."""


@dataclass(frozen=True)
class Page:
    final_url: str
    status: int
    content_type: str
    kind: str  # "html" | "text"
    body: bytes
    charset: str | None


# A host name as resolvers accept it (after IDNA encoding): dot-separated labels of letters,
# digits, '-' and '_' (seen in real names), each 1-63 characters, 253 in all.
HOST_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?", re.IGNORECASE)
MAX_URL_CHARS = 8192


def shown(url: object, limit: int = 200) -> str:
    """A URL (or any input) as echoed in messages: bounded, so a hostile input is not echoed whole."""
    text = str(url)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


def _check_host(raw_host: bytes) -> None:
    host = raw_host.decode("ascii", errors="replace")
    try:
        ipaddress.ip_address(host)
        return
    except ValueError:
        pass
    name = host[:-1] if host.endswith(".") else host
    if not name or len(name) > 253 or not all(HOST_LABEL.fullmatch(label) for label in name.split(".")):
        raise FetchError(f"invalid url: {shown(host, 100)!r} is not a valid host name")
    for label in name.split("."):
        if label.lower().startswith("xn--"):
            try:
                idna.decode(label)
            except (idna.IDNAError, UnicodeError, IndexError) as exc:
                raise FetchError(f"invalid url: host label {shown(label, 70)!r} is not valid IDNA ({exc})") from None


def _check_url(url: str) -> httpx.URL:
    """Parse and check a URL before anything is resolved or sent; every mistake is a FetchError."""
    if not isinstance(url, str):
        raise FetchError(f"invalid url: expected a string, got {type(url).__name__}")
    if len(url) > MAX_URL_CHARS:
        raise FetchError(f"invalid url: longer than {MAX_URL_CHARS} characters")
    try:
        parsed = httpx.URL(url)
        raw_host, port, scheme = parsed.raw_host, parsed.port, parsed.scheme
    except (httpx.InvalidURL, TypeError, ValueError) as exc:  # IDNA errors are ValueErrors too
        raise FetchError(f"invalid url {shown(url)!r}: {shown(exc)}") from None
    if scheme not in ("http", "https"):
        raise FetchError(f"unsupported url scheme {shown(scheme or '(none)', 40)!r}: only http and https")
    if not raw_host:
        raise FetchError("invalid url: no host")
    if parsed.userinfo:
        raise FetchError("invalid url: credentials in the url are not allowed")
    if port is not None and not 1 <= port <= 65535:
        raise FetchError(f"invalid url: port {shown(port, 20)} is out of range (1-65535)")
    _check_host(raw_host)
    return parsed


def make_client(settings: Settings, *, resolver: Resolver = system_resolve,
                inner=None) -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport(trust_env=False)
    # httpx 0.28 has no public hook for the network backend: swap the pool for one that uses
    # the guarded backend (httpx is pinned exactly; tests cover this path).
    import httpcore

    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(),
        max_connections=10,
        network_backend=GuardedBackend(settings.allow, resolver=resolver, inner=inner),
    )
    return httpx.AsyncClient(
        transport=transport,
        trust_env=False,  # never route through an environment proxy the guard cannot see
        follow_redirects=False,  # redirects are followed below, one checked hop at a time
        timeout=httpx.Timeout(settings.timeout_s),
        headers={"User-Agent": USER_AGENT, "Accept": "text/html,text/plain;q=0.9,*/*;q=0.1"},
    )


async def _read_limited(response: httpx.Response, max_bytes: int) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise FetchError(f"body over size limit: {declared} bytes declared, limit {max_bytes}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise FetchError(f"body over size limit: more than {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _fetch(client: httpx.AsyncClient, url: str, settings: Settings) -> Page:
    current = _check_url(url)
    for _hop in range(settings.max_redirects + 1):
        async with client.stream("GET", current) as response:
            if response.status_code in REDIRECTS and "location" in response.headers:
                current = _check_url(str(current.join(response.headers["location"])))
                continue
            if response.status_code >= 400:
                raise FetchError(f"HTTP error status {response.status_code} from {shown(current)}")
            mime = response.headers.get("content-type", "").split(";")[0].strip().lower()
            kind = TEXT_TYPES.get(mime)
            if kind is None:
                raise FetchError(f"unsupported content type {shown(mime or '(none)', 100)!r} from {shown(current)}")
            body = await _read_limited(response, settings.max_bytes)
            return Page(str(current), response.status_code, mime, kind, body, response.charset_encoding)
    raise FetchError(f"too many redirects: more than {settings.max_redirects}")


async def fetch(url: str, settings: Settings, *, client: httpx.AsyncClient | None = None) -> Page:
    """Fetch url; raises FetchError (never anything else) for every refusal or failure."""
    own = client is None
    client = client or make_client(settings)
    try:
        # One deadline for the whole fetch, redirects and slow bodies included.
        with anyio.fail_after(settings.timeout_s if math.isfinite(settings.timeout_s) else None):
            return await _fetch(client, url, settings)
    except FetchError:
        raise
    except Refused as exc:
        raise FetchError(str(exc)) from None
    except (TimeoutError, httpx.TimeoutException):
        raise FetchError(f"timeout: no complete answer within {settings.timeout_s:g} s") from None
    except httpx.HTTPError as exc:
        raise FetchError(f"request failed: {type(exc).__name__}: {shown(exc)}") from None
    finally:
        if own:
            await client.aclose()
