"""Where a service is reached from: pure functions over a loaded repo."""

from __future__ import annotations

import ipaddress

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


__all__ = ["base_url", "health_url", "reach_address"]
