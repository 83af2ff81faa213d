"""Start the gateway: LiteLLM's proxy app, our middleware, N uvicorn workers on exactly host:port.

    python -m litellm_orch.serve --config router.yaml --host 0.0.0.0 --port 4000 [--workers 2]

Why not LiteLLM's CLI (`litellm --config ...`):
- when the port is 4000 and taken, it silently picks a random port (on the same host, so on the
  LAN for 0.0.0.0) and reports success; this launcher binds host:port or exits with an error;
- its workers outlived a master killed with SIGKILL (still serving, unsupervised); here every
  worker dies with the master and the master with whatever started it (`lifetime.py`);
- it cannot put middleware in front of LiteLLM's app (`middleware.py`).
It loads the config the way the CLI does (LiteLLM's `WORKER_CONFIG`, read by each worker's
start-up event) and keeps the CLI's server settings (uvloop, no Server header). The master does not
import LiteLLM: with several workers it only supervises them.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import signal
import socket
import sys
from pathlib import Path

from .lifetime import MASTER_PID_ENV, die_with_parent
from .metrics import prepare_dir, remove_dir
from .settings import CONFIG_ENV, GatewaySettings, SettingsError

# Below supervisord's stopwaitsecs (15) and the unit's TimeoutStopSec (20): in-flight requests get
# this long to finish on SIGTERM before the process manager's SIGKILL.
GRACEFUL_SHUTDOWN_S = 10
# Idle client connections stay open longer than clients keep them pooled (httpx, hence the openai
# SDK: 5 s; uvicorn's own default is also 5 s): when both expire together a client can send on a
# connection the gateway is closing and see a reset (seen in the soak test).
KEEP_ALIVE_S = 75
# LiteLLM's CLI default for --api_version, part of the worker config it saves.
_AZURE_API_VERSION = "2025-02-01-preview"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="litellm_orch.serve", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", required=True, help="LiteLLM proxy config (config/router.yaml)")
    p.add_argument("--host", required=True, help="address to listen on, exactly (0.0.0.0 = every address)")
    p.add_argument("--port", required=True, type=int, help="port to listen on, exactly; never another one")
    p.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (default 1)")
    return p


def _fail(message: str) -> int:
    print(f"litellm-orch: error: {message}", file=sys.stderr, flush=True)
    return 2


def _check_port(host: str, port: int) -> str | None:
    """Why host:port cannot be listened on, or None. uvicorn binds it again right after."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return (f"cannot listen on {host}:{port}: the address is already in use (another gateway, or a "
                        f"process left over from one?). Stop it; the gateway never moves to another port.")
            return f"cannot listen on {host}:{port}: {exc.strerror}"
    return None


def _worker_config(config: Path) -> str:
    """What LiteLLM's CLI saves for its workers (`save_worker_config`) when given only --config."""
    return json.dumps({
        "model": None, "alias": None, "api_base": None, "api_version": _AZURE_API_VERSION, "debug": False,
        "detailed_debug": False, "temperature": None, "max_tokens": None, "request_timeout": None,
        "max_budget": None, "drop_params": False, "add_function_to_prompt": False, "headers": None,
        "save": False, "config": str(config), "use_queue": False,
    })


def main(argv: list[str] | None = None) -> int:
    parent = os.getppid()
    args = _parser().parse_args(argv)
    if not 1 <= args.port <= 65535:
        return _fail(f"--port must be between 1 and 65535, got {args.port}")
    if args.workers < 1:
        return _fail(f"--workers must be at least 1, got {args.workers}")
    config = Path(args.config).resolve()
    try:
        GatewaySettings.load(config)  # refuse a bad config or limit here, not in every worker
    except SettingsError as exc:
        return _fail(str(exc))
    # The master follows its parent (`uv run` under supervisord/systemd/start.sh): if that is
    # killed, nothing of the gateway may keep serving outside supervision.
    die_with_parent(signal.SIGTERM, parent)
    problem = _check_port(args.host, args.port)
    if problem:
        return _fail(problem)

    os.environ[CONFIG_ENV] = str(config)
    os.environ["WORKER_CONFIG"] = _worker_config(config)
    os.environ["NUM_WORKERS"] = str(args.workers)  # read by LiteLLM (as its CLI sets it)
    os.environ[MASTER_PID_ENV] = str(os.getpid())
    metrics_dir = prepare_dir()  # before any worker imports prometheus_client (metrics.py)
    try:
        return _run(args.host, args.port, args.workers)
    finally:
        remove_dir(metrics_dir)


def _run(host: str, port: int, workers: int) -> int:
    """uvicorn.run(), minus its habit of exiting 0 when every worker failed to start."""
    import uvicorn
    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors import Multiprocess

    log_level = os.environ.get("LITELLM_LOG", "ERROR").lower()
    config = uvicorn.Config(
        "litellm_orch.app:create_app", factory=True, host=host, port=port, workers=workers, loop="uvloop",
        server_header=False, timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S, timeout_keep_alive=KEEP_ALIVE_S,
        log_level=log_level if log_level in ("critical", "error", "warning", "info", "debug") else "error",
    )
    try:
        if workers == 1:
            config.load_app()
            server = uvicorn.Server(config)
            server.run()
            return 0 if server.started else STARTUP_FAILURE
        supervisor = Multiprocess(config, sockets=[config.bind_socket()])
        supervisor.run()
    except KeyboardInterrupt:
        return 0
    return STARTUP_FAILURE if any(p.exitcode == STARTUP_FAILURE for p in supervisor.processes) else 0


if __name__ == "__main__":
    sys.exit(main())
