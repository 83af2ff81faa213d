"""HL2xx: ports are immutable. The ledger records every port ever allocated; nothing is reused,
nothing is edited, and a service has one active port."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from homelab.contract.mesh import PortEntry
from homelab.load.repo import PORTS_FILE
from homelab.rules.base import Context, Violation


def check(ctx: Context) -> Iterator[Violation]:
    yield from _contracts(ctx)
    yield from _ledger(ctx)
    yield from _against_bases(ctx)


def _contracts(ctx: Context) -> Iterator[Violation]:
    repo = ctx.repo
    ledger = {(p.host, p.port): p for p in repo.ports.ports}
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
                            f"allocated{hint}")
        elif entry.status == "retired":
            yield Violation(src.path, src.line("port"), "HL204", "retired-port-reused",
                            f"{spec.host}:{spec.port} was retired ({entry.service}); retired ports "
                            "stay reserved")
        elif entry.service != spec.name:
            yield Violation(src.path, src.line("port"), "HL202", "port-ledger-mismatch",
                            f"{spec.host}:{spec.port} belongs to {entry.service} in the ledger, "
                            f"not {spec.name}")
    for (host, port), names in sorted(on_port.items()):
        if len(names) > 1:
            for name in sorted(names)[1:]:
                src = repo.services[name].source
                yield Violation(src.path, src.line("port"), "HL203", "port-collision",
                                f"{host}:{port} is used by {', '.join(sorted(names))}")


def _ledger(ctx: Context) -> Iterator[Violation]:
    repo, src = ctx.repo, ctx.repo.sources[PORTS_FILE]
    active: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, p in enumerate(repo.ports.ports):
        if p.status != "active":
            continue
        active[(p.host, p.service)].append(i)
        svc = repo.services.get(p.service)
        why = None
        if svc is None:
            why = "which has no contract"
        elif svc.spec.host != p.host:
            why = f"which runs on {svc.spec.host}, not {p.host}"
        elif svc.spec.port is None:
            why = "which declares no port"
        if why:
            yield Violation(PORTS_FILE, src.line("ports", i), "HL206", "ledger-orphan",
                            f"{p.host}:{p.port} is active for {p.service}, {why}")
    for (host, service), rows in sorted(active.items()):
        if len(rows) < 2:
            continue
        svc = repo.services.get(service)
        used = svc.spec.port if svc and svc.spec.host == host else None
        ports = [repo.ports.ports[i].port for i in rows]
        extra = [i for i in rows if repo.ports.ports[i].port != used] if used in ports else rows[1:]
        uses = f"; the contract uses {used}" if used in ports else ""
        for i in extra:
            yield Violation(PORTS_FILE, src.line("ports", i), "HL208", "ledger-service-twice",
                            f"{service} has {len(rows)} active ledger lines on {host} "
                            f"({', '.join(map(str, ports))}){uses}")


def _changed(old: PortEntry, new: PortEntry) -> bool:
    return (new.service != old.service or new.since != old.since
            or (old.status == "retired" and (new.status != "retired" or new.retired != old.retired)))


def _against_bases(ctx: Context) -> Iterator[Violation]:
    """Lines of the ledger at each base must all still be here, unchanged but for retirement."""
    repo, src = ctx.repo, ctx.repo.sources[PORTS_FILE]
    now = {(p.host, p.port): (i, p) for i, p in enumerate(repo.ports.ports)}
    seen: set[tuple[str, int]] = set()
    for base in ctx.history.bases:
        for old in base.ledger.ports if base.ledger else []:
            key = (old.host, old.port)
            if key in seen:
                continue  # reported against an earlier base (HEAD first: the most direct)
            found = now.get(key)
            if found is None:
                seen.add(key)
                yield Violation(PORTS_FILE, src.line("ports"), "HL205", "ledger-line-removed",
                                f"{old.host}:{old.port} ({old.service}) is in the ledger at "
                                f"{base.label} and has been removed; ledger lines are permanent")
            elif _changed(old, found[1]):
                seen.add(key)
                new = found[1]
                yield Violation(PORTS_FILE, src.line("ports", found[0]), "HL207", "ledger-line-edited",
                                f"{old.host}:{old.port} was edited since {base.label} "
                                f"({old.service} since {old.since}, {old.status} -> {new.service} "
                                f"since {new.since}, {new.status}); only active -> retired is allowed")
