"""Everything `homelab render` writes, as {relative path: content}, computed without touching disk;
and the generated files no contract produces any more (to delete)."""

from __future__ import annotations

from pathlib import Path

from homelab.errors import InputError
from homelab.load.repo import Repo
from homelab.render import (docs, env_templates, grafana, mcp_registry, prometheus, router,
                            rules_doc, schema, scripts, systemd, view)
from homelab.render.header import is_generated

# Folders holding one generated file per service: a file there that render no longer writes was
# left behind by a removed (or renamed) service.
PER_SERVICE_DIRS = ((systemd.SYSTEMD_DIR, ".service"), (env_templates.OPS_ENV_DIR, ".example"))


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
    out[mcp_registry.REGISTRY_FILE] = mcp_registry.render_registry(repo)
    out[view.VIEW] = view.render_view(repo)
    out[view.VIEW_SCHEMA] = view.render_view_schema()
    if (rules := _current(repo, rules_doc.RULES_DOC)) is not None:  # a mesh without the docs folder
        out[rules_doc.RULES_DOC] = rules_doc.render_rules_doc(rules)
    out.update(schema.render_schemas())
    out.update(prometheus.render_configs(repo))
    out.update(grafana.render_dashboards(repo))
    return out


def orphans(root: Path, rendered: dict[str, str]) -> list[str]:
    """Generated per-service files (they carry the banner) that `rendered` does not contain."""
    out = []
    for folder, suffix in PER_SERVICE_DIRS:
        for path in sorted((root / folder).glob(f"*{suffix}")):
            rel = f"{folder}/{path.name}"
            if rel not in rendered and is_generated(path):
                out.append(rel)
    return out


EXECUTABLE = {scripts.HEALTHCHECK, scripts.RESTART_ALL}
