"""OptiLLM started by scripts/start.sh against a recording stand-in for the gateway.

Shared helpers come from meshkit.testing: free_port, ServerProcess (start, wait for health, fail
fast with the log tail, stop the group) and the recording OpenAI double."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from meshkit.testing import Call, OpenAIDouble, Reply, ServerProcess, free_port
from meshkit.testing.openai_double import Script

TESTS = Path(__file__).resolve().parent
SERVICE = TESTS.parent
REPO = SERVICE.parent.parent
START = SERVICE / "scripts" / "start.sh"
MASTER = "sk-test-gateway-master"
PROXY_KEY = "optillm-test-client-key"


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OPTILLM_", "LITELLM_")) and k not in ("OPENAI_API_KEY",)}
    env.update({"CI": "true", "UV_PYTHON_DOWNLOADS": "never", "NO_PROXY": "127.0.0.1,localhost"})
    env.update(extra)
    return env


def gateway_script() -> Script:
    """How the stand-in for the gateway answers: "stop" answers, so approaches that reject
    truncated answers (re2) succeed, except:
    - a request with `max_tokens` <= 2 gets answers cut there (`finish_reason: "length"`);
    - model `jerry-fail-<status>` gets that HTTP status with an OpenAI-shaped error (the gateway's).
    Usage: 10 prompt tokens and 6 completion tokens per choice, for every call."""
    counter = itertools.count(1)

    def script(call: Call) -> Reply | list[Reply]:
        index = next(counter)
        model = str(call.model)
        if model.startswith("jerry-fail-"):
            status = int(model.rsplit("-", 1)[1])
            return Reply(status=status, error=f"{model} failed on purpose ({status}).")
        cut = isinstance(call.body.get("max_tokens"), int) and call.body["max_tokens"] <= 2
        usage = {"prompt_tokens": 10, "completion_tokens": 6 * call.n, "total_tokens": 10 + 6 * call.n}
        return [Reply(f"Cut{index}.{i}" if cut else f"The answer is 4. ({index}.{i})",
                      finish_reason="length" if cut else "stop", usage=usage) for i in range(call.n)]
    return script


def start_optillm(logdir: Path, upstream: str, name: str = "optillm", wrapper: list[str] | None = None,
                  **env: str) -> ServerProcess:
    port = free_port()
    environment = clean_env(LITELLM_MASTER_KEY=MASTER, OPTILLM_PROXY_KEY=PROXY_KEY, OPTILLM_BASE_URL=upstream,
                            HOME=str(logdir), **env)
    return ServerProcess.start(name, [*(wrapper or []), str(START), "--host", "127.0.0.1", "--port", str(port)],
                               log=logdir / f"{name}.log", port=port, env=environment, cwd=SERVICE, timeout=90)


@pytest.fixture(scope="session")
def logdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("optillm")


@pytest.fixture(scope="session")
def gateway_double() -> Iterator[OpenAIDouble]:
    """The recording stand-in for the gateway OptiLLM calls back (meshkit's OpenAI double)."""
    with OpenAIDouble(gateway_script(), models=("jerry-tiny",)) as double:
        yield double


@pytest.fixture(scope="session")
def upstream(gateway_double: OpenAIDouble) -> str:
    return gateway_double.base


@pytest.fixture(scope="session")
def optillm(logdir: Path, upstream: str) -> Iterator[Running]:
    # OPTILLM_API_KEY in the environment would switch OptiLLM to local inference: start.sh must
    # neutralise it, so the fixture sets it on purpose.
    run = start_optillm(logdir, f"{upstream}/v1", OPTILLM_API_KEY="must-be-ignored")
    yield run
    run.stop()


@pytest.fixture()
def calls(gateway_double: OpenAIDouble):
    """Clears the stand-in's record; returns what it recorded since (model, n, authorization ...)."""
    gateway_double.clear()
    return lambda: [c.as_json() for c in gateway_double.calls]
