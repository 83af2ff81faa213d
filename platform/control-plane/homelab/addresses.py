"""Where a service is reached from: pure functions over a loaded repo."""

from __future__ import annotations

import ipaddress

from meshkit.addresses import NeverCall, reached_at

from homelab.load.repo import Repo, Service


def reach_address(repo: Repo, svc: Service) -> str | None:
    """The address peers use: the bind address, or the host's address for a wildcard bind."""
    bind = svc.spec.bind
    if bind is None:
        return None
    if ipaddress.ip_address(bind).is_unspecified:
        return repo.host_address(svc.spec.host) or "127.0.0.1"
    return bind


def base_url(repo: Repo, svc: Service, *, local: bool = False) -> str | None:
    """http://addr:port; `local` probes a wildcard-bound service on loopback (same host)."""
    address = reach_address(repo, svc)
    if address is None or svc.spec.port is None:
        return None
    if local and svc.spec.bind and ipaddress.ip_address(svc.spec.bind).is_unspecified:
        address = "127.0.0.1"
    if ":" in address:
        address = f"[{address}]"
    return f"http://{address}:{svc.spec.port}"


def health_url(repo: Repo, svc: Service, *, local: bool = False) -> str | None:
    url = base_url(repo, svc, local=local)
    return url + svc.spec.health.path if url and svc.spec.health else None


# Kinds a client (or interface) must reach only through the gateway.
NOT_FOR_CLIENTS = ("backend", "optimizer")


def never_call(repo: Repo) -> list[NeverCall]:
    """Every address:port of a backend or optimizer: what `check` (HL401) refuses in a client and
    what the view hands every client to refuse (one computation, so the two cannot disagree)."""
    out: set[NeverCall] = set()
    for svc in repo.by_kind(*NOT_FOR_CLIENTS):
        if svc.spec.bind is None or svc.spec.port is None:
            continue
        for address in reached_at(svc.spec.bind, repo.host_address(svc.spec.host)):
            out.add(NeverCall(address, svc.spec.port, svc.name, svc.spec.kind))
    return sorted(out)


__all__ = ["NOT_FOR_CLIENTS", "base_url", "health_url", "never_call", "reach_address"]
