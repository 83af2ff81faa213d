"""`.homelab/secrets.env`: one random value per secret env var name across all contracts.

Values are shared BY NAME (the gateway's OV_SERVER_API_KEY is ov-server's OV_SERVER_API_KEY), so
the whole mesh agrees without anyone copying keys. Generated once, mode 0600, never rewritten
except to add names that appeared in new contracts.
"""

from __future__ import annotations

from pathlib import Path

from meshkit import keys

from homelab.load.repo import Repo
from homelab.runtime import envfiles
from homelab.runtime.paths import RuntimePaths

HEADER = ("generated once by `homelab up`: random secrets shared by env var name across the mesh.\n"
          "Keep private (mode 0600). Delete a line to get a new value on the next `homelab up`.")


def env_file_paths(repo: Repo, rel_dir: str, names: list[str | None]) -> list[Path]:
    """Env files of a service, relative paths resolved against the service folder."""
    out: list[Path] = []
    for name in names:
        if not name:
            continue
        path = Path(name) if Path(name).is_absolute() else repo.root / rel_dir / name
        if path not in out:
            out.append(path)
    return out


def service_env_files(repo: Repo, service: str) -> list[Path]:
    svc = repo.services[service]
    return env_file_paths(repo, svc.rel_dir, [svc.spec.env_file, *(v.file for v in svc.spec.env)])


def master_key_name(repo: Repo) -> str | None:
    """The gateway's client key (LITELLM_MASTER_KEY): its secret env var ending in MASTER_KEY."""
    gw = repo.services.get(repo.mesh.gateway.service)
    if gw is None:
        return None
    return next((v.name for v in gw.spec.env if v.secret and v.name.endswith("MASTER_KEY")), None)


def gateway_key_aliases(repo: Repo) -> dict[str, str]:
    """Secret `*_API_KEY` vars of services calling the gateway that the gateway itself does not
    declare (tiny-agents' TINYAGENTS_API_KEY, open-webui's OPENAI_API_KEY) hold the gateway's
    master key: alias name -> master key name."""
    master = master_key_name(repo)
    gw = repo.services.get(repo.mesh.gateway.service)
    if master is None or gw is None:
        return {}
    gateway_names = {v.name for v in gw.spec.env}
    aliases: dict[str, str] = {}
    for svc in repo.services.values():
        if gw.name not in svc.spec.upstreams:
            continue
        for var in svc.spec.env:
            if var.secret and var.name.endswith("_API_KEY") and var.name not in gateway_names:
                aliases[var.name] = master
    return aliases


def secret_names(repo: Repo) -> list[str]:
    return sorted({v.name for s in repo.services.values() for v in s.spec.env if v.secret})


def new_value(name: str, master: str | None) -> str:
    # The `sk-` rule (meshkit.keys): only the gateway's master key starts with "sk-".
    return keys.new_key(master=name == master)


def _existing(repo: Repo, name: str) -> str | None:
    """A value already present in some service's env file on this machine (keeps a hand-made
    setup consistent instead of minting a second, different key)."""
    for svc in repo.services.values():
        if any(v.name == name for v in svc.spec.env):
            for path in service_env_files(repo, svc.name):
                value = envfiles.read(path).get(name)
                if value:
                    return value
    return None


def ensure(repo: Repo, paths: RuntimePaths) -> dict[str, str]:
    """Load secrets.env, adding any missing secret names; returns name -> value."""
    current = envfiles.read(paths.secrets)
    master = master_key_name(repo)
    aliases = gateway_key_aliases(repo)
    changed = False
    names = secret_names(repo)
    # Masters first so aliases can copy them.
    for name in sorted(names, key=lambda n: n in aliases):
        if current.get(name):
            continue
        value = _existing(repo, name)
        if value is None and name in aliases and current.get(aliases[name]):
            value = current[aliases[name]]
        current[name] = value or new_value(name, master)
        changed = True
    if changed or not paths.secrets.exists():
        envfiles.write_private(paths.secrets, envfiles.render(current, HEADER))
    return current


def load(paths: RuntimePaths) -> dict[str, str]:
    """Read-only view for commands that must not create state (`homelab health`)."""
    return envfiles.read(paths.secrets)
