"""A Grafana dashboard (JSON, importable) for every service of kind observer, built from
the metric names in homelab.observe.names: the same names `homelab top` reads."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from homelab.load.repo import Repo, Service
from homelab.observe.names import GATEWAY, OV_SERVER, Family
from homelab.render import prometheus

DASHBOARD = "grafana/homelab-llm.json"  # inside the observer's service folder
WINDOW = "1m"
DS = {"type": "prometheus", "uid": "${datasource}"}


@dataclass(frozen=True)
class Panel:
    title: str
    unit: str  # Grafana unit id
    queries: tuple[tuple[str, str], ...]  # (PromQL, legend)
    description: str = ""


def _rate(counter: str, by: str = "model") -> str:
    return f"sum by ({by}) (rate({counter}[{WINDOW}]))"


def _quantile(q: float, histogram: str) -> str:
    return f"histogram_quantile({q}, sum by (le, model) (rate({histogram}_bucket[{WINDOW}])))"


def _latency(title: str, histogram: str, description: str) -> Panel:
    return Panel(title, "s", ((_quantile(0.5, histogram), "p50 {{model}}"),
                              (_quantile(0.99, histogram), "p99 {{model}}")), description)


def _required(family: Family, field: str) -> str:
    value = getattr(family, field)
    assert value, f"{family.prefix} has no {field}"
    return value


def panels() -> list[tuple[str, list[Panel]]]:
    """Rows of panels, top to bottom: what a user asks first (is it up, how busy, how fast)."""
    ov = OV_SERVER
    return [
        ("Mesh", [
            Panel("Targets up", "short", (("up", "{{job}}"),),
                  "1 when Prometheus's last scrape of the service succeeded."),
            Panel("Gateway requests/s", "reqps",
                  ((_rate(GATEWAY.requests, "model, status"), "{{model}} {{status}}"),)),
            Panel("Gateway requests in flight", "short",
                  ((_required(GATEWAY, "in_flight"), "in flight"),)),
        ]),
        ("Latency", [
            _latency("Gateway request duration", GATEWAY.request_duration,
                     "Whole request as the client sees it, per public model name."),
            _latency("Gateway time to first token", GATEWAY.time_to_first_token,
                     "Streaming requests: until the first chunk."),
            _latency("Backend request duration", ov.request_duration, "Inside ov-server."),
            _latency("Backend time to first token", ov.time_to_first_token, ""),
            _latency("Backend time per output token", _required(ov, "time_per_output_token"), ""),
        ]),
        ("Inference", [
            Panel("Backend requests/s", "reqps",
                  ((_rate(ov.requests, "model, status"), "{{model}} {{status}}"),)),
            Panel("Tokens/s", "short",
                  ((_rate(_required(ov, "completion_tokens")), "completion {{model}}"),
                   (_rate(_required(ov, "prompt_tokens")), "prompt {{model}}"))),
            Panel("Queue (waiting sequences)", "short",
                  ((f"sum by (model) ({_required(ov, 'waiting')})", "waiting {{model}}"),
                   (f"sum by (model) ({_required(ov, 'running')})", "running {{model}}"))),
            Panel("KV cache usage", "percentunit",
                  ((f"max by (model) ({_required(ov, 'kv_cache_usage')})", "{{model}}"),)),
            Panel("Engine restarts (1h)", "short",
                  ((f"sum by (model, cause) (increase({_required(ov, 'engine_restarts')}[1h]))",
                    "{{model}} {{cause}}"),),
                  "An engine process died and was started again (see `homelab logs ov-server`)."),
            Panel("Models loaded", "short",
                  ((f"max by (model) ({_required(ov, 'model_loaded')})", "{{model}}"),)),
        ]),
    ]


def dashboard(repo: Repo) -> dict[str, Any]:
    out: list[dict[str, Any]] = []
    panel_id, y = 1, 0
    for row_title, row in panels():
        out.append({"id": panel_id, "type": "row", "title": row_title, "collapsed": False,
                    "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []})
        panel_id, y = panel_id + 1, y + 1
        width = 24 // min(len(row), 3)
        for i, panel in enumerate(row):
            x, dy = (i % 3) * width, (i // 3) * 8
            out.append({
                "id": panel_id, "type": "timeseries", "title": panel.title,
                "description": panel.description, "datasource": DS,
                "gridPos": {"h": 8, "w": width, "x": x, "y": y + dy},
                "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
                "options": {"legend": {"displayMode": "list", "placement": "bottom"},
                            "tooltip": {"mode": "multi"}},
                "targets": [{"refId": chr(ord("A") + j), "datasource": DS, "expr": expr,
                             "legendFormat": legend}
                            for j, (expr, legend) in enumerate(panel.queries)],
            })
            panel_id += 1
        y += 8 * ((len(row) + 2) // 3)
    return {
        "__comment": "GENERATED by `uv run homelab render` from homelab/observe/names.py; do not "
                     "edit by hand. Import in Grafana (Dashboards > New > Import), pick the "
                     "Prometheus data source.",
        "title": f"homelab-llm: {repo.mesh.name}",
        "uid": f"homelab-llm-{repo.mesh.name}",
        "tags": ["homelab-llm"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "10s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {"list": [{"name": "datasource", "label": "Prometheus", "type": "datasource",
                                 "query": "prometheus", "current": {}, "hide": 0}]},
        "panels": out,
    }


def dashboard_path(observer: Service) -> str:
    return f"{observer.rel_dir}/{DASHBOARD}"


def render_dashboard(repo: Repo) -> str:
    return json.dumps(dashboard(repo), indent=2) + "\n"


def render_dashboards(repo: Repo) -> dict[str, str]:
    return {dashboard_path(o): render_dashboard(repo) for o in prometheus.observers(repo)}


def queries(rendered: str) -> list[str]:
    """Every PromQL expression of a rendered dashboard (what the tests check)."""
    data = json.loads(rendered)
    return [t["expr"] for p in data["panels"] for t in p.get("targets", [])]
