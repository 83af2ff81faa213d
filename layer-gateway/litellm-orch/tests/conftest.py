"""Session-wide real processes: ov-server (built-in model), a counting pass-through in front of it,
OptiLLM (from ../optillm-proxy), backend doubles for failure injection, and the gateway itself,
started by scripts/start.sh from a test copy of config/router.yaml with the api_base ports
rewritten to free ephemeral ports. LiteLLM takes ~6 s to start, so everything is shared.
"""

from __future__ import annotations

import os

# Before any test module imports litellm in this process (test_auth_unit): otherwise the import
# tries to fetch the model cost map from the internet.
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

import secrets
import time
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
def slow(logdir: Path) -> Iterator[procs.Proc]:
    """A backend that takes 30 s to answer (the gateway's deployment times out after 2 s)."""
    proc = procs.start_double(logdir, "slow", "--delay", "30")
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def breaking(logdir: Path) -> Iterator[procs.Proc]:
    """A backend whose streams break after the first chunk (as if it died mid-answer)."""
    proc = procs.start_double(logdir, "breaking", "--break-stream")
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def keyed(logdir: Path) -> Iterator[procs.Proc]:
    """A backend that wants a key the gateway's deployment does not have."""
    proc = procs.start_double(logdir, "keyed", "--api-key", "the-right-backend-key")
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def mesh(logdir: Path, keys: dict[str, str], counter: procs.Proc, flaky: procs.Proc, failing: procs.Proc,
         slow: procs.Proc, breaking: procs.Proc, keyed: procs.Proc,
         ov_server: procs.Proc) -> Iterator[dict[str, procs.Proc]]:
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
        # Straight to the real ov-server, no counter in between: a client that gives up must cancel
        # the generation itself (the counter would not pass a disconnect on).
        {"model_name": "jerry-direct", "litellm_params": {
            "model": "openai/jerry-tiny", "api_base": f"{ov_server.base}/v1", "api_key": keys["ov"]}},
        {"model_name": "jerry-slow", "litellm_params": {
            "model": "openai/jerry-slow", "api_base": f"{slow.base}/v1", "api_key": "unused", "timeout": 2}},
        {"model_name": "jerry-breaking", "litellm_params": {
            "model": "openai/jerry-breaking", "api_base": f"{breaking.base}/v1", "api_key": "unused"}},
        {"model_name": "jerry-wrongkey", "litellm_params": {
            "model": "openai/jerry-wrongkey", "api_base": f"{keyed.base}/v1", "api_key": "not-the-backend-key"}},
    ]
    config["router_settings"]["fallbacks"] = [{"jerry-flaky": ["jerry-tiny"]}]
    env = {"LITELLM_MASTER_KEY": keys["master"], "OV_SERVER_API_KEY": keys["ov"],
           "OPTILLM_PROXY_KEY": keys["optillm"], "LITELLM_ORCH_METRICS_DIR": str(logdir / "gateway-metrics")}
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


def ov_stats(ov_server: procs.Proc) -> dict:
    """jerry-tiny's counters at the real ov-server: active_requests, generated_tokens."""
    return httpx.get(f"{ov_server.base}/health", timeout=10).json()["models"]["jerry-tiny"]


@pytest.fixture()
def still_serving(gateway: procs.Proc, client: openai.OpenAI, ov_server: procs.Proc):
    """After a hostile request: the gateway answers its probe and the next normal request, no
    worker died or was replaced, and nothing keeps running at the backend."""
    before = procs.gateway_tree(gateway)
    yield
    assert httpx.get(f"{gateway.base}/health/liveliness", timeout=10).status_code == 200
    answer = client.chat.completions.create(model="jerry-tiny", messages=[{"role": "user", "content": "hi"}],
                                            max_tokens=4)
    assert answer.choices[0].message.content is not None
    after = procs.gateway_tree(gateway)
    assert after == before, f"gateway processes changed: {before} -> {after}"
    deadline = time.monotonic() + 30
    while ov_stats(ov_server)["active_requests"] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert ov_stats(ov_server)["active_requests"] == 0, "a generation is still running at ov-server"
