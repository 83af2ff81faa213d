"""The backend contract's `models` list, edited in memory and rendered with every derived file
(router.yaml routes the new name), then written all or nothing (render/writer.py)."""

from __future__ import annotations

from pathlib import Path

from ruamel.yaml.comments import CommentedMap

from homelab.load.repo import SPEC_FILE, Repo, Service
from homelab.render.plan import render_all
from homelab.render.writer import write_all
from homelab.render.plan import EXECUTABLE
from homelab.scaffold import edits, staging


def _spec_path(svc: Service) -> str:
    return f"{svc.rel_dir}/{SPEC_FILE}"


def _entry(name: str) -> CommentedMap:
    node = CommentedMap(name=name, upstream_id=name)
    node.fa.set_flow_style()
    return node


def plan_add(repo: Repo, backend: Service, name: str) -> dict[str, str]:
    """{relative path: content}: the contract with `name` appended to its models, and every
    derived file rendered from the mesh as it will be."""
    rel = _spec_path(backend)
    text = (repo.root / rel).read_text(encoding="utf-8")
    new = edits.edit_contract(text, rel, lambda fm: fm["models"].append(_entry(name)))
    return _with_rendered(repo, {rel: new})


def plan_remove(repo: Repo, name: str, *, drop_fallbacks: bool) -> dict[str, str]:
    """The contract without model `name` (and, with `drop_fallbacks`, every other model's
    fallbacks without it), plus the derived files."""
    files: dict[str, str] = {}
    for svc in repo.by_kind("backend"):
        serves = any(m.name == name for m in svc.spec.models)
        falls = drop_fallbacks and any(name in m.fallbacks for m in svc.spec.models)
        if not (serves or falls):
            continue
        rel = _spec_path(svc)

        def change(fm: CommentedMap) -> None:
            models = fm["models"]
            for i in reversed(range(len(models))):
                if models[i].get("name") == name:
                    del models[i]
                elif drop_fallbacks:
                    edits.remove_from_list(models[i], "fallbacks", name)

        files[rel] = edits.edit_contract((repo.root / rel).read_text(encoding="utf-8"), rel, change)
    return _with_rendered(repo, files)


def _with_rendered(repo: Repo, files: dict[str, str]) -> dict[str, str]:
    after = staging.staged(repo, files)
    return {**files, **render_all(after)}


def write(root: Path, files: dict[str, str]) -> list[str]:
    return write_all(root, files, EXECUTABLE)
