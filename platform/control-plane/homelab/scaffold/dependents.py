"""Keep the contracts that depend on a service current when it is added or removed: the gateway's
`upstreams`/`run.after` (and the key it sends), the `upstreams`/`run.after` of clients that read
the MCP registry, and (on removal) every fallback, alias and dependency naming it. HL407 checks
the same graph, so what `homelab new`/`rm` write is what `check` expects."""

from __future__ import annotations

from typing import Any

from ruamel.yaml.comments import CommentedMap

from homelab.errors import InputError
from homelab.load.repo import SPEC_FILE, Repo, Service
from homelab.scaffold.edits import add_to_list, edit_contract, remove_from_list


def _text(repo: Repo, svc: Service) -> str:
    return (repo.root / svc.rel_dir / SPEC_FILE).read_text(encoding="utf-8")


def _flow(entry: dict[str, Any]) -> CommentedMap:
    node = CommentedMap(entry)
    node.fa.set_flow_style()
    return node


def on_add(repo: Repo, new: Service, contract: dict[str, Any]) -> dict[str, str]:
    """{contract path: new text} of every existing contract that must mention `new`."""
    out: dict[str, str] = {}
    spec = new.spec
    gateway = repo.services.get(repo.mesh.gateway.service)
    if gateway is not None and spec.kind in ("backend", "optimizer"):
        def wire(node: CommentedMap) -> None:
            add_to_list(node, "upstreams", spec.name, after="test" if "test" in node else "run")
            # An external backend is waited for through `upstreams`, never started: no run.after.
            if spec.kind == "backend" and spec.host == gateway.spec.host and spec.port is not None \
                    and not spec.is_external:
                add_to_list(node["run"], "after", spec.name, after="workdir")
            if spec.gateway_auth_env:
                env = node.get("env")
                if env is None:
                    raise InputError.one(gateway.source.path, "the gateway declares no `env:`; "
                                         "add its env file first (needed for --gateway-auth)")
                file = gateway.spec.env_file or "config/env.local"
                if all(e.get("name") != spec.gateway_auth_env for e in env):
                    env.append(_flow({"name": spec.gateway_auth_env, "required": True,
                                      "secret": True, "file": file,
                                      "description": f"Key the gateway sends to {spec.name}."}))
        path = gateway.source.path
        out[path] = edit_contract(_text(repo, gateway), path, wire)
    if spec.kind == "mcp-tool":
        for client in _registry_clients(repo):
            def wire_client(node: CommentedMap, client: Service = client) -> None:
                add_to_list(node, "upstreams", spec.name, after="test" if "test" in node else "run")
                if spec.port is not None and spec.host == client.spec.host:
                    add_to_list(node["run"], "after", spec.name, after="workdir")
            path = client.source.path
            out[path] = edit_contract(_text(repo, client), path, wire_client)
    return out


def _registry_clients(repo: Repo) -> list[Service]:
    return [s for s in repo.by_kind("client", "interface")
            if s.spec.client and s.spec.client.mcp_registry]


def on_remove(repo: Repo, gone: Service) -> dict[str, str]:
    """{contract path: new text} of every other contract that names `gone` or its public names."""
    names = {m.name for m in gone.spec.models} | {a.name for a in gone.spec.aliases}
    out: dict[str, str] = {}
    gateway = repo.services.get(repo.mesh.gateway.service)
    for svc in repo.services.values():
        if svc.name == gone.name:
            continue
        spec = svc.spec
        mentions = gone.name in spec.upstreams or gone.name in spec.after or \
            any(set(m.fallbacks) & names for m in spec.models) or \
            any(a.target in names for a in spec.aliases) or \
            (svc is gateway and gone.spec.gateway_auth_env is not None)
        if not mentions:
            continue
        shared_key = gone.spec.gateway_auth_env is not None and any(
            s.spec.gateway_auth_env == gone.spec.gateway_auth_env
            for s in repo.services.values() if s.name != gone.name)

        def unwire(node: CommentedMap, svc: Service = svc, shared_key: bool = shared_key) -> None:
            remove_from_list(node, "upstreams", gone.name)
            if "after" in node["run"]:
                remove_from_list(node["run"], "after", gone.name)
            for model in node.get("models") or []:
                for name in names:
                    remove_from_list(model, "fallbacks", name)
            if node.get("aliases"):
                kept = [a for a in node["aliases"] if a.get("target") not in names]
                node["aliases"][:] = kept
            if svc is gateway and gone.spec.gateway_auth_env and not shared_key:
                env = node.get("env") or []
                env[:] = [e for e in env if e.get("name") != gone.spec.gateway_auth_env]
        path = svc.source.path
        out[path] = edit_contract(_text(repo, svc), path, unwire)
    return out
