"""The scrape config and the dashboard rendered from the contracts; HL605."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import by_code, edit, rerender, violations, write

from homelab.load.repo import load_repo
from homelab.observe import names
from homelab.render import grafana, prometheus
from homelab.render.plan import render_all

REAL_REPO = Path(__file__).resolve().parents[4]
WATCH = "layer-observability/watch"
WATCH_SPEC = """\
---
name: watch
kind: observer
layer: observability
description: Scrapes the mesh.
host: box
bind: 127.0.0.1
port: 9090
endpoints:
  - {method: GET, path: /-/ready}
health: {path: /-/ready, required: false}
env:
  - {name: LITELLM_MASTER_KEY, secret: true, file: /etc/homelab-llm/watch.env}
run:
  uv_project: null
  command: [scripts/start.sh, "{bind}", "{port}"]
  autostart: false
systemd: {unit: homelab-watch.service}
metrics: {path: /metrics}
---
# watch
"""
GW = "layer-gateway/gw/SERVICE_SPEC.md"
OV = "layer-inference/ov/SERVICE_SPEC.md"


def add_observer(root: Path) -> None:
    write(root, f"{WATCH}/SERVICE_SPEC.md", WATCH_SPEC)
    write(root, f"{WATCH}/ARCHITECTURE.md", "# watch architecture\n")
    write(root, f"{WATCH}/AGENTS.md", "# watch agents\n")
    edit(root, "mesh/ports.yaml", "ports:\n",
         "ports:\n  - {host: box, port: 9090, service: watch, since: 2026-12-01}\n")
    edit(root, GW, "systemd: {unit: homelab-gw.service}\n",
         "systemd: {unit: homelab-gw.service}\nmetrics: {path: /metrics, auth_env: LITELLM_MASTER_KEY}\n")
    text = (root / OV).read_text()
    (root / OV).write_text(text.replace("\nmodels:", "\nmetrics: {path: /metrics}\nmodels:", 1))
    rerender(root)


def test_one_job_per_exporter_with_the_key_as_a_file(mesh: Path) -> None:
    add_observer(mesh)
    assert violations(mesh, history=False) == []
    config = yaml.safe_load((mesh / WATCH / "config/prometheus.yml").read_text())
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    assert sorted(jobs) == ["gw", "ov", "watch"]
    # The gateway binds 0.0.0.0: scraped on loopback from its own host.
    assert jobs["gw"]["static_configs"][0]["targets"] == ["127.0.0.1:4000"]
    assert jobs["gw"]["authorization"] == {"type": "Bearer",
                                           "credentials_file": "keys/LITELLM_MASTER_KEY"}
    assert "authorization" not in jobs["ov"]
    assert jobs["ov"]["static_configs"][0]["labels"] == {"service": "ov", "host": "box",
                                                         "kind": "backend"}


def test_the_rendered_config_never_holds_a_key(mesh: Path) -> None:
    add_observer(mesh)
    key = "sk-" + "k3y" * 12
    write(mesh, "layer-gateway/gw/config/env.local", f"LITELLM_MASTER_KEY={key}\n")
    write(mesh, ".homelab/secrets.env", f"LITELLM_MASTER_KEY={key}\n")
    write(mesh, "/etc-not-used", "")
    rendered = render_all(load_repo(mesh))
    assert f"{WATCH}/config/prometheus.yml" in rendered
    assert not [rel for rel, text in rendered.items() if key in text]


def test_hl605_observer_without_the_key(mesh: Path) -> None:
    add_observer(mesh)
    edit(mesh, f"{WATCH}/SERVICE_SPEC.md",
         "  - {name: LITELLM_MASTER_KEY, secret: true, file: /etc/homelab-llm/watch.env}\n",
         "  - {name: OTHER, file: /etc/homelab-llm/watch.env}\n")
    rerender(mesh)
    found = by_code(mesh, "HL605")
    assert [(v.path, v.message) for v in found] == [
        (f"{WATCH}/SERVICE_SPEC.md",
         "watch scrapes gw, whose metrics need LITELLM_MASTER_KEY, but does not declare "
         "LITELLM_MASTER_KEY")]
    assert found[0].line == 12  # its `env:` line


def test_hl605_metrics_key_the_service_does_not_declare(mesh: Path) -> None:
    add_observer(mesh)
    edit(mesh, OV, "\nmetrics: {path: /metrics}\n", "\nmetrics: {path: /metrics, auth_env: OV_KEY}\n")
    rerender(mesh)
    messages = [v.message for v in by_code(mesh, "HL605")]
    assert "metrics.auth_env OV_KEY is not a secret env var of ov" in messages
    assert "watch scrapes ov, whose metrics need OV_KEY, but does not declare OV_KEY" in messages


def test_metrics_without_a_port_is_unusable_input(mesh: Path) -> None:
    from homelab.errors import InputError

    spec = "layer-orchestration/agent/SERVICE_SPEC.md"
    edit(mesh, spec, "bind: 127.0.0.1\nport: 4030\n", "")
    edit(mesh, spec, "\nrun:", "\nmetrics: {path: /m}\nrun:")
    with pytest.raises(InputError, match="`metrics` needs a port") as caught:
        load_repo(mesh)
    assert spec in str(caught.value.problems[0])


def test_the_real_config_passes_promtool(tmp_path: Path) -> None:
    """Prometheus's own checker accepts what render writes for this repository (the keys it
    names exist next to it, as start.sh leaves them)."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("needs promtool (Debian package prometheus; `./homelab test` installs it)")
    repo = load_repo(REAL_REPO)
    observer = prometheus.observers(repo)[0]
    config = tmp_path / "prometheus.yml"
    config.write_text(prometheus.render_config(repo, observer))
    (tmp_path / "keys").mkdir()
    for name in re.findall(r"credentials_file: keys/(\w+)", config.read_text()):
        (tmp_path / "keys" / name).write_text("not-a-real-key")
    out = subprocess.run([promtool, "check", "config", str(config)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_dashboard_query_names_a_known_metric() -> None:
    rendered = grafana.render_dashboard(load_repo(REAL_REPO))
    known = {n for f in names.FAMILIES for n in f.all()} | {"up"}
    used = metric_names(grafana.queries(rendered))
    assert used - known == set()
    # Every figure `homelab top` reads is also graphed.
    assert {n for f in names.FAMILIES for n in f.all()} - used == set()


FUNCTIONS = {"sum", "by", "rate", "histogram_quantile", "max", "increase", "le", "model",
             "status", "cause"}


def metric_names(queries: list[str]) -> set[str]:
    """Metric names in PromQL expressions (histograms by base name)."""
    out = set()
    for query in queries:
        for token in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", re.sub(r"\[[^\]]*\]|\"[^\"]*\"", "", query)):
            if token not in FUNCTIONS:
                out.add(token.removesuffix("_bucket"))
    return out


def test_start_script_passes_shellcheck() -> None:
    if shutil.which("shellcheck") is None:
        pytest.skip("needs shellcheck (Debian package; `./homelab test` installs it)")
    script = REAL_REPO / "layer-observability/prometheus/scripts/start.sh"
    out = subprocess.run(["shellcheck", str(script)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout
