"""What a running service was started from, so `up` can restart it when that changes.

supervisord restarts a program when its config section changes (command, environment), but a
service also reads files that are not in its config: the gateway reads router.yaml, an agent
reads the MCP registry. Each program's environment carries HOMELAB_INPUTS, a digest of its
contract, its environment and those rendered files, so a change to any of them changes its
config section and `up` restarts it; `.homelab/run/inputs.json` keeps the per-input digests so
`up` can say which one changed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from homelab.load.repo import SPEC_FILE, Repo, Service
from homelab.render.mcp_registry import REGISTRY_FILE
from homelab.render.router import router_path
from homelab.runtime.envfiles import write_private

INPUTS_ENV = "HOMELAB_INPUTS"


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def rendered_inputs(repo: Repo, svc: Service) -> list[str]:
    """Rendered files the service reads at start-up (relative paths)."""
    out = []
    if svc.name == repo.mesh.gateway.service:
        out.append(router_path(repo))
    tools = {s.name for s in repo.by_kind("mcp-tool")}
    if (svc.spec.client and svc.spec.client.mcp_registry) or tools & set(svc.spec.upstreams):
        out.append(REGISTRY_FILE)
    return out


def inputs(repo: Repo, svc: Service, env: dict[str, str]) -> dict[str, str]:
    """{what: digest} for everything the service was started from."""
    # A backend's `models` list is read by the gateway (router.yaml, its own input), never by the
    # backend, whose engine has its own registry: `homelab models add|rm` edit it, and that must
    # restart only the gateway, not the engine serving every other model.
    contract = json.dumps(svc.spec.model_dump(mode="json", exclude={"models"}), sort_keys=True).encode()
    found = {f"{svc.rel_dir}/{SPEC_FILE}": _digest(contract),
             "its environment (env files, secrets, defaults)":
                 _digest(json.dumps({k: v for k, v in env.items() if k != INPUTS_ENV},
                                    sort_keys=True).encode())}
    for rel in rendered_inputs(repo, svc):
        try:
            found[rel] = _digest((repo.root / rel).read_bytes())
        except OSError:
            found[rel] = "missing"
    return found


def fingerprint(found: dict[str, str]) -> str:
    return _digest(json.dumps(found, sort_keys=True).encode())


def load(path: Path) -> dict[str, dict[str, str]]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def save(path: Path, state: dict[str, dict[str, str]]) -> None:
    write_private(path, json.dumps(state, indent=2, sort_keys=True) + "\n")


def what_changed(old: dict[str, str] | None, new: dict[str, str]) -> list[str]:
    if not old:
        return ["its inputs (no earlier record)"]
    return [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)] or ["its config"]
