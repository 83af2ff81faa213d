"""The one rule of a client in this mesh: call the gateway, nothing else.

The gateway URL comes from the mesh view (meshkit.view, rendered from the contracts);
`--gateway-url` / TINYAGENTS_GATEWAY_URL may point it elsewhere (tests, a gateway on another host),
but never at an address in the view's `never_call` list: the list `homelab check` (HL401) refuses,
compared by the same function (meshkit.addresses). The agent's base URL must equal the gateway's
once normalised."""

from __future__ import annotations

from urllib.parse import urlsplit

from meshkit.view import View

from tiny_agents.errors import AgentError


DEFAULT_GATEWAY = "http://127.0.0.1:4000/v1"


def normalise(url: str) -> str:
    """scheme://host:port/path with lower-case scheme/host, explicit port, no trailing slash;
    `localhost` is 127.0.0.1 so both spellings of the local gateway compare equal."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise AgentError(f"invalid URL {url!r}: {exc}", param="api_base") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AgentError(f"invalid URL {url!r}: need http(s)://host[:port]/path", param="api_base")
    host = parts.hostname.lower()
    host = "127.0.0.1" if host == "localhost" else host
    port = port or (443 if parts.scheme == "https" else 80)
    shown = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{shown}:{port}{parts.path.rstrip('/')}"


def _forbidden_owner(url: str, view: View) -> str | None:
    """"backend ov-server" when `url` reaches a service clients must not call, else None."""
    normalise(url)  # a clear error for a malformed URL
    hit = view.never_call_owner(url)
    return hit.owner if hit else None


def gateway_url(view: View, override: str | None) -> str:
    url = override or view.gateway_url or DEFAULT_GATEWAY
    owner = _forbidden_owner(url, view)
    if owner:
        raise AgentError(f"gateway URL {url} is the {owner}, not the gateway; clients call the gateway only",
                         param="gateway_url", code="not_the_gateway")
    return normalise(url)


def check_api_base(api_base: str, gateway: str, view: View) -> str:
    """Return api_base if it is the gateway; otherwise raise a message that says what it is."""
    owner = _forbidden_owner(api_base, view)
    if owner:
        raise AgentError(
            f"refusing base URL {api_base}: that is the {owner}; clients call the gateway only ({gateway})",
            param="api_base", code="not_the_gateway")
    if normalise(api_base) != normalise(gateway):
        raise AgentError(
            f"refusing base URL {api_base}: it is not the gateway ({gateway}); set TINYAGENTS_API_BASE to the "
            "gateway (or leave it unset)", param="api_base", code="not_the_gateway")
    return api_base.rstrip("/")
