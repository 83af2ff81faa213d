"""Start the real processes the tests talk to (gateway, ov-server, OptiLLM, doubles) with
meshkit.testing.ServerProcess, and look at the gateway's process tree."""

from __future__ import annotations

import copy
import ipaddress
import os
import sys
from pathlib import Path

import yaml
from meshkit.testing import ServerProcess, free_port, gateway_env, spawn_gateway
from meshkit.testing import mesh_free_env as base_env
from meshkit.testing.gateway import HEALTH as GATEWAY_HEALTH

TESTS = Path(__file__).resolve().parent
SERVICE = TESTS.parent
REPO = SERVICE.parent.parent
OV_SERVER = REPO / "layer-inference" / "ov-server"
OPTILLM = REPO / "layer-gateway" / "optillm-proxy"

# Contract ports of the upstreams, as written in config/router.yaml's rendered model_list.
OV_SERVER_PORT = 4010
OPTILLM_PORT = 4020


def start_double(logdir: Path, name: str, *args: str) -> ServerProcess:
    """meshkit's recording OpenAI double as a process of its own (tests kill it, or count through it)."""
    port = free_port()
    return ServerProcess.start(name, [sys.executable, "-m", "meshkit.testing.openai_double", "--port", str(port),
                                      *args], log=logdir / f"{name}.log", port=port, env=base_env(), timeout=30)


def start_ov_server(logdir: Path, api_key: str, model_dir: Path) -> ServerProcess:
    port = free_port()
    cmd = ["uv", "run", "--project", str(OV_SERVER), "--frozen", "ov-server", "serve",
           "--host", "127.0.0.1", "--port", str(port)]
    env = base_env(OV_SERVER_API_KEY=api_key, OV_SERVER_MODEL_DIR=str(model_dir), UV_PYTHON_DOWNLOADS="never")
    return ServerProcess.start("ov-server", cmd, log=logdir / "ov-server.log", port=port, env=env, cwd=OV_SERVER,
                               timeout=240)


def start_optillm(logdir: Path, port: int, gateway_base: str, master_key: str, proxy_key: str) -> ServerProcess:
    cmd = [str(OPTILLM / "scripts" / "start.sh"), "--host", "127.0.0.1", "--port", str(port)]
    env = base_env(LITELLM_MASTER_KEY=master_key, OPTILLM_PROXY_KEY=proxy_key, OPTILLM_BASE_URL=gateway_base,
                   UV_PYTHON_DOWNLOADS="never", HOME=str(logdir))
    return ServerProcess.start("optillm", cmd, log=logdir / "optillm.log", port=port, env=env, cwd=OPTILLM,
                               timeout=120)


def rendered_config() -> dict:
    return yaml.safe_load((SERVICE / "config" / "router.yaml").read_text())


def rewrite_api_bases(config: dict, ports: dict[int, int]) -> dict:
    """A copy of `config` whose api_base ports are mapped old -> new (contract port -> test port)."""
    out = copy.deepcopy(config)
    for entry in out["model_list"]:
        params = entry["litellm_params"]
        base = params.get("api_base", "")
        for old, new in ports.items():
            if f"127.0.0.1:{old}/" in base:
                params["api_base"] = base.replace(f"127.0.0.1:{old}/", f"127.0.0.1:{new}/")
    return out


def start_gateway(logdir: Path, config: dict, env_extra: dict[str, str], name: str = "gateway",
                  wrapper: list[str] | None = None, port: int | None = None) -> ServerProcess:
    """The gateway as `homelab up` starts it, healthy (meshkit.testing's starter, shared with the
    tiny-agents suite); the workers come from LITELLM_NUM_WORKERS in `env_extra` or start.sh's 2."""
    return spawn_gateway(REPO, logdir, config, gateway_env(**env_extra), name=name, port=port,
                         wrapper=wrapper).healthy(GATEWAY_HEALTH, 180)


# --- the gateway's process tree (start.sh execs `uv run`, which runs the launcher's master, whose
# children are the uvicorn workers and multiprocessing's resource tracker) ---------------------

def children(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            kids += [int(c) for c in (task / "children").read_text().split()]
    except OSError:
        pass
    return kids


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def alive(pid: int) -> bool:
    """Running (a zombie waiting for its parent to reap it counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def gateway_tree(proc: ServerProcess) -> tuple[int, list[int]]:
    """(master pid, worker pids) of a gateway started by start_gateway."""
    masters = [c for c in children(proc.popen.pid) if "litellm_orch.serve" in cmdline(c)]
    assert len(masters) == 1, f"expected one launcher under {proc.popen.pid}, found {masters}"
    workers = [c for c in children(masters[0]) if "spawn_main" in cmdline(c)]
    return masters[0], workers


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def listening(pids: list[int]) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket in LISTEN state held by any of `pids`."""
    inodes: set[str] = set()
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                try:
                    target = os.readlink(fd)
                except OSError:
                    continue
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    found: set[tuple[str, int]] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] != "0A" or fields[9] not in inodes:  # 0A = LISTEN
                continue
            addr_hex, port_hex = fields[1].split(":")
            raw = bytes.fromhex(addr_hex)
            raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))  # host byte order per word
            found.add((str(ipaddress.ip_address(raw)), int(port_hex, 16)))
    return found
