"""A real gateway in front of a real ov-server, on free loopback ports, for the replay tests.

Models of opt-in backends stay routed to a closed port and are answered through their fallback.

Started with the gateway suite's own helper (layer-gateway/litellm-orch/tests/procs.py), so both
suites run LiteLLM and ov-server the same way: each from its own project's uv environment, the
gateway from the rendered config/router.yaml. Only the plain models (served by a backend) are
kept: the aliases' optimizer is not started here, and no request may reach a fixed port.
"""

from __future__ import annotations

import secrets
import sys
from collections.abc import Iterator

import pytest
from contracts import REPO, all_contracts, plain_models
from meshkit.testing import free_port

sys.path.insert(0, str(REPO / "layer-gateway" / "litellm-orch" / "tests"))
import procs  # the gateway suite's process helper, found through the path added above


@pytest.fixture(scope="session")
def gateway_under_test(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, list[str]]]:
    """(base URL, key, plain model names) of a real LiteLLM gateway over a real ov-server."""
    served = plain_models()
    contracts = all_contracts()
    others = sorted({svc for svc in served.values() if svc != "ov-server"})
    started = [svc for svc in others if (contracts[svc].get("health") or {}).get("required", True)]
    if started:
        pytest.fail(f"plain models served by {started}: this fixture only knows how to start ov-server")
    # Opt-in backends (llamacpp-server) are not running in a default `up`: their models stay routed,
    # at a closed port, so the gateway must answer them through their fallback, as a user sees it.
    closed = {contracts[svc]["port"]: free_port() for svc in others}
    logdir = tmp_path_factory.mktemp("mesh")
    master, ov_key = "sk-owui-" + secrets.token_hex(8), "ov-owui-" + secrets.token_hex(8)
    ov = procs.start_ov_server(logdir, ov_key, logdir / "models")
    try:
        backend_port = all_contracts()["ov-server"]["port"]
        config = procs.rewrite_api_bases(procs.rendered_config(), {backend_port: ov.port, **closed})
        config["model_list"] = [m for m in config["model_list"]
                                if any(f":{port}/" in m["litellm_params"].get("api_base", "")
                                       for port in (ov.port, *closed.values()))]
        kept = {m["model_name"] for m in config["model_list"]}
        settings = config.setdefault("router_settings", {})
        settings["fallbacks"] = [f for f in settings.get("fallbacks") or []  # none may name a dropped alias
                                 if all(k in kept and set(v) <= kept for k, v in f.items())]
        gateway = procs.start_gateway(logdir, config, {"LITELLM_MASTER_KEY": master, "OV_SERVER_API_KEY": ov_key,
                                                       "LLAMACPP_SERVER_API_KEY": "closed-port",
                                                       "LITELLM_NUM_WORKERS": "1"})
    except Exception:
        ov.stop()
        raise
    yield f"{gateway.base}/v1", master, sorted(served)
    gateway.stop()
    ov.stop()


def pytest_report_header() -> list[str]:
    return [f"open-webui tests: plain models from the contracts: {sorted(plain_models())}"]

