"""Plan `homelab new backend NAME --external URL`: the contract folder of a backend the mesh
routes to but does not run (SERVICE_SPEC.md, ARCHITECTURE.md, AGENTS.md; no server code, no uv
project), its ledger line (and approval for a LAN address), the gateway's wiring, and every
re-rendered file. Bad input is an InputError naming the option; nothing is written."""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from homelab.errors import InputError
from homelab.load.repo import APPROVALS_FILE, PORTS_FILE, SPEC_FILE, Repo, parse_service
from homelab.render.plan import render_all
from homelab.scaffold import dependents, edits, staging, templates
from homelab.scaffold.new import ARG, NewService, _approval, _bad, _check_names, _fallbacks, \
    _validate, env_prefix

API_PATH_RE = re.compile(r"^(/[A-Za-z0-9._~-]+)*$")


@dataclass(frozen=True)
class Target:
    """Where the external server is, read from --external URL."""

    address: str
    port: int
    api_path: str
    host: str  # the mesh.yaml host owning `address`


def parse_url(repo: Repo, url: str, host_option: str | None) -> Target:
    """http://ADDRESS:PORT[/API_PATH] on a host declared in mesh/mesh.yaml."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise _bad(f"{url!r} is not a URL ({exc})", "--external") from None
    if parts.scheme != "http" or not parts.hostname:
        raise _bad(f"{url!r}: expected http://ADDRESS:PORT[/v1] (the gateway and the health "
                   "probe speak plain HTTP inside the mesh)", "--external")
    if port is None:
        raise _bad(f"{url!r} names no port; give it explicitly (every port goes into "
                   "mesh/ports.yaml)", "--external")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise _bad(f"{url!r}: no user, query or fragment; keys go in the gateway's env "
                   "(--gateway-auth)", "--external")
    address = "127.0.0.1" if parts.hostname == "localhost" else parts.hostname
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        raise _bad(f"{parts.hostname!r} is not an IP address; use the address of a host in "
                   "mesh/mesh.yaml", "--external") from None
    api_path = parts.path.rstrip("/") or "/v1"
    if not API_PATH_RE.fullmatch(api_path):
        raise _bad(f"API path {parts.path!r}: letters, digits and . _ ~ - between slashes",
                   "--external")
    hosts = repo.mesh.hosts
    if ip.is_loopback:
        # Loopback is on the host playing it: --host, else the host whose address is loopback.
        if host_option:
            if repo.host_address(host_option) is None:
                raise _bad(f"unknown host {host_option!r}; known: "
                           f"{', '.join(h.name for h in hosts)}", "--host")
            host = host_option
        else:
            local = [h.name for h in hosts if ipaddress.ip_address(h.address).is_loopback]
            if not local:
                raise _bad(f"{address} is loopback, but no host in mesh/mesh.yaml has a loopback "
                           "address; pass --host NAME", "--external")
            host = local[0]
    else:
        owners = [h.name for h in hosts if ipaddress.ip_address(h.address) == ip]
        if not owners:
            raise _bad(f"{address} is not the address of a host in mesh/mesh.yaml (hosts: "
                       f"{', '.join(f'{h.name} {h.address}' for h in hosts)}); declare the host "
                       "there first", "--external")
        if host_option and host_option != owners[0]:
            raise _bad(f"{address} is host {owners[0]!r}, not {host_option!r}", "--host")
        host = owners[0]
    return Target(str(ip), port, api_path, host)


def plan_external(repo: Repo, req: NewService, url: str, *, health_path: str = "/health",
                  health_body: str = "", managed_by: str = "") -> dict[str, str]:
    """All files to write for an external backend, or InputError naming the bad option."""
    if req.kind != "backend":
        raise _bad(f"only a backend can be external, not {req.kind}", "--external")
    for option, given in (("--port", req.port), ("--bind", req.bind != "127.0.0.1")):
        if given:
            raise _bad("comes from --external URL for an external backend", option)
    target = parse_url(repo, url, req.host)
    if not re.fullmatch(r"^/[A-Za-z0-9._~/-]*$", health_path):
        raise _bad(f"{health_path!r}: a path starting with /", "--health-path")
    # Defaults name no port or URL: `homelab port move` changes those, and must not leave
    # these words stale.
    managed = managed_by.strip() or f"its own server on host {target.host}, outside the mesh"
    description = req.description.strip() or \
        f"OpenAI-compatible server on host {target.host}, run outside the mesh."
    req = dataclasses.replace(req, description=description, bind=target.address,
                              host=target.host, port=target.port)
    layer = _validate(repo, req)
    rel_dir = f"layer-{layer}/{req.name}"
    if any(p.host == target.host and p.port == target.port for p in repo.ports.ports):
        owner = next(p for p in repo.ports.ports if p.host == target.host and p.port == target.port)
        raise _bad(f"{target.host}:{target.port} is already in mesh/ports.yaml ({owner.service}, "
                   f"{owner.status}); ports are never reused", "--external")
    try:
        approval_id, approvals_text = _approval(repo, req, target.host)
    except InputError as exc:  # its `--bind` is this command's --external address
        raise InputError([dataclasses.replace(p, message=p.message.replace("--bind:", "--external:", 1))
                          for p in exc.problems]) from None
    _fallbacks(repo, req)

    contract = _contract(req, layer, target, approval_id, health_path, health_body, managed)
    spec_text = templates.front_matter(contract) + _prose(req.name, contract)
    try:
        new_svc = parse_service(spec_text, f"{rel_dir}/{SPEC_FILE}")
    except InputError as exc:
        raise InputError([dataclasses.replace(p, path=ARG) for p in exc.problems]) from None
    _check_names(repo, new_svc.spec)

    files: dict[str, str] = {}
    if approvals_text is not None:
        files[APPROVALS_FILE] = approvals_text
    files[PORTS_FILE] = edits.ledger_append((repo.root / PORTS_FILE).read_text(encoding="utf-8"),
                                            target.host, target.port, req.name, req.today)
    files.update(dependents.on_add(repo, new_svc, contract))
    after = staging.staged(repo, files, add=new_svc)
    files[f"{rel_dir}/{SPEC_FILE}"] = spec_text
    files[f"{rel_dir}/ARCHITECTURE.md"] = ARCHITECTURE.format(name=req.name, managed=managed)
    files[f"{rel_dir}/AGENTS.md"] = AGENTS.format(name=req.name, host=target.host,
                                                  port=target.port)
    files.update(render_all(after))
    return files


def _contract(req: NewService, layer: str, target: Target, approval: str | None,
              health_path: str, health_body: str, managed: str) -> dict[str, Any]:
    api = target.api_path
    lan = not ipaddress.ip_address(target.address).is_loopback
    c: dict[str, Any] = {"name": req.name, "kind": "backend", "layer": layer,
                         "description": req.description, "host": target.host,
                         "bind": target.address, "port": target.port,
                         "exposure": "lan" if lan else "localhost"}
    if approval:
        c["approval"] = approval
    endpoints = [{"method": "POST", "path": f"{api}/chat/completions"},
                 {"method": "GET", "path": f"{api}/models"}]
    if ("GET", health_path) not in {(e["method"], e["path"]) for e in endpoints}:
        endpoints.append({"method": "GET", "path": health_path})
    c["endpoints"] = endpoints
    c["health"] = {"path": health_path, "expect_status": 200,
                   **({"expect_body": health_body} if health_body else {})}
    c["external"] = {"managed_by": managed, "api_path": api}
    if req.gateway_auth:
        c["gateway_auth_env"] = f"{env_prefix(req.name)}_API_KEY"
    pairs = req.models or [(f"jerry-{req.name}", req.name)]
    c["models"] = [{"name": m, "upstream_id": u,
                    **({"fallbacks": [f for f in req.fallbacks if f != m]}
                       if [f for f in req.fallbacks if f != m] else {})} for m, u in pairs]
    return c


def _prose(name: str, c: dict[str, Any]) -> str:
    models = ", ".join(f"`{m['name']}` (upstream id `{m['upstream_id']}`)" for m in c["models"])
    auth = (f"The gateway sends the key in its env var `{c['gateway_auth_env']}`: put the key this "
            "server expects there (the gateway's env file); `homelab up` generates a random one "
            "when none is set, which the server will refuse."
            if c.get("gateway_auth_env") else "The gateway sends no key (the server checks none).")
    body = f" with `{c['health']['expect_body']}` in the body" if c["health"].get("expect_body") \
        else ""
    return EXTERNAL_PROSE.format(
        name=name, description=c["description"], host=c["host"],
        managed=c["external"]["managed_by"], models=models, auth=auth,
        health=f"`GET {c['health']['path']}` answers {c['health']['expect_status']}{body}.")


EXTERNAL_PROSE = """
# {name}

{description}

Kind: **backend (external)**, host `{host}`, reached at the contract's `bind`:`port` (the port
is in `mesh/ports.yaml`) under `external.api_path`. The mesh does **not** run it (run by:
{managed}). Created by `homelab new backend --external`; the front matter above is the contract
every tool reads: edit it, then run `uv run homelab render` and `uv run homelab check`.

## What the mesh does with it
- The gateway routes {models} to it (`router.yaml` is rendered from `models`).
- `homelab up` never starts it: before the gateway starts it waits for its health (at most
  `external.wait_s` seconds) and warns when it is absent; the gateway comes up anyway and serves
  every other model.
- `homelab status` lists it as EXTERNAL, `homelab health [--models]`, `healthcheck.sh` and
  mesh-status probe it like every service. Clients never call it (it is in the view's
  `never_call`): they use the gateway.

## Health
{health}

## Auth
{auth}
"""

ARCHITECTURE = """# {name}: architecture

## Role in the mesh
An OpenAI-compatible backend run outside the mesh ({managed}). The mesh holds only its contract:
where it is (host, address, port in the ledger), which public names it serves, how healthy
looks and how the gateway authenticates to it.

## Modules
None: no code of it lives here.

## Request flow
client -> gateway (LiteLLM, `router.yaml`) -> this server's OpenAI API; when it is down the
gateway tries the names in `fallbacks`, and `homelab health --models` reports its names down.
"""

AGENTS = """# AGENTS.md: working on {name}

- This folder is a contract only: the server runs outside the mesh. Do not add code here; change
  where it is or what it serves in `SERVICE_SPEC.md`, then `uv run homelab render && uv run
  homelab check` from the repo root.
- Port {host}:{port} is in `mesh/ports.yaml` like every port (`homelab port move` when the server
  moves). A LAN address needs a reviewed approval in `mesh/approvals.yaml`.
- Down? `uv run homelab health --models` says which names are affected; start the server where it
  runs (the mesh never will).
"""
