"""A mesh with nothing scripted: the REAL ov-server serving jerry-chat (SmolLM2-135M, from
layer-inference/ov-server's own environment), the REAL gateway (litellm-orch) routing jerry-chat
to it, the real mesh-status MCP server, and a fake checkout whose contracts describe exactly
these processes (so mesh-status reports on what really runs). Used by test_agent_real_model.py and
bench/bench_agent.py. Loopback only, free ports only."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from conftest import REPO, Mesh, mcp_server, spawn_gateway, tool_python, write_view

from meshkit.testing import ServerProcess, free_port

MODEL = "jerry-chat"
OV_SERVER = REPO / "layer-inference" / "ov-server"
MESH_TOOLS = {"list_models", "service_health", "topology"}
DEFAULT_TOOLS = MESH_TOOLS | {"fetch"}  # every server of the registry (no --servers)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV" and not k.startswith("OV_SERVER_")}
    env.update({"CI": "true", "LITELLM_LOCAL_MODEL_COST_MAP": "True", "DISABLE_SCHEMA_UPDATE": "True",
                "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "NO_COLOR": "1"})
    return env


def _start(stack: ExitStack, name: str, argv: list[str], port: int, cwd: Path) -> ServerProcess:
    """Started, not yet waited for (ov-server and the gateway boot in parallel)."""
    proc = ServerProcess.spawn(name, argv, log=cwd / f"{name}.log", port=port, env=_env(), cwd=cwd)
    stack.callback(proc.stop)
    return proc


@contextmanager
def real_mesh(work: Path) -> Iterator[Mesh]:
    with ExitStack() as stack:
        ov_port = free_port()
        (work / "models.yaml").write_text(f"models:\n  {MODEL}:\n    builtin: {MODEL}\n")
        (work / "ov-server.env").write_text(f"OV_SERVER_MODEL_DIR={work / 'models'}\n"
                                            f"OV_SERVER_REGISTRY={work / 'models.yaml'}\n")
        ov = _start(stack, "ov-server", ["uv", "run", "--frozen", "--project", str(OV_SERVER), "ov-server", "serve",
                                         "--host", "127.0.0.1", "--port", str(ov_port), "--env-file",
                                         str(work / "ov-server.env")], ov_port, work)
        gw = spawn_gateway(work, [{"model_name": MODEL, "litellm_params": {
            "model": f"openai/{MODEL}", "api_base": f"http://127.0.0.1:{ov_port}/v1", "api_key": "none"}}],
            request_timeout=300)
        stack.callback(gw.stop)
        # First runs sync the environments (minutes on a clean machine); jerry-chat loads in seconds.
        ov.wait_healthy("/health", 600)
        gw.wait_healthy("/health/liveliness", 600)

        root = work / "repo"
        gateway_url = f"{gw.base}/v1"
        view = write_view(root, gateway_url, gw.port, ov_port, MODEL, [
            mcp_server("mesh-status", tool_python("mesh-status"),
                       ["-m", "mesh_status.cli", "--transport", "stdio"]),
            # web-fetch as the default registry lists it (after mesh-status), its network cut.
            mcp_server("web-fetch", tool_python("web-fetch"),
                       [str(Path(__file__).with_name("offline_web_fetch.py"))])])
        yield Mesh(root, gateway_url, f"http://127.0.0.1:{ov_port}", "", view, servers=(ov, gw))


# Questions about the mesh a user would ask, each with what a correct answer must say (lower-case
# substrings, any one of each inner list): checked by the bench only; the test asserts invariants.
QUESTIONS: list[tuple[str, list[list[str]]]] = [
    ("is jerry-chat up?", [["yes", "is up", "healthy", "running"]]),
    ("Is the ov-server service healthy?", [["yes", "healthy", "is up"]]),
    ("Is the gateway up?", [["yes", "healthy", "is up"]]),
    ("Which models does the gateway serve?", [["jerry-chat"]]),
    ("Which service serves jerry-chat?", [["ov-server"]]),
    ("On which host does jerry-chat run?", [["local", "127.0.0.1"]]),
    ("What is the name of this mesh?", [["testmesh"]]),
    ("Which services run in the mesh?", [["ov-server"], ["litellm-orch"]]),
    ("What address does the host local have?", [["127.0.0.1"]]),
    ("Which service is the gateway?", [["litellm-orch"]]),
    ("List the hosts of the mesh.", [["local"]]),
    ("Is litellm-orch healthy?", [["yes", "healthy", "is up"]]),
]


# Every question's true answer is positive (everything runs): an answer that negates or echoes a
# tool error is wrong even if it happens to contain the expected words.
WRONG_IF = ["not ", "n't", "error", "unknown", "down"]


def correct(answer: str, expected: list[list[str]]) -> bool:
    text = answer.lower()
    return all(any(alt in text for alt in group) for group in expected) and not any(w in text for w in WRONG_IF)
