"""Session-wide real processes: ov-server (built-in model), a counting pass-through in front of it,
OptiLLM (from ../optillm-proxy), backend doubles for failure injection, and the gateway itself,
started by scripts/start.sh from a test copy of config/router.yaml with the api_base ports
rewritten to free ephemeral ports. LiteLLM takes ~6 s to start, so everything is shared.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import procs
import pytest


@pytest.fixture(scope="session")
def logdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("procs")


@pytest.fixture(scope="session")
def keys() -> dict[str, str]:
    return {
        "master": "sk-test-" + secrets.token_hex(8),
        "ov": "ov-test-" + secrets.token_hex(8),
        "optillm": "optillm-test-" + secrets.token_hex(8),  # must not start with sk-
    }


@pytest.fixture(scope="session")
def ov_server(logdir: Path, keys: dict[str, str]) -> Iterator[procs.Proc]:
    proc = procs.start_ov_server(logdir, keys["ov"], logdir / "models")
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def counter(logdir: Path, ov_server: procs.Proc) -> Iterator[procs.Proc]:
    """Transparent pass-through in front of the real ov-server that records every call."""
    proc = procs.start_double(logdir, "counter", "--upstream", f"{ov_server.base}/v1")
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def flaky(logdir: Path) -> Iterator[procs.Proc]:
    """A backend the fallback test kills."""
    proc = procs.start_double(logdir, "flaky", "--model-id", "jerry-flaky", "--reply", "from flaky")
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def failing(logdir: Path) -> Iterator[procs.Proc]:
    """A backend that answers every chat with 500 and counts the attempts."""
    proc = procs.start_double(logdir, "failing", "--fail-status", "500")
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def mesh(logdir: Path, keys: dict[str, str], counter: procs.Proc, flaky: procs.Proc,
         failing: procs.Proc) -> Iterator[dict[str, procs.Proc]]:
    """Gateway + OptiLLM wired like the real mesh (rendered router.yaml, ports rewritten)."""
    optillm_port = procs.free_port()
    config = procs.rewrite_api_bases(procs.rendered_config(),
                                     {procs.OV_SERVER_PORT: counter.port, procs.OPTILLM_PORT: optillm_port})
    dead_port = procs.free_port()  # nothing ever listens here
    config["model_list"] += [
        {"model_name": "jerry-flaky", "litellm_params": {
            "model": "openai/jerry-flaky", "api_base": f"{flaky.base}/v1", "api_key": "unused"}},
        {"model_name": "jerry-broken", "litellm_params": {
            "model": "openai/jerry-broken", "api_base": f"{failing.base}/v1", "api_key": "unused"}},
        {"model_name": "jerry-gone", "litellm_params": {
            "model": "openai/jerry-gone", "api_base": f"http://127.0.0.1:{dead_port}/v1", "api_key": "unused"}},
    ]
    config["router_settings"]["fallbacks"] = [{"jerry-flaky": ["jerry-tiny"]}]
    env = {"LITELLM_MASTER_KEY": keys["master"], "OV_SERVER_API_KEY": keys["ov"],
           "OPTILLM_PROXY_KEY": keys["optillm"]}
    gateway = procs.start_gateway(logdir, config, env)
    try:
        optillm = procs.start_optillm(logdir, optillm_port, f"{gateway.base}/v1", keys["master"], keys["optillm"])
    except Exception:
        gateway.stop()
        raise
    yield {"gateway": gateway, "optillm": optillm}
    optillm.stop()
    gateway.stop()


@pytest.fixture(scope="session")
def gateway(mesh: dict[str, procs.Proc]) -> procs.Proc:
    return mesh["gateway"]


@pytest.fixture(scope="session")
def client(gateway: procs.Proc, keys: dict[str, str]) -> openai.OpenAI:
    # max_retries=0: the official client retries 5xx by default, which would hide gateway behaviour.
    return openai.OpenAI(base_url=f"{gateway.base}/v1", api_key=keys["master"], max_retries=0, timeout=120)


@pytest.fixture()
def calls(counter: procs.Proc):
    """Clear the counter, hand back a function that reads the calls recorded since."""
    httpx.delete(f"{counter.base}/_calls")
    return lambda: httpx.get(f"{counter.base}/_calls").json()
