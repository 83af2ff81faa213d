"""HL7xx: Python services are uv projects with a committed lock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import PurePosixPath

from homelab.rules.base import Context, Violation


def check(ctx: Context) -> Iterator[Violation]:
    for svc in ctx.repo.services.values():
        project = svc.spec.run.uv_project if svc.spec.run else None
        if project is None:  # not Python, or external (not run by the mesh)
            continue
        base = PurePosixPath(svc.rel_dir) / project
        for fname in ("pyproject.toml", "uv.lock"):
            if not (ctx.root / base / fname).is_file():
                src = svc.source
                yield Violation(src.path, src.line("run", "uv_project") or src.line("run"), "HL701",
                                "uv-project-missing",
                                f"{svc.name} runs with uv (run.uv_project) but {base / fname} is missing")
