"""HL2xx: ports are immutable. The ledger records every port ever allocated; nothing is reused."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from homelab.load.repo import PORTS_FILE
from homelab.rules.base import Context, Violation


def check(ctx: Context) -> Iterator[Violation]:
    repo, ledger_src = ctx.repo, ctx.repo.sources[PORTS_FILE]
    ledger = {(p.host, p.port): (i, p) for i, p in enumerate(repo.ports.ports)}
    on_port: dict[tuple[str, int], list[str]] = defaultdict(list)
    for svc in repo.services.values():
        spec, src = svc.spec, svc.source
        if spec.port is None:
            continue
        key = (spec.host, spec.port)
        on_port[key].append(spec.name)
        entry = ledger.get(key)
        if entry is None:
            others = [p.port for p in repo.ports.ports if p.service == spec.name and p.host == spec.host
                      and p.status == "active"]
            hint = f" (the ledger gives it {', '.join(map(str, others))})" if others else ""
            yield Violation(src.path, src.line("port"), "HL201", "port-not-in-ledger",
                            f"{spec.name} uses {spec.host}:{spec.port}, which the ledger never "
                            f"allocated{hint}; ports are immutable, allocate a new one with `homelab new`")
            continue
        _, p = entry
        if p.status == "retired":
            yield Violation(src.path, src.line("port"), "HL204", "retired-port-reused",
                            f"{spec.host}:{spec.port} was retired ({p.service}); retired ports stay reserved")
        elif p.service != spec.name:
            yield Violation(src.path, src.line("port"), "HL202", "port-ledger-mismatch",
                            f"{spec.host}:{spec.port} belongs to {p.service} in the ledger, not {spec.name}")
    for (host, port), names in sorted(on_port.items()):
        if len(names) > 1:
            for name in sorted(names)[1:]:
                src = repo.services[name].source
                yield Violation(src.path, src.line("port"), "HL203", "port-collision",
                                f"{host}:{port} is used by {', '.join(sorted(names))}")
    for i, p in enumerate(repo.ports.ports):
        if p.status == "active" and p.service not in repo.services:
            yield Violation(PORTS_FILE, ledger_src.line("ports", i), "HL206", "ledger-orphan",
                            f"{p.host}:{p.port} is active for {p.service}, which has no contract; "
                            "mark it `status: retired`")
    if ctx.base_ledger is not None:
        now = {(p.host, p.port): p for p in repo.ports.ports}
        for old in ctx.base_ledger.ports:
            new = now.get((old.host, old.port))
            if new is None:
                yield Violation(PORTS_FILE, None, "HL205", "ledger-line-removed",
                                f"{old.host}:{old.port} ({old.service}) was in the ledger at "
                                f"{ctx.base_ref} and has been removed; ledger lines are permanent")
            elif new.service != old.service or new.since != old.since or \
                    (old.status == "retired" and new.status != "retired"):
                i = repo.ports.ports.index(new)
                yield Violation(PORTS_FILE, ledger_src.line("ports", i), "HL207", "ledger-line-edited",
                                f"{old.host}:{old.port} was edited since {ctx.base_ref} "
                                f"({old.service}, {old.status} -> {new.service}, {new.status}); "
                                "only active -> retired is allowed")
