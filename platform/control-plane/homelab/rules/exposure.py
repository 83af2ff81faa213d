"""HL3xx: nothing reaches the LAN without a recorded approval; optimizers never do."""

from __future__ import annotations

from collections.abc import Iterator

from homelab.load.repo import APPROVALS_FILE
from homelab.rules.base import Context, Violation


def check(ctx: Context) -> Iterator[Violation]:
    repo = ctx.repo
    approvals = {a.id: a for a in repo.approvals.approvals}
    for svc in repo.services.values():
        spec, src = svc.spec, svc.source
        lan = not spec.binds_loopback
        if lan and spec.kind == "optimizer":
            yield Violation(src.path, src.line("bind"), "HL302", "optimizer-on-lan",
                            f"optimizer {spec.name} binds {spec.bind}; optimizers bind loopback only "
                            "and no approval overrides that")
            continue
        if lan != (spec.exposure == "lan"):
            yield Violation(src.path, src.line("exposure") or src.line("bind"), "HL303", "exposure-mismatch",
                            f"exposure is {spec.exposure!r} but bind {spec.bind} is "
                            f"{'not ' if lan else ''}loopback")
        if not lan:
            if spec.approval:
                yield Violation(src.path, src.line("approval"), "HL303", "exposure-mismatch",
                                f"approval {spec.approval} given but {spec.name} binds loopback")
            continue
        approval = approvals.get(spec.approval or "")
        if approval is None:
            what = f"approval {spec.approval} is not in {APPROVALS_FILE}" if spec.approval \
                else "no `approval:` is given"
            yield Violation(src.path, src.line("approval") or src.line("bind"), "HL301",
                            "lan-without-approval",
                            f"{spec.name} binds {spec.bind} (LAN) but {what}")
        elif approval.service != spec.name or approval.host != spec.host:
            yield Violation(src.path, src.line("approval"), "HL301", "lan-without-approval",
                            f"approval {approval.id} is for {approval.service} on {approval.host}, "
                            f"not {spec.name} on {spec.host}")
    yield from _reviews(ctx)
    # A loopback-bound service can only be called from its own host.
    for svc in repo.services.values():
        for i, up in enumerate(svc.spec.upstreams):
            target = repo.services.get(up)
            if target and target.spec.host != svc.spec.host and target.spec.bind is not None \
                    and target.spec.binds_loopback:
                yield Violation(svc.source.path, svc.source.line("upstreams", i), "HL304",
                                "unreachable-upstream",
                                f"{svc.name} on {svc.spec.host} calls {up}, which binds loopback on "
                                f"{target.spec.host}")
    gateway = repo.services.get(repo.mesh.gateway.service)
    if gateway:
        for svc in repo.by_kind("backend", "optimizer"):
            if svc.spec.host != gateway.spec.host and svc.spec.binds_loopback and svc.spec.bind:
                yield Violation(svc.source.path, svc.source.line("bind"), "HL304",
                                "unreachable-upstream",
                                f"the gateway on {gateway.spec.host} cannot reach {svc.name}, which "
                                f"binds loopback on {svc.spec.host}")


def _norm(person: str) -> str:
    return " ".join(person.lower().split())


def _reviews(ctx: Context) -> Iterator[Violation]:
    """HL305: a reviewer who is neither the requester nor an author of the change adding it."""
    src = ctx.repo.sources[APPROVALS_FILE]
    # New = not in the oldest base (the change's base when there is one, else HEAD).
    oldest = ctx.history.bases[-1] if ctx.history.bases else None
    known = {a.id for a in oldest.approvals.approvals} if oldest and oldest.approvals else set()
    people = {_norm(p) for p in ctx.history.change_people}
    for i, a in enumerate(ctx.repo.approvals.approvals):
        line = src.line("approvals", i, "reviewer") or src.line("approvals", i)
        if not a.reviewer:
            yield Violation(APPROVALS_FILE, line, "HL305", "approval-unreviewed",
                            f"{a.id} ({a.service} on {a.host}) names no `reviewer`")
        elif _norm(a.reviewer) == _norm(a.who):
            yield Violation(APPROVALS_FILE, line, "HL305", "approval-unreviewed",
                            f"{a.id} is reviewed by its own requester ({a.who})")
        elif ctx.history.bases and a.id not in known and _norm(a.reviewer) in people:
            yield Violation(APPROVALS_FILE, line, "HL305", "approval-unreviewed",
                            f"{a.id} is added by this change and names its author "
                            f"({a.reviewer}) as reviewer")
