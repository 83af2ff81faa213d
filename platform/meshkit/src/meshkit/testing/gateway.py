"""The mesh's own gateway as a test process: layer-gateway/litellm-orch/scripts/start.sh, the way
`homelab up` starts it (LiteLLM behind our launcher and middleware, from the gateway's own uv
environment), on a loopback port, routing a config the test wrote. Not the stock `litellm` CLI:
ours carries the gateway's fixes (gc_safety.py), so a test of another suite meets what users run.

    gw = spawn_gateway(repo, tmp, config, gateway_env(LITELLM_MASTER_KEY=key))
    gw.wait_healthy(HEALTH, 300)
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from meshkit.testing.ports import free_port
from meshkit.testing.process import ServerProcess

HEALTH = "/health/liveliness"  # answers without touching a backend
GATEWAY_SERVICE = Path("layer-gateway") / "litellm-orch"
LOOPBACK = "127.0.0.1,localhost"
# A developer's shell must not hand a test process a real key, model or upstream.
_SCRUBBED_PREFIXES = ("LITELLM_", "OPTILLM_", "OV_SERVER_")


def mesh_free_env(**extra: str) -> dict[str, str]:
    """This process's environment without the mesh's own settings, LiteLLM's cost map read
    locally, loopback past any proxy: the base of every test process that talks to the mesh."""
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY" and not k.startswith(_SCRUBBED_PREFIXES)}
    env.update({"LITELLM_LOCAL_MODEL_COST_MAP": "True", "CI": "true", "NO_PROXY": LOOPBACK, "no_proxy": LOOPBACK})
    env.update(extra)
    return env


def gateway_env(**extra: str) -> dict[str, str]:
    """mesh_free_env for the gateway: also offline (Hugging Face from local copies, no uv Python
    download) and without a foreign VIRTUAL_ENV, which `uv run` warns about."""
    env = mesh_free_env()
    env.pop("VIRTUAL_ENV", None)
    env.update({"UV_PYTHON_DOWNLOADS": "never", "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
                "NO_COLOR": "1"})
    env.update(extra)
    return env


def spawn_gateway(repo: Path, work: Path, config: dict, env: dict[str, str], *, name: str = "gateway",
                  port: int | None = None, workers: int | None = None,
                  wrapper: list[str] | None = None) -> ServerProcess:
    """Start the gateway of checkout `repo` on 127.0.0.1 with `config` (written to
    work/<name>.router.yaml); its log is work/<name>.log. Started, not waited for: the caller runs
    `wait_healthy(HEALTH, ...)` and stops it, also when that fails. `wrapper` prefixes the command
    (e.g. strace, or unshare to cut the network)."""
    port = port or free_port()
    service = repo / GATEWAY_SERVICE
    cfg = work / f"{name}.router.yaml"
    cfg.write_text(json.dumps(config, indent=1))  # JSON is YAML: meshkit stays standard library only
    cmd = [*(wrapper or []), str(service / "scripts" / "start.sh"), "--host", "127.0.0.1", "--port", str(port),
           "--config", str(cfg)]
    if workers is not None:
        cmd += ["--workers", str(workers)]
    return ServerProcess.spawn(name, cmd, log=work / f"{name}.log", port=port, env=env, cwd=service)
