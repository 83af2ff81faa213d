"""What the mesh serves at the gateway: everything else is a clear 404, not LiteLLM's guess.

LiteLLM mounts several hundred routes (embeddings, Responses, legacy completions, admin, UI...).
The mesh's backends serve chat completions only, so LiteLLM would forward an embeddings call to
ov-server and report its 404 as "model group failed ... Not Found". The gateway says instead that
the endpoint is not part of this mesh.
"""

from __future__ import annotations

from dataclasses import dataclass

# Exact paths -> methods. Both spellings: OpenAI clients use /v1, some tools the bare path.
SERVED: dict[str, frozenset[str]] = {
    "/v1/chat/completions": frozenset({"POST"}),
    "/chat/completions": frozenset({"POST"}),
    "/v1/models": frozenset({"GET"}),
    "/models": frozenset({"GET"}),
    "/health": frozenset({"GET"}),  # keyed deep check (scripts/health-check.sh --deep)
    "/health/liveliness": frozenset({"GET"}),
    "/health/liveness": frozenset({"GET"}),
    "/health/readiness": frozenset({"GET"}),
    "/metrics": frozenset({"GET"}),  # answered by the middleware itself (metrics.py), behind the key
    "/metrics/": frozenset({"GET"}),
}
# GET /v1/models/{id}: the official clients' models.retrieve().
SERVED_PREFIXES: dict[str, frozenset[str]] = {"/v1/models/": frozenset({"GET"}), "/models/": frozenset({"GET"})}

CHAT_PATHS = frozenset({"/v1/chat/completions", "/chat/completions"})


@dataclass(frozen=True)
class Route:
    served: bool  # the path exists in the mesh
    allowed: frozenset[str]  # methods it answers

    def accepts(self, method: str) -> bool:
        return method in self.allowed or (method == "HEAD" and "GET" in self.allowed)


def lookup(path: str) -> Route:
    methods = SERVED.get(path)
    if methods is None:
        methods = next((m for prefix, m in SERVED_PREFIXES.items() if path.startswith(prefix) and len(path) > len(prefix)),
                       None)
    return Route(methods is not None, methods or frozenset())


def not_served_message(method: str, path: str) -> str:
    shown = path if len(path) <= 80 else path[:77] + "..."
    return (f"{method} {shown} is not served by this mesh: the gateway answers chat completions "
            "(POST /v1/chat/completions) and the model list (GET /v1/models) only.")


def wrong_method_message(method: str, path: str, allowed: frozenset[str]) -> str:
    return f"{path} does not answer {method}; use {' or '.join(sorted(allowed))}."
