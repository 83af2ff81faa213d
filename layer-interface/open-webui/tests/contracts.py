"""What the tests read from the mesh's contracts (pure functions over SERVICE_SPEC.md files).

The control plane owns contract parsing; this is the small read-only subset the open-webui tests
need without installing it: this service's env as `homelab up` / the env template fill it, and
which public model names are plain (served by a backend) rather than optimizer aliases.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

SERVICE_DIR = Path(__file__).resolve().parents[1]
REPO = SERVICE_DIR.parents[1]
_PLACEHOLDER = re.compile(r"\{(bind|port|service_dir|repo|host_address)\}")


def front_matter(spec_path: Path) -> dict:
    return yaml.safe_load(spec_path.read_text(encoding="utf-8").split("---")[1])


def all_contracts(repo: Path = REPO) -> dict[str, dict]:
    """Service name -> contract front matter, for every layer-*/*/SERVICE_SPEC.md."""
    return {c["name"]: c for c in map(front_matter, sorted(repo.glob("layer-*/*/SERVICE_SPEC.md")))}


def host_address(contract: dict, repo: Path = REPO) -> str:
    hosts = yaml.safe_load((repo / "mesh" / "mesh.yaml").read_text(encoding="utf-8"))["hosts"]
    return next(h["address"] for h in hosts if h["name"] == contract["host"])


def env_defaults(repo: Path = REPO, name: str = "open-webui") -> dict[str, str]:
    """The contract's env defaults with {port}, {host_address}, ... filled in as `up` does."""
    contract = all_contracts(repo)[name]
    values = {"bind": contract.get("bind") or "", "port": str(contract.get("port") or ""),
              "service_dir": str(SERVICE_DIR), "repo": str(repo), "host_address": host_address(contract, repo)}
    return {e["name"]: _PLACEHOLDER.sub(lambda m: values[m.group(1)], str(e["default"]))
            for e in contract["env"] if e.get("default") is not None}


def env_entry(name: str, repo: Path = REPO, service: str = "open-webui") -> dict:
    return next(e for e in all_contracts(repo)[service]["env"] if e["name"] == name)


def plain_models(repo: Path = REPO) -> dict[str, str]:
    """Public name -> backend service, for every model a backend contract serves (no aliases)."""
    return {m["name"]: c["name"] for c in all_contracts(repo).values() if c.get("kind") == "backend"
            for m in c.get("models") or []}


def aliases(repo: Path = REPO) -> list[str]:
    return [a["name"] for c in all_contracts(repo).values() for a in c.get("aliases") or []]
