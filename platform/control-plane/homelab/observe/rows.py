"""What `homelab top` shows: one row per service (health, scrape, per-model figures), from the
latest sweep and the one before it. Pure: sweeps in, rows and JSON out."""

from __future__ import annotations

from dataclasses import dataclass, field

from homelab.observe import names, stats
from homelab.observe.collect import Sweep


@dataclass(frozen=True)
class ServiceRow:
    service: str
    host: str
    healthy: bool | None  # None: the contract declares no health check
    required: bool
    health_error: str | None
    metrics_url: str | None  # None: the service exports no metrics
    metrics_error: str | None
    in_flight: float | None = None
    models: dict[str, stats.ModelFigures] = field(default_factory=dict)

    def as_json(self) -> dict[str, object]:
        return {
            "service": self.service, "host": self.host,
            "state": "up" if self.healthy else ("down" if self.healthy is False else "unknown"),
            "healthy": self.healthy, "required": self.required, "health_error": self.health_error,
            "metrics_url": self.metrics_url, "metrics_error": self.metrics_error,
            "in_flight": self.in_flight,
            "models": {m: f.as_json() for m, f in self.models.items()},
        }


def rows(current: Sweep, previous: Sweep | None = None) -> list[ServiceRow]:
    health = {r.service: r for r in current.health}
    out = []
    for service in sorted(set(health) | set(current.scrapes)):
        result = health.get(service)
        scrape = current.scrapes.get(service)
        before = previous.scrapes.get(service) if previous is not None else None
        models: dict[str, stats.ModelFigures] = {}
        in_flight = None
        if scrape is not None and scrape.samples is not None:
            usable_before = before is not None and before.samples is not None
            seconds = scrape.at - before.at if usable_before else 0.0
            for family in stats.families_in(scrape.samples, names.FAMILIES):
                models.update(stats.model_figures(
                    family, scrape.samples, before.samples if usable_before else None, seconds))
                in_flight = stats.single_gauge(scrape.samples, family.in_flight) if family.in_flight \
                    else in_flight
        out.append(ServiceRow(
            service=service,
            host=result.host if result else "",
            healthy=result.ok if result else None,
            required=result.required if result else True,
            health_error=result.error if result else None,
            metrics_url=scrape.url if scrape else None,
            metrics_error=scrape.error if scrape else None,
            in_flight=in_flight,
            models=models,
        ))
    return out


def mesh_down(view: list[ServiceRow]) -> bool:
    """Nothing answers: no health check passes and no metrics endpoint answers."""
    checked = [r for r in view if r.healthy is not None or r.metrics_url is not None]
    return bool(checked) and not any(
        r.healthy or (r.metrics_url is not None and r.metrics_error is None) for r in checked)


def as_json(view: list[ServiceRow], window_s: float | None) -> dict[str, object]:
    up = [r.service for r in view if r.healthy]
    down = [r.service for r in view if r.healthy is False]
    return {"window_s": None if window_s is None else round(window_s, 3),
            "up": up, "down": down, "services": [r.as_json() for r in view]}
