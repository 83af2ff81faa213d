"""Plan a new service: its folder, its ledger line (and approval), and every re-rendered file."""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any

from homelab.contract.mesh import Approvals, PortLedger
from homelab.contract.service import NAME_RE, ServiceSpec
from homelab.errors import InputError
from homelab.load.repo import (APPROVALS_FILE, PORTS_FILE, SPEC_FILE, Repo, ordered, parse_service,
                               parse_yaml_model)
from homelab.render.plan import render_all
from homelab.scaffold import templates
from homelab.scaffold.ports import next_free_port

KINDS = ("backend", "client", "mcp-tool", "optimizer")
DEFAULT_LAYER = {"backend": "inference", "client": "orchestration", "mcp-tool": "tools",
                 "optimizer": "gateway"}
ARG = "homelab new"


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
    approved_by: str | None = None  # or record a new approval now
    reason: str | None = None
    models: list[tuple[str, str]] = field(default_factory=list)  # backend: (public, upstream id)
    approaches: list[str] = field(default_factory=list)  # optimizer
    transport: str = "streamable-http"  # mcp-tool
    tools: list[str] = field(default_factory=list)  # mcp-tool
    today: dt.date = field(default_factory=dt.date.today)


def _bad(message: str, param: str) -> InputError:
    return InputError.one(ARG, f"{param}: {message}")


def _env_prefix(name: str) -> str:
    return re.sub(r"[^A-Z0-9]", "_", name.upper())


def plan_new(repo: Repo, req: NewService) -> dict[str, str]:
    """All files to write (new and changed), or InputError naming the offending argument."""
    if req.kind not in KINDS:
        raise _bad(f"kind must be one of {', '.join(KINDS)}", "KIND")
    if not re.fullmatch(NAME_RE, req.name):
        raise _bad("lowercase letters, digits and single dashes, starting with a letter", "NAME")
    if req.name in repo.services:
        raise _bad(f"a service named {req.name} exists ({repo.services[req.name].rel_dir})", "NAME")
    layer = req.layer or DEFAULT_LAYER[req.kind]
    rel_dir = f"layer-{layer}/{req.name}"
    if (repo.root / rel_dir).exists():
        raise _bad(f"{rel_dir} already exists", "NAME")
    gateway = repo.services.get(repo.mesh.gateway.service)
    host = req.host or (repo.mesh.hosts[0].name if len(repo.mesh.hosts) == 1
                        else gateway.spec.host if gateway else repo.mesh.hosts[0].name)
    if repo.host_address(host) is None:
        raise _bad(f"unknown host {host!r}; known: {', '.join(h.name for h in repo.mesh.hosts)}", "--host")
    try:
        lan = not ipaddress.ip_address(req.bind).is_loopback
    except ValueError:
        raise _bad(f"{req.bind!r} is not an IP address", "--bind") from None
    files: dict[str, str] = {}
    approvals_text = (repo.root / APPROVALS_FILE).read_text(encoding="utf-8")
    approval_id = None
    if lan:
        if req.kind == "optimizer":
            raise _bad("an optimizer binds loopback only; no approval can make it LAN-exposed", "--bind")
        if req.approval:
            rec = next((a for a in repo.approvals.approvals if a.id == req.approval), None)
            if rec is None or rec.service != req.name or rec.host != host:
                raise _bad(f"{req.approval} is not an approval for {req.name} on {host} in "
                           f"{APPROVALS_FILE}", "--approval")
            approval_id = rec.id
        elif req.approved_by and req.reason:
            nums = [int(a.id.split("-")[1]) for a in repo.approvals.approvals]
            approval_id = f"LAN-{max(nums, default=0) + 1:04d}"
            approvals_text = _append_approval(approvals_text, approval_id, req, host)
            files[APPROVALS_FILE] = approvals_text
        else:
            raise _bad(f"binding {req.bind} exposes {req.name} on the LAN: give --approval LAN-NNNN "
                       "or record one with --approved-by WHO --reason TEXT", "--bind")
    port = req.port or next_free_port(repo.ports, host)
    if any(p.host == host and p.port == port for p in repo.ports.ports):
        raise _bad(f"{host}:{port} is already in the ledger (ports are never reused)", "--port")

    contract = _contract(repo, req, layer, host, port, approval_id, gateway.name if gateway else None)
    spec_text = templates.front_matter(contract) + _prose(req, contract, rel_dir)
    try:
        new_svc = parse_service(spec_text, f"{rel_dir}/{SPEC_FILE}")
    except InputError as exc:
        raise InputError([dataclasses.replace(p, path=ARG) for p in exc.problems]) from None
    _check_names(repo, new_svc.spec)

    ports_text = (repo.root / PORTS_FILE).read_text(encoding="utf-8").rstrip("\n") + \
        f"\n  - {{host: {host}, port: {port}, service: {req.name}, since: {req.today.isoformat()}}}\n"
    files[PORTS_FILE] = ports_text
    ledger, ledger_src = parse_yaml_model(ports_text, PORTS_FILE, PortLedger)
    approvals, approvals_src = parse_yaml_model(approvals_text, APPROVALS_FILE, Approvals)
    staged = dataclasses.replace(
        repo, ports=ledger, approvals=approvals, services=ordered({**repo.services, req.name: new_svc}),
        sources={**repo.sources, PORTS_FILE: ledger_src, APPROVALS_FILE: approvals_src})

    package = req.name.replace("-", "_")
    models = [m for m, _ in req.models]
    files.update({
        f"{rel_dir}/{SPEC_FILE}": spec_text,
        f"{rel_dir}/ARCHITECTURE.md": templates.ARCHITECTURE.format(name=req.name, role=_role(req)),
        f"{rel_dir}/AGENTS.md": templates.AGENTS.format(name=req.name, port_text=f"{host}:{port}"),
        f"{rel_dir}/pyproject.toml": templates.PYPROJECT.format(
            name=req.name, package=package, description=contract["description"].replace('"', "'")),
        f"{rel_dir}/uv.lock": templates.UV_LOCK.format(name=req.name),
        f"{rel_dir}/src/{package}/__init__.py": "",
        f"{rel_dir}/src/{package}/__main__.py": templates.MAIN.format(name=req.name, models=models),
    })
    files.update(render_all(staged))
    return files


def _contract(repo: Repo, req: NewService, layer: str, host: str, port: int,
              approval: str | None, gateway: str | None) -> dict[str, Any]:
    env_file = f"/etc/homelab-llm/{req.name}.env"
    c: dict[str, Any] = {
        "name": req.name, "kind": req.kind, "layer": layer,
        "description": req.description or f"TODO: one line on what {req.name} does.",
        "host": host, "bind": req.bind, "port": port,
        "exposure": "localhost" if approval is None else "lan",
    }
    if approval:
        c["approval"] = approval
    endpoints = [{"method": "GET", "path": "/health"}]
    if req.kind in ("backend", "optimizer"):
        endpoints = [{"method": "POST", "path": "/v1/chat/completions"},
                     {"method": "GET", "path": "/v1/models"}, *endpoints]
    elif req.kind == "mcp-tool" and req.transport == "streamable-http":
        endpoints = [{"method": "POST", "path": "/mcp"}, *endpoints]
    c["endpoints"] = endpoints
    c["health"] = {"path": "/health", "expect_status": 200}
    c["env_file"] = env_file
    c["env"] = []
    run_cmd = ["uv", "run", req.name, "--host", "{bind}", "--port", "{port}"]
    after = [gateway] if gateway and req.kind in ("optimizer", "client") else []
    c["run"] = {"uv_project": ".", "command": run_cmd, **({"after": after} if after else {})}
    c["upstreams"] = list(after)
    c["systemd"] = {"unit": f"homelab-{req.name}.service"}
    if req.kind == "backend":
        c["models"] = [{"name": m, "upstream_id": u} for m, u in
                       (req.models or [(f"jerry-{req.name}", req.name)])]
    elif req.kind == "optimizer":
        base = [r for s in repo.by_kind("backend") for r in (m.name for m in s.spec.models)]
        approaches = req.approaches or ["moa"]
        c["aliases"] = [{"name": f"{m}-{a}", "approach": a, "target": m} for m in base for a in approaches]
        c["upstreams"] = [gateway] if gateway else []
    elif req.kind == "client":
        prefix = _env_prefix(req.name)
        first_model = next((m.name for s in repo.by_kind("backend") for m in s.spec.models), "jerry-tiny")
        gw_url = repo.mesh.gateway.public_base_url
        c["env"] = [
            {"name": f"{prefix}_API_BASE", "file": env_file, "default": gw_url,
             "description": "The gateway's base URL (clients call nothing else)."},
            {"name": f"{prefix}_MODEL", "file": env_file, "default": first_model,
             "description": "Logical model name at the gateway."},
            {"name": f"{prefix}_API_KEY", "secret": True, "file": env_file,
             "description": "Gateway key."},
        ]
        c["client"] = {"api_base_env": f"{prefix}_API_BASE", "model_env": f"{prefix}_MODEL",
                       "default_api_base": gw_url, "default_model": first_model}
    elif req.kind == "mcp-tool":
        tools = req.tools or [req.name.replace("-", "_")]
        c["mcp"] = {
            "purpose": req.description or f"TODO: what {req.name}'s tools are for.",
            "transport": req.transport, "path": "/mcp",
            "stdio_command": ["uv", "run", req.name, "--transport", "stdio"],
            "tools": [{"name": t, "description": "TODO: what the tool does.",
                       "inputs": {"query": "string: TODO"}, "outputs": "TODO",
                       "failure_modes": ["TODO: each way it can fail, as a tool error"]}
                      for t in tools],
        }
        if req.transport == "stdio":
            for key in ("bind", "port", "endpoints", "health"):
                del c[key]
    if not c["upstreams"]:
        del c["upstreams"]
    if not c["env"]:
        del c["env"]
    return c


def _check_names(repo: Repo, spec: ServiceSpec) -> None:
    pattern = re.compile(repo.mesh.model_name_pattern)
    existing = {m.name for s in repo.by_kind("backend") for m in s.spec.models} | \
        {a.name for s in repo.by_kind("optimizer") for a in s.spec.aliases}
    param = "--model" if spec.models else "--approach"  # aliases are derived from --approach
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
        f"    who: {quote(req.approved_by or '')}\n    date: {req.today.isoformat()}\n"
        f"    reason: {quote(req.reason or '')}\n")


def _role(req: NewService) -> str:
    return {
        "backend": "A backend the gateway routes to under the public names in the contract's `models`.",
        "optimizer": "An optimization proxy behind the gateway, on loopback only; it calls the gateway "
                     "back with the plain model name.",
        "client": "A client/orchestrator: it calls the gateway only, with base URL and model from env.",
        "mcp-tool": "An MCP tool server, separate from the LLM gateway, listed in layer-tools/registry.yaml.",
    }[req.kind]


def _prose(req: NewService, c: dict[str, Any], rel_dir: str) -> str:
    where = f", {c['bind']}:{c['port']}" if "port" in c else ""
    health = f"`GET {c['health']['path']}` answers {c['health']['expect_status']}." if "health" in c \
        else "No HTTP endpoint (stdio)."
    env_file = c["env_file"]
    return templates.SERVICE_PROSE.format(
        name=req.name, description=c["description"], kind=req.kind, layer=c["layer"], host=c["host"],
        where=where, command=" ".join(c["run"]["command"]), env_file=env_file, health=health,
        env_text=(f"Declared under `env:` above; `homelab render` writes the template "
                  f"`platform/ops/env/{env_file.rsplit('/', 1)[-1]}.example`." if c.get("env")
                  else "None yet: declare variables under `env:` and re-render."))

