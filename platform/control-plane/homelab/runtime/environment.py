"""The environment each program runs with, composed from the contracts and this machine.

Precedence, lowest first: mesh-wide runtime settings, contract defaults, contract `up_value`s,
secrets.env, then the service's real env file(s) when they exist on this machine
(/etc/homelab-llm/<name>.env, or e.g. config/env.local for the gateway).
"""

from __future__ import annotations

from homelab.contract.service import expand
from homelab.load.repo import Repo
from homelab.runtime import envfiles
from homelab.runtime.paths import RuntimePaths
from homelab.runtime.programs import placeholders
from homelab.runtime.secrets import service_env_files

MARKER = "HOMELAB_SUPERVISED"

# Set in every program: offline-safe and quiet whether or not CI=true is set.
COMMON_ENV = {
    "UV_PYTHON_DOWNLOADS": "never",
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # else every litellm import fetches the cost map
    "DO_NOT_TRACK": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "ANONYMIZED_TELEMETRY": "False",
    "SCARF_NO_ANALYTICS": "true",
    "PYTHONUNBUFFERED": "1",  # logs reach .homelab/logs as they happen
}


def runtime_provided(repo: Repo, paths: RuntimePaths, service: str) -> dict[str, str]:
    """The contract's `up_value`s, with {state}, {repo} and {service_dir} filled in."""
    svc = repo.services[service]
    values = {"{state}": str(paths.state), "{repo}": str(repo.root),
              "{service_dir}": str(repo.root / svc.rel_dir)}
    out = {}
    for var in svc.spec.env:
        if var.up_value is not None:
            value = var.up_value
            for placeholder, filled in values.items():
                value = value.replace(placeholder, filled)
            out[var.name] = value
    return out


def compose(repo: Repo, paths: RuntimePaths, service: str,
            secrets: dict[str, str]) -> dict[str, str]:
    svc = repo.services[service]
    spec = svc.spec
    env = dict(COMMON_ENV)
    # The one reading of the mesh a service gets (meshkit.view); never the checkout's contracts.
    env["HOMELAB_MESH_VIEW"] = str(paths.view)
    # Marks every process of this checkout's mesh (children inherit it), so `homelab down` can
    # find leftovers even when supervisord itself died.
    env[MARKER] = str(repo.root)
    values = placeholders(repo, svc)  # e.g. open-webui's CORS origins name its {port}
    env.update({v.name: expand(v.default, values) for v in spec.env if v.default is not None})
    env.update(runtime_provided(repo, paths, service))
    env.update({v.name: secrets[v.name] for v in spec.env if v.secret and secrets.get(v.name)})
    for path in service_env_files(repo, service):
        env.update(envfiles.read(path))
    return env


def declared_values(repo: Repo, env: dict[str, str], service: str) -> dict[str, str]:
    """Only the variables the contract declares (what goes into a generated env file)."""
    return {v.name: env[v.name] for v in repo.services[service].spec.env if v.name in env}
