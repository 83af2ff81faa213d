"""Plan a new service: its folder (a working server, its test, its docs, its locked uv project),
its ledger line (and approval), the contracts that depend on it, and every re-rendered file."""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from homelab.contract.service import NAME_RE, ServiceSpec
from homelab.errors import InputError
from homelab.load.repo import APPROVALS_FILE, PORTS_FILE, SPEC_FILE, Repo, Service, parse_service
from homelab.render.plan import render_all
from homelab.routing import routes
from homelab.runtime.secrets import master_key_name
from homelab.scaffold import dependents, edits, lock, staging, templates
from homelab.scaffold.allocation import next_free_port

KINDS = ("backend", "client", "mcp-tool", "optimizer")
DEFAULT_LAYER = {"backend": "inference", "client": "orchestration", "mcp-tool": "tools",
                 "optimizer": "gateway"}
ARG = "homelab new"
TOOL_RE = r"^[a-z][a-z0-9_]*$"
TEST = {"command": ["uv", "run", "pytest", "-q"]}
# Pins when the mesh has no MCP tool to copy them from (the versions web-fetch and mesh-status use).
MCP_PINS = {"mcp": "2.3.0", "starlette": "1.10.0", "uvicorn": "0.54.0"}
DEV_PINS = {"pytest": "9.2.0", "anyio": "4.16.0"}


@dataclass(frozen=True)
class NewService:
    kind: str
    name: str
    description: str = ""
    host: str | None = None
    layer: str | None = None
    bind: str = "127.0.0.1"
    port: int | None = None
    approval: str | None = None  # an existing LAN-NNNN record
    approved_by: str | None = None  # or record a new approval now (who asks) ...
    reviewer: str | None = None  # ... who reviewed it ...
    reason: str | None = None  # ... and why
    models: list[tuple[str, str]] = field(default_factory=list)  # backend: (public, upstream id)
    fallbacks: list[str] = field(default_factory=list)  # backend: public names tried when it fails
    gateway_auth: bool = False  # backend/optimizer: the gateway sends a key (a new secret)
    approaches: list[str] = field(default_factory=list)  # optimizer
    transport: str = "streamable-http"  # mcp-tool
    tools: list[str] = field(default_factory=list)  # mcp-tool
    today: dt.date = field(default_factory=dt.date.today)
    lock: bool = True  # False: an unlocked uv.lock (synthetic meshes in the control plane's tests)


def _bad(message: str, param: str) -> InputError:
    return InputError.one(ARG, f"{param}: {message}")


def env_prefix(name: str) -> str:
    return re.sub(r"[^A-Z0-9]", "_", name.upper())


def master_env(repo: Repo, prefix: str) -> str:
    """The env var an optimizer calls the gateway back with: the gateway's own key name, so
    `homelab up` gives it the gateway's key (secrets are shared by name)."""
    return master_key_name(repo) or f"{prefix}_GATEWAY_KEY"


def _host(repo: Repo, req: NewService) -> str:
    gateway = repo.services.get(repo.mesh.gateway.service)
    host = req.host or (repo.mesh.hosts[0].name if len(repo.mesh.hosts) == 1
                        else gateway.spec.host if gateway else repo.mesh.hosts[0].name)
    if repo.host_address(host) is None:
        raise _bad(f"unknown host {host!r}; known: {', '.join(h.name for h in repo.mesh.hosts)}",
                   "--host")
    return host


def _validate(repo: Repo, req: NewService) -> str:
    if req.kind not in KINDS:
        raise _bad(f"kind must be one of {', '.join(KINDS)}", "KIND")
    if not re.fullmatch(NAME_RE, req.name):
        raise _bad("lowercase letters, digits and single dashes, starting with a letter", "NAME")
    if req.name in repo.services:
        raise _bad(f"a service named {req.name} exists ({repo.services[req.name].rel_dir})", "NAME")
    if not req.description.strip():
        raise _bad(f"say in one line what {req.name} does (-d TEXT); the docs, the topology and "
                   "agents show it", "--description")
    if "TODO" in req.description:
        raise _bad("a description is what the service does, not a TODO", "--description")
    for tool in req.tools:
        if not re.fullmatch(TOOL_RE, tool):
            raise _bad(f"tool name {tool!r}: lowercase letters, digits and underscores, starting "
                       "with a letter", "--tool")
    wrong = [(opt, kinds) for opt, kinds, given in (
        ("--model", ("backend",), req.models), ("--fallback", ("backend",), req.fallbacks),
        ("--gateway-auth", ("backend", "optimizer"), req.gateway_auth),
        ("--approach", ("optimizer",), req.approaches), ("--tool", ("mcp-tool",), req.tools))
        if given and req.kind not in kinds]
    if wrong:
        opt, kinds = wrong[0]
        raise _bad(f"only for {' and '.join(kinds)} services, not {req.kind}", opt)
    layer = req.layer or DEFAULT_LAYER[req.kind]
    if not re.fullmatch(NAME_RE, layer):
        raise _bad("lowercase letters, digits and single dashes", "--layer")
    if (repo.root / f"layer-{layer}/{req.name}").exists():
        raise _bad(f"layer-{layer}/{req.name} already exists", "NAME")
    return layer


def _approval(repo: Repo, req: NewService, host: str) -> tuple[str | None, str | None]:
    """(approval id or None, new approvals.yaml text or None)."""
    try:
        lan = not ipaddress.ip_address(req.bind).is_loopback
    except ValueError:
        raise _bad(f"{req.bind!r} is not an IP address", "--bind") from None
    if not lan:
        return None, None
    if req.kind == "optimizer":
        raise _bad("an optimizer binds loopback only; no approval can make it LAN-exposed", "--bind")
    if req.kind == "mcp-tool" and req.transport == "stdio":
        raise _bad("a stdio-only MCP tool has no socket to bind", "--bind")
    if req.approval:
        rec = next((a for a in repo.approvals.approvals if a.id == req.approval), None)
        if rec is None or rec.service != req.name or rec.host != host:
            raise _bad(f"{req.approval} is not an approval for {req.name} on {host} in "
                       f"{APPROVALS_FILE}", "--approval")
        return rec.id, None
    if req.approved_by and req.reviewer and req.reason:
        if req.reviewer.strip().lower() == req.approved_by.strip().lower():
            raise _bad("the reviewer must be someone other than the requester (--approved-by)",
                       "--reviewer")
        nums = [int(a.id.split("-")[1]) for a in repo.approvals.approvals]
        approval_id = f"LAN-{max(nums, default=0) + 1:04d}"
        text = (repo.root / APPROVALS_FILE).read_text(encoding="utf-8")
        return approval_id, _append_approval(text, approval_id, req, host)
    raise _bad(f"binding {req.bind} exposes {req.name} on the LAN: give --approval LAN-NNNN or "
               "record one with --approved-by WHO --reviewer NAME --reason TEXT", "--bind")


def _fallbacks(repo: Repo, req: NewService) -> None:
    served = {r.name for r in routes(repo)} | {m for m, _ in req.models}
    for fb in req.fallbacks:
        if fb not in served:
            raise _bad(f"{fb!r} is not a public model name of the mesh (served: "
                       f"{', '.join(sorted(served))})", "--fallback")
        if fb in {m for m, _ in req.models} and len(req.models) == 1:
            raise _bad(f"{fb!r} is this backend's own model; a fallback is another name", "--fallback")


def plan_new(repo: Repo, req: NewService) -> dict[str, str]:
    """All files to write (new and changed), or InputError naming the offending argument."""
    layer = _validate(repo, req)
    host = _host(repo, req)
    rel_dir = f"layer-{layer}/{req.name}"
    approval_id, approvals_text = _approval(repo, req, host)
    stdio_only = req.kind == "mcp-tool" and req.transport == "stdio"
    port = None if stdio_only else req.port or next_free_port(repo.ports, host, req.kind)
    if stdio_only and req.port:
        raise _bad("a stdio-only MCP tool has no port", "--port")
    if port is not None and any(p.host == host and p.port == port for p in repo.ports.ports):
        raise _bad(f"{host}:{port} is already in the ledger (ports are never reused)", "--port")
    _fallbacks(repo, req)

    gateway = repo.services.get(repo.mesh.gateway.service)
    contract = _contract(repo, req, layer, host, port, approval_id, gateway)
    spec_text = templates.front_matter(contract) + _prose(req, contract)
    try:
        new_svc = parse_service(spec_text, f"{rel_dir}/{SPEC_FILE}")
    except InputError as exc:
        raise InputError([dataclasses.replace(p, path=ARG) for p in exc.problems]) from None
    _check_names(repo, new_svc.spec)

    files: dict[str, str] = {}
    if approvals_text is not None:
        files[APPROVALS_FILE] = approvals_text
    ports_text = (repo.root / PORTS_FILE).read_text(encoding="utf-8")
    if port is not None:
        ports_text = edits.ledger_append(ports_text, host, port, req.name, req.today)
        files[PORTS_FILE] = ports_text
    files.update(dependents.on_add(repo, new_svc, contract))
    after = staging.staged(repo, files, add=new_svc)

    files.update({f"{rel_dir}/{rel}": text
                  for rel, text in _project(repo, req, new_svc, contract).items()})
    files[f"{rel_dir}/{SPEC_FILE}"] = spec_text
    files.update(render_all(after))
    return files


def _tokens(repo: Repo, req: NewService, svc: Service, contract: dict[str, Any]) -> dict[str, str]:
    spec = svc.spec
    prefix = env_prefix(req.name)
    first_model = next((r.name for r in routes(repo) if not r.is_alias), "jerry-tiny")
    return {
        "__NAME__": req.name,
        "__PACKAGE__": req.name.replace("-", "_"),
        "__PREFIX__": prefix,
        "__PORT__": str(spec.port or 0),
        "__MODELS__": repr(tuple(m.upstream_id for m in spec.models)),
        "__ALIASES__": repr({f"{a.approach}-{a.target}": (a.approach, a.target) for a in spec.aliases}),
        "__KEY_ENV__": spec.gateway_auth_env or "",
        "__MASTER_KEY_ENV__": master_env(repo, prefix) if spec.kind == "optimizer" else "",
        "__GATEWAY_URL__": repo.mesh.gateway.public_base_url,
        "__DEFAULT_MODEL__": first_model,
        "__TOOLS__": repr(tuple(t.name for t in spec.mcp.tools)) if spec.mcp else "()",
    }


def _pins(text: str, names: dict[str, str]) -> list[str]:
    """`name==version` for each name, the version as pinned in `text` (else the default)."""
    out = []
    for name, default in names.items():
        m = re.search(rf'"{re.escape(name)}==([^"]+)"', text)
        out.append(f"{name}=={m.group(1) if m else default}")
    return out


def _reference(repo: Repo, kind: str) -> tuple[str, Path | None]:
    """(pyproject text, uv.lock) of the project whose pins a new service copies."""
    if kind == "mcp-tool":
        for svc in sorted(repo.by_kind("mcp-tool"), key=lambda s: s.name):
            py = repo.root / svc.rel_dir / "pyproject.toml"
            if py.is_file() and '"mcp==' in (text := py.read_text(encoding="utf-8")):
                return text, repo.root / svc.rel_dir / "uv.lock"
        return "", None
    root_py = repo.root / "pyproject.toml"
    return (root_py.read_text(encoding="utf-8") if root_py.is_file() else ""), repo.root / "uv.lock"


def _project(repo: Repo, req: NewService, svc: Service, contract: dict[str, Any]) -> dict[str, str]:
    package = req.name.replace("-", "_")
    ref_text, seed = _reference(repo, req.kind)
    deps = _pins(ref_text, MCP_PINS) if req.kind == "mcp-tool" else []
    dev = _pins(ref_text, DEV_PINS if req.kind == "mcp-tool" else {"pytest": DEV_PINS["pytest"]})
    tokens = _tokens(repo, req, svc, contract)
    description = svc.spec.description.replace("\\", "").replace('"', "'")
    files = {
        "pyproject.toml": templates.PYPROJECT.format(
            name=req.name, package=package, description=description,
            dependencies=templates.deps_list(deps), dev=templates.deps_list(dev)),
        f"src/{package}/__init__.py": f'"""{req.name}: {description}"""\n',
        **templates.skeleton(req.kind, package, tokens),
    }
    files["uv.lock"] = lock.lock(files, seed) if req.lock else templates.UNLOCKED.format(name=req.name)
    fmt = {"name": req.name, "package": package}
    files["ARCHITECTURE.md"] = templates.ARCHITECTURE.format(
        name=req.name, role=templates.ROLE[req.kind], modules=templates.MODULES[req.kind].format(**fmt),
        flow=templates.FLOW[req.kind])
    port_text = (f"Port {svc.spec.host}:{svc.spec.port} comes from `mesh/ports.yaml` and never "
                 "changes (`homelab port move` retires it and allocates another).") \
        if svc.spec.port else "No port: it speaks MCP over stdio only."
    files["AGENTS.md"] = templates.AGENTS.format(name=req.name, port_text=port_text)
    return files


def _contract(repo: Repo, req: NewService, layer: str, host: str, port: int | None,
              approval: str | None, gateway: Service | None) -> dict[str, Any]:
    env_file = f"/etc/homelab-llm/{req.name}.env"
    prefix = env_prefix(req.name)
    gw_name = gateway.name if gateway else None
    c: dict[str, Any] = {"name": req.name, "kind": req.kind, "layer": layer,
                         "description": req.description.strip(), "host": host}
    if port is not None:
        c.update(bind=req.bind, port=port, exposure="localhost" if approval is None else "lan")
        if approval:
            c["approval"] = approval
        endpoints = [{"method": "GET", "path": "/health"}]
        if req.kind in ("backend", "optimizer"):
            endpoints = [{"method": "POST", "path": "/v1/chat/completions"},
                         {"method": "GET", "path": "/v1/models"}, *endpoints]
        elif req.kind == "mcp-tool":
            endpoints = [{"method": "POST", "path": "/mcp"}, *endpoints]
        elif req.kind == "client":
            endpoints = [{"method": "POST", "path": "/ask"}, *endpoints]
        c["endpoints"] = endpoints
        c["health"] = {"path": "/health", "expect_status": 200}
    c["env_file"] = env_file
    env: list[dict[str, Any]] = []
    run_cmd = ["uv", "run", req.name, "--host", "{bind}", "--port", "{port}"]
    after = [gw_name] if gw_name and req.kind in ("optimizer", "client") else []
    upstreams = list(after)
    if req.gateway_auth:
        env.append({"name": f"{prefix}_API_KEY", "secret": True, "file": env_file,
                    "description": "Key the gateway sends as Bearer (unset: no check)."})
        c["_gateway_auth_env"] = f"{prefix}_API_KEY"
    if req.kind == "optimizer":
        master = master_env(repo, prefix)
        env += [{"name": f"{prefix}_GATEWAY_URL", "file": env_file,
                 "default": repo.mesh.gateway.public_base_url,
                 "description": "The gateway this proxy calls back with the plain model name."},
                {"name": master, "required": True, "secret": True, "file": env_file,
                 "description": "Key this proxy calls the gateway back with (the gateway's key)."}]
    elif req.kind == "client":
        first_model = next((r.name for r in routes(repo) if not r.is_alias), "jerry-tiny")
        gw_url = repo.mesh.gateway.public_base_url
        env += [
            {"name": f"{prefix}_API_BASE", "file": env_file, "default": gw_url,
             "description": "The gateway's base URL (clients call nothing else)."},
            {"name": f"{prefix}_MODEL", "file": env_file, "default": first_model,
             "description": "Public model name at the gateway."},
            {"name": f"{prefix}_API_KEY", "secret": True, "file": env_file,
             "description": "Gateway key."},
        ]
        run_cmd = ["uv", "run", req.name, "serve", "--host", "{bind}", "--port", "{port}"]
    elif req.kind == "mcp-tool":
        run_cmd = ["uv", "run", req.name, "--transport", "streamable-http", "--host", "{bind}",
                   "--port", "{port}"]
    if env:
        c["env"] = env
    run: dict[str, Any] = {"uv_project": ".", "command": run_cmd}
    if after:
        run["after"] = after
    stdio_command = ["uv", "run", req.name, "--transport", "stdio"]
    if port is None:  # stdio only: nothing for `up` or systemd to keep running
        run = {"uv_project": ".", "command": stdio_command, "autostart": False}
    c["run"] = run
    c["test"] = TEST
    if upstreams:
        c["upstreams"] = upstreams
    if port is not None:
        c["systemd"] = {"unit": f"homelab-{req.name}.service"}
    if "_gateway_auth_env" in c:
        c["gateway_auth_env"] = c.pop("_gateway_auth_env")
    if req.kind == "backend":
        pairs = req.models or [(f"jerry-{req.name}", req.name)]
        c["models"] = [{"name": m, "upstream_id": u,
                        **({"fallbacks": [f for f in req.fallbacks if f != m]}
                           if [f for f in req.fallbacks if f != m] else {})} for m, u in pairs]
    elif req.kind == "optimizer":
        base = [r.name for r in routes(repo) if not r.is_alias]
        approaches = req.approaches or ["moa"]
        c["aliases"] = [{"name": f"{m}-{a}", "approach": a, "target": m} for m in base for a in approaches]
    elif req.kind == "client":
        c["client"] = {"api_base_env": f"{prefix}_API_BASE", "model_env": f"{prefix}_MODEL",
                       "default_api_base": repo.mesh.gateway.public_base_url,
                       "default_model": env[1]["default"] if len(env) > 1 else "jerry-tiny"}
    elif req.kind == "mcp-tool":
        tools = req.tools or [req.name.replace("-", "_")]
        c["mcp"] = {
            "purpose": req.description.strip(),
            "transport": req.transport, "path": "/mcp", "stdio_command": stdio_command,
            "tools": [{"name": t,
                       "description": "Repeat `text` `times` times and return it with its length "
                                      "(the working starting point from homelab new).",
                       "inputs": {"text": "string: the text to repeat",
                                  "times": "integer, optional (default 1, at most 100): how many times"},
                       "outputs": "{text, length}",
                       "failure_modes": ["times outside 1-100 (tool error)"]} for t in tools],
        }
    return c


def _check_names(repo: Repo, spec: ServiceSpec) -> None:
    pattern = re.compile(repo.mesh.model_name_pattern)
    existing = {r.name for r in routes(repo)}
    param = "--model" if spec.models else "--approach"  # aliases are derived from --approach
    if spec.kind == "optimizer" and not spec.aliases:
        raise _bad("the mesh serves no backend model to make aliases of; add a backend first",
                   "--approach")
    for item in [*spec.models, *spec.aliases]:
        if not pattern.fullmatch(item.name):
            raise _bad(f"public name {item.name!r} does not match the mesh pattern "
                       f"{repo.mesh.model_name_pattern}", param)
        if item.name in existing:
            raise _bad(f"public name {item.name!r} is already served in the mesh", param)


def _append_approval(text: str, approval_id: str, req: NewService, host: str) -> str:
    quote = lambda s: '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'  # noqa: E731
    if re.search(r"^approvals:\s*\[\]\s*$", text, re.M):
        text = re.sub(r"^approvals:\s*\[\]\s*$", "approvals:", text, flags=re.M)
    return text.rstrip("\n") + (
        f"\n  - id: {approval_id}\n    service: {req.name}\n    host: {host}\n"
        f"    who: {quote(req.approved_by or '')}\n    reviewer: {quote(req.reviewer or '')}\n"
        f"    date: {req.today.isoformat()}\n    reason: {quote(req.reason or '')}\n")


def _prose(req: NewService, c: dict[str, Any]) -> str:
    where = f", {c['bind']}:{c['port']}" if "port" in c else " (stdio only)"
    health = f"`GET {c['health']['path']}` answers {c['health']['expect_status']}." if "health" in c \
        else "No HTTP endpoint (stdio)."
    env_file = c["env_file"]
    package = req.name.replace("-", "_")
    auth = f"; checks the Bearer key in `{c['gateway_auth_env']}` when set" \
        if c.get("gateway_auth_env") else ""
    tools = ", ".join(t["name"] for t in c["mcp"]["tools"]) if "mcp" in c else ""
    return templates.SERVICE_PROSE.format(
        name=req.name, description=c["description"], kind=req.kind, layer=c["layer"], host=c["host"],
        where=where, command=" ".join(c["run"]["command"]), env_file=env_file, health=health,
        does=templates.DOES[req.kind].format(name=req.name, package=package, auth=auth, tools=tools),
        env_text=(f"Declared under `env:` above; `homelab render` writes the template "
                  f"`platform/ops/env/{env_file.rsplit('/', 1)[-1]}.example`." if c.get("env")
                  else "None yet: declare variables under `env:` and re-render."))
