"""Env file templates: one per env file the contracts name, listing what lives in it."""

from __future__ import annotations

from collections import defaultdict
from pathlib import PurePosixPath

from homelab.contract.service import EnvVar, expand
from homelab.load.repo import Repo, Service
from homelab.render import systemd
from homelab.render.header import banner

OPS_ENV_DIR = "platform/ops/env"


def template_path(svc: Service, file: str) -> str:
    """Relative env files (config/env.local) get a sibling .example; /etc ones go under ops/env."""
    if file.startswith("/"):
        return f"{OPS_ENV_DIR}/{PurePosixPath(file).name}.example"
    return f"{svc.rel_dir}/{file}.example"


def _entry(var: EnvVar, values: dict[str, str]) -> str:
    tags = ", ".join(t for t, on in (("required", var.required), ("secret", var.secret)) if on)
    about = " ".join(p for p in (var.description, f"({tags})" if tags else "") if p)
    lines = [f"# {about}"] if about else []
    value = "" if var.secret else expand(var.default or "", values)
    lines.append(f"{var.name}={value}" if var.required or var.secret or var.default is not None
                 else f"# {var.name}=")
    return "\n".join(lines)


def _install_values(repo: Repo, svc: Service) -> dict[str, str]:
    """Placeholders in a default ({port}, {host_address}, ...) as the installed service sees them."""
    install = repo.mesh.install_dir
    return systemd.placeholders(repo, svc, f"{install}/{svc.rel_dir}", install)


def render_env_templates(repo: Repo) -> dict[str, str]:
    by_template: dict[str, list[tuple[Service, EnvVar]]] = defaultdict(list)
    for svc in repo.services.values():
        for var in svc.spec.env:
            entries = by_template[template_path(svc, var.file)]
            if all(v.name != var.name for _, v in entries):  # a shared file lists a name once
                entries.append((svc, var))
    out = {}
    for rel, entries in sorted(by_template.items()):
        sources = sorted({f"{s.rel_dir}/SERVICE_SPEC.md" for s, _ in entries})
        installed = entries[0][1].file
        head = banner(", ".join(sources))
        head += f"# Install as {installed} (never commit the filled-in copy); empty values are yours to set.\n"
        body = "\n\n".join(_entry(v, _install_values(repo, s)) for s, v in entries)
        out[rel] = f"{head}\n{body}\n"
    return out
