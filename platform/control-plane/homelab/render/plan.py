"""Everything `homelab render` writes, as {relative path: content}, computed without touching disk."""

from __future__ import annotations

from homelab.errors import InputError
from homelab.load.repo import Repo
from homelab.render import docs, env_templates, mcp_registry, router, schema, scripts, systemd


def _current(repo: Repo, rel: str) -> str | None:
    path = repo.root / rel
    try:
        return path.read_text(encoding="utf-8") if path.is_file() else None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError.one(rel, f"cannot read: {exc}") from None


def render_all(repo: Repo) -> dict[str, str]:
    out: dict[str, str] = {}
    if repo.mesh.gateway.service in repo.services:
        rel = router.router_path(repo)
        out[rel] = router.render_router(repo, _current(repo, rel))
    out.update(env_templates.render_env_templates(repo))
    out.update(systemd.render_units(repo))
    out[scripts.HEALTHCHECK] = scripts.render_healthcheck(repo)
    out[scripts.RESTART_ALL] = scripts.render_restart_all(repo)
    out[docs.TOPOLOGY] = docs.render_topology(repo, _current(repo, docs.TOPOLOGY))
    out[docs.DOSSIER] = docs.render_dossier(repo, _current(repo, docs.DOSSIER))
    out[mcp_registry.REGISTRY] = mcp_registry.render_registry(repo)
    out.update(schema.render_schemas())
    return out


EXECUTABLE = {scripts.HEALTHCHECK, scripts.RESTART_ALL}
