"""The README works: its first command and its curl, exactly as README.md writes them, on a fresh
clone in a private network namespace (the mesh gets the contract ports to itself), then
`./homelab down` leaves no process, no listener and no stray state.

What `up` and `down` may leave (expected state; anything else fails the test):
  - `.homelab/secrets.env`: the mesh's secrets, kept so the next `up` reuses them;
  - `.homelab/logs/`: the services' and supervisord's logs, for reading after the fact;
  - `.homelab/models/`: the built-in jerry-tiny and jerry-chat's converted IR (ov-server's
    run.prepare), rebuilt only if missing;
  - `.homelab/ov-models.yaml`: ov-server's model registry (its `up_value`), written with the
    built-in models by its run.prepare when missing; `homelab models add|rm` edit it;
  - `.homelab/run/supervisord.conf` and `.homelab/run/up.lock`: the last rendered config and the
    lock file `up`/`down` take (no process holds it after `down`);
  - `layer-gateway/litellm-orch/config/env.local`: written once by `up`, never overwritten;
  - `.venv/` folders and Python bytecode caches (`__pycache__/`): all gitignored;
  - uv's empty per-project lock files in TMPDIR (`uv-<hash>.lock`).
Stray state: a supervisord socket or pid file, any change to a tracked file, any new file git
would show, and anything left in the private HOME or TMPDIR the commands ran with.
"""

from __future__ import annotations

import fnmatch
import json
import re
import time
from pathlib import Path

import pytest

from homelab.load.repo import load_repo
from meshkit.testing import PrivateMesh, bash_blocks, netns_unavailable, processes_with_env

REPO = Path(__file__).resolve().parents[4]
_WHY_NOT = netns_unavailable()
pytestmark = [pytest.mark.skipif(_WHY_NOT is not None, reason=str(_WHY_NOT)),
              pytest.mark.timeout(1800)]

# `git status --ignored` lines `up` + `down` may leave in the clone (see the module docstring).
EXPECTED_STATE = (
    "!! .homelab/secrets.env",
    "!! .homelab/logs/*.log",
    "!! .homelab/models/*",
    "!! .homelab/ov-models.yaml",
    "!! .homelab/run/supervisord.conf",
    "!! .homelab/run/up.lock",
    "!! .homelab/litellm-orch/metrics/*.db",  # the gateway workers' counters (emptied at its start)
    "!! layer-gateway/litellm-orch/config/env.local",
    "!! .venv/",
    "!! */.venv/",
    "!! */__pycache__/",
)
# uv's per-project lock files (empty; uv leaves them in TMPDIR by design).
EXPECTED_TMP = "tmp/uv-*.lock"
UP_TIMEOUT_S = 1200  # LiteLLM alone has needed minutes to start on a loaded 2-core machine


def readme_commands() -> tuple[str, str]:
    """(the README's first command line, its curl block), exactly as README.md has them."""
    blocks = bash_blocks((REPO / "README.md").read_text(encoding="utf-8"))
    assert blocks, "README.md has no ```bash block"
    first = blocks[0].splitlines()[0]
    curl = [b for b in blocks if "curl " in b]
    assert len(curl) == 1, f"expected one curl block in README.md, found {len(curl)}"
    return first, curl[0]


def uv_projects(root: Path) -> list[Path]:
    """The control plane's project and each autostart service's: what `./homelab up` syncs."""
    repo = load_repo(root)
    out = [root]
    for svc in repo.services.values():
        if svc.spec.run.autostart and svc.spec.run.uv_project is not None:
            out.append((root / svc.rel_dir / svc.spec.run.uv_project).resolve())
    return sorted(set(out))


class Laps:
    """Prints how long each phase took (shown with -s, and in the report of a failure)."""

    def __init__(self) -> None:
        self.last = time.monotonic()

    def lap(self, what: str) -> None:
        now = time.monotonic()
        print(f"{what}: {now - self.last:.1f} s")
        self.last = now


def left_in_clone(mesh: PrivateMesh) -> list[str]:
    """`git status` lines of the clone, with ignored folders other than environments and
    bytecode caches listed file by file (git shows `.homelab/` as one line)."""
    out = []
    for line in mesh.git_status():
        path = line[3:]
        if line.startswith("!! ") and path.endswith("/") and not path.endswith(
                (".venv/", "__pycache__/")):
            out += [f"!! {p.relative_to(mesh.root)}" for p in sorted((mesh.root / path).rglob("*"))
                    if not p.is_dir()]
        else:
            out.append(line)
    return out


def test_readme_up_curl_down(tmp_path: Path) -> None:
    first, curl = readme_commands()
    assert first.startswith("./homelab up"), f"the README's first command is now {first!r}"
    timer = Laps()
    with PrivateMesh.create(tmp_path, repo=REPO) as mesh:
        mesh.presync(uv_projects(mesh.root))
        timer.lap("clone + uv sync")
        up = mesh.bash(first, timeout=UP_TIMEOUT_S)
        timer.lap(first)
        assert up.returncode == 0, f"`{first}` failed:\n{up.stdout[-4000:]}\n{up.stderr[-4000:]}"
        assert "http://127.0.0.1:4000/v1" in up.stdout + up.stderr  # it tells where the mesh is
        # Every autostart service was started and found healthy by up (which polls each health
        # URL until it answers), and is still running after up returned.
        autostart = {s.name for s in load_repo(mesh.root).services.values() if s.spec.run.autostart}
        healthy = set(re.findall(r"^\s+(\S+)\s+healthy in ", up.stdout, flags=re.M))
        assert healthy == autostart, up.stdout
        status = mesh.bash("./homelab status --json", timeout=120)
        services = json.loads(status.stdout)["services"]
        running = {s["service"] for s in services if s["state"] in ("RUNNING", "STARTING")}
        assert running == autostart, status.stdout

        answer = mesh.bash(curl, timeout=300)
        timer.lap("curl")
        assert answer.returncode == 0, answer.stderr
        body = json.loads(answer.stdout)
        message = body["choices"][0]["message"]
        assert message["role"] == "assistant"
        assert isinstance(message["content"], str) and message["content"], body
        # The README shows the answer a user will see; its fact, not its exact wording (model
        # output is not calibrated on one CPU), must hold.
        if "Paris" in (REPO / "README.md").read_text(encoding="utf-8"):
            assert "Paris" in message["content"], body

        down = mesh.bash("./homelab down", timeout=300)
        timer.lap("./homelab down")
        assert down.returncode == 0, f"{down.stdout}\n{down.stderr}"
        assert mesh.netns.pids() == [], "processes left in the mesh's namespace after down"
        assert mesh.netns.listeners() == [], "sockets still listening after down"
        assert processes_with_env("HOMELAB_SUPERVISED", str(mesh.root)) == []

        stray = [line for line in left_in_clone(mesh)
                 if not any(fnmatch.fnmatch(line, pattern) for pattern in EXPECTED_STATE)]
        assert stray == [], "stray state in the clone after down"
        left = sorted(str(p.relative_to(tmp_path))
                      for d in (mesh.home, mesh.tmp) for p in d.rglob("*"))
        left = [p for p in left if not fnmatch.fnmatch(p, EXPECTED_TMP)]
        assert left == [], "files left in the private HOME / TMPDIR"
