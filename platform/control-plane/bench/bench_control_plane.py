"""Benchmark: `homelab check` and `homelab render` on a synthetic 500-service mesh.

Prints wall time (best and median of N runs) for load, check and render, plus the ratio against
loading alone (the floor every command pays), all measured in this run. Target: well under 1 s
each on a 2-core machine.

    uv run python platform/control-plane/bench/bench_control_plane.py [--services 500] [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from conftest import build_mesh  # noqa: E402

from homelab.load.repo import load_repo  # noqa: E402
from homelab.render.plan import EXECUTABLE, render_all  # noqa: E402
from homelab.render.writer import write_all  # noqa: E402
from homelab.rules.engine import run_checks  # noqa: E402
from homelab.scaffold.edits import edit_contract  # noqa: E402

SPEC = """---
name: {name}
kind: backend
layer: inference
description: Synthetic backend {i}.
host: {host}
bind: 127.0.0.1
port: {port}
endpoints:
  - {{method: POST, path: /v1/chat/completions}}
  - {{method: GET, path: /v1/models}}
  - {{method: GET, path: /health}}
health: {{path: /health}}
env_file: /etc/homelab-llm/{name}.env
env:
  - {{name: SYN_{i}_KEY, secret: true, file: /etc/homelab-llm/{name}.env}}
run:
  command: [uv, run, server, --host, "{{bind}}", --port, "{{port}}"]
systemd: {{unit: homelab-{name}.service}}
models:
  - {{name: jerry-syn-{i}, upstream_id: syn-{i}}}
---
prose
"""


def synth(root: Path, n: int) -> None:
    build_mesh(root)
    hosts = 10
    mesh = (root / "mesh/mesh.yaml").read_text()
    mesh += "".join(f"  - {{name: h{h}, address: 127.0.1.{h + 1}, role: inference}}\n" for h in range(hosts))
    (root / "mesh/mesh.yaml").write_text(mesh)
    ledger = [(root / "mesh/ports.yaml").read_text().rstrip("\n")]
    # Each host runs its backends on loopback: give the gateway's host the backends it can reach.
    for i in range(n):
        name, host, port = f"syn-{i:03d}", "box", 4100 + i
        d = root / "layer-inference" / name
        d.mkdir(parents=True)
        (d / "SERVICE_SPEC.md").write_text(SPEC.format(name=name, i=i, host=host, port=port))
        (d / "ARCHITECTURE.md").write_text("arch\n")
        (d / "AGENTS.md").write_text("agents\n")
        (d / "pyproject.toml").write_text(f"[project]\nname = '{name}'\n")
        (d / "uv.lock").write_text("version = 1\n")
        ledger.append(f"  - {{host: {host}, port: {port}, service: {name}, since: 2026-11-27}}")
    (root / "mesh/ports.yaml").write_text("\n".join(ledger) + "\n")
    gateway = root / "layer-gateway/gw/SERVICE_SPEC.md"  # it calls every backend (HL407)
    gateway.write_text(edit_contract(gateway.read_text(), "gw", lambda node: node["upstreams"].extend(
        f"syn-{i:03d}" for i in range(n))))
    write_all(root, render_all(load_repo(root)), EXECUTABLE)
    subprocess.run(["git", "-C", str(root), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(root), "-c", "user.name=b", "-c", "user.email=b@b", "commit",
                    "-qm", "synthetic"], check=True)


def timed(fn, runs: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return min(samples), statistics.median(samples)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--services", type=int, default=500)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t = time.perf_counter()
        synth(root, args.services)
        print(f"synthetic mesh: {args.services + 5} services, built in {time.perf_counter() - t:.1f} s")
        violations = run_checks(load_repo(root))
        assert not violations, [v.as_text() for v in violations[:5]]
        load = timed(lambda: load_repo(root), args.runs)
        check = timed(lambda: run_checks(load_repo(root)), args.runs)
        render = timed(lambda: write_all(root, render_all(load_repo(root)), EXECUTABLE), args.runs)
        cli = timed(lambda: subprocess.run([sys.executable, "-m", "homelab.cli_entry", "--repo", str(root),
                                            "check"], check=True, capture_output=True), 3)
        print(f"{'step':28s} {'best s':>8s} {'median s':>9s} {'x load':>7s}")
        for label, (best, med) in (("load contracts", load), ("check (load + all rules)", check),
                                   ("render (load + write)", render), ("`homelab check` process", cli)):
            print(f"{label:28s} {best:8.3f} {med:9.3f} {med / load[1]:7.1f}")
        print(f"target: check and render well under 1 s -> "
              f"{'met' if max(check[1], render[1]) < 1.0 else 'NOT met'}")


if __name__ == "__main__":
    main()
