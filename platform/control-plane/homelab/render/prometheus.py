"""The Prometheus scrape config of every service of kind observer, from the contracts:
one job per service declaring `metrics`, on its reach address.

A key is never written here: a target whose metrics need one gets
`credentials_file: keys/<ENV VAR>`, a path relative to the config file that the scraper's start
script fills from its own environment at start (mode 0600, outside git).
"""

from __future__ import annotations

from typing import Any

import yaml

from homelab.addresses import base_url
from homelab.load.repo import Repo, Service
from homelab.render.header import banner

CONFIG = "config/prometheus.yml"  # inside the observer's service folder
KEYS_DIR = "keys"  # next to the config the scraper runs with
SCRAPE_INTERVAL = "5s"  # `homelab top` refreshes every second; graphs need less
SCRAPE_TIMEOUT = "4s"


def observers(repo: Repo) -> list[Service]:
    return sorted(repo.by_kind("observer"), key=lambda s: s.name)


def config_path(observer: Service) -> str:
    return f"{observer.rel_dir}/{CONFIG}"


def credentials_file(env_name: str) -> str:
    return f"{KEYS_DIR}/{env_name}"


def target(repo: Repo, observer: Service, svc: Service) -> str | None:
    """host:port as the observer reaches it (loopback for a wildcard bind on its own host)."""
    url = base_url(repo, svc, local=svc.spec.host == observer.spec.host)
    return url.removeprefix("http://") if url else None


def scrape_config(repo: Repo, observer: Service) -> dict[str, Any]:
    jobs = []
    for svc in sorted(repo.services.values(), key=lambda s: s.name):
        metrics = svc.spec.metrics
        address = target(repo, observer, svc) if metrics else None
        if metrics is None or address is None:
            continue
        job: dict[str, Any] = {"job_name": svc.name, "metrics_path": metrics.path}
        if metrics.auth_env:
            job["authorization"] = {"type": "Bearer",
                                    "credentials_file": credentials_file(metrics.auth_env)}
        job["static_configs"] = [{"targets": [address],
                                  "labels": {"service": svc.name, "host": svc.spec.host,
                                             "kind": svc.spec.kind}}]
        jobs.append(job)
    return {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "scrape_timeout": SCRAPE_TIMEOUT,
                   "evaluation_interval": "15s", "external_labels": {"mesh": repo.mesh.name}},
        "scrape_configs": jobs,
    }


def render_config(repo: Repo, observer: Service) -> str:
    body = yaml.safe_dump(scrape_config(repo, observer), sort_keys=False, default_flow_style=False)
    return (banner("the SERVICE_SPEC.md `metrics` blocks") +
            f"# Keys: `credentials_file: {KEYS_DIR}/NAME` is written from env var NAME by "
            "scripts/start.sh, next to the copy of this file Prometheus runs with.\n" + body)


def render_configs(repo: Repo) -> dict[str, str]:
    return {config_path(o): render_config(repo, o) for o in observers(repo)}
