"""`homelab rm NAME`: take a service out of the mesh cleanly, planned in memory first.

Its folder goes; so do its derived files (unit, env template, registry entry, routes, fallbacks
to its models, aliases of its models, and its place in every other contract's `upstreams` and
`run.after`). Its ports are retired, never freed: stale clients must never reach whatever gets
the port next. LAN approvals stay: they are the record of a past decision.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from homelab.errors import InputError
from homelab.load.repo import PORTS_FILE, Repo, Service
from homelab.render.plan import orphans, render_all
from homelab.scaffold import dependents, edits, staging

ARG = "homelab rm"


@dataclass
class Removal:
    folder: str  # the service folder, deleted last
    write: dict[str, str] = field(default_factory=dict)
    delete: list[str] = field(default_factory=list)  # derived files no contract produces any more
    retired: list[int] = field(default_factory=list)


def _blockers(repo: Repo, gone: Service) -> list[str]:
    """What would break: said before anything is written."""
    names = {m.name for m in gone.spec.models} | {a.name for a in gone.spec.aliases}
    problems = []
    if gone.name == repo.mesh.gateway.service:
        problems.append(f"{gone.name} is the mesh's gateway (mesh/mesh.yaml gateway.service); "
                        "name another gateway there first")
    for svc in repo.by_kind("optimizer"):
        if svc.name != gone.name and svc.spec.aliases and \
                all(a.target in names for a in svc.spec.aliases):
            problems.append(f"optimizer {svc.name} serves only aliases of {gone.name}'s models "
                            f"({', '.join(sorted(names))}); remove it first (homelab rm {svc.name})")
    for svc in repo.services.values():
        c = svc.spec.client
        defaults = {v.default for v in svc.spec.env if v.default} | ({c.default_model} if c else set())
        if svc.name != gone.name and defaults & names:
            problems.append(f"{svc.name} defaults to model {sorted(defaults & names)[0]}; give it "
                            "another default model in its contract first")
    return problems


def plan_rm(repo: Repo, name: str, today: dt.date) -> Removal:
    gone = repo.services.get(name)
    if gone is None:
        raise InputError.one(ARG, f"NAME: no service named {name!r} (known: "
                                  f"{', '.join(sorted(repo.services))})")
    if problems := _blockers(repo, gone):
        raise InputError([InputError.one(ARG, p).problems[0] for p in problems])
    removal = Removal(gone.rel_dir)
    ports_text = (repo.root / PORTS_FILE).read_text(encoding="utf-8")
    src = repo.sources[PORTS_FILE]
    for i, p in enumerate(repo.ports.ports):
        if p.service == name and p.status == "active":
            ports_text = edits.ledger_retire(ports_text, src.line("ports", i) or 0, PORTS_FILE, today)
            removal.retired.append(p.port)
    if removal.retired:
        removal.write[PORTS_FILE] = ports_text
    removal.write.update(dependents.on_remove(repo, gone))
    after = staging.staged(repo, removal.write, drop=name)
    rendered = render_all(after)
    removal.write.update(rendered)
    inside = gone.rel_dir + "/"
    removal.delete = sorted({rel for rel in render_all(repo) if rel not in rendered
                             and not rel.startswith(inside)} | set(orphans(repo.root, rendered)))
    return removal
