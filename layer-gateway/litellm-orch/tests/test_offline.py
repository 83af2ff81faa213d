"""No outbound connection during start-up and a request: every connect() the gateway makes,
traced with strace from exec to the answer, goes to loopback (or a local unix socket)."""

from __future__ import annotations

import ipaddress
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import procs
import pytest

from meshkit.testing import ServerProcess, free_port

CONNECT = re.compile(r'connect\(\d+, \{sa_family=(AF_INET6?|AF_UNIX|AF_NETLINK)[^}]*?'
                     r'(?:inet_addr\("([^"]+)"\)|inet_pton\(AF_INET6, "([^"]+)"|sun_path=)')


@pytest.fixture(scope="module")
def traced(logdir: Path, keys: dict[str, str], counter: ServerProcess) -> Iterator[Path]:
    if not shutil.which("strace"):
        pytest.fail("strace is required (apt-get install -y strace)")
    trace = logdir / "gateway-offline.strace"
    config = procs.rewrite_api_bases(procs.rendered_config(), {procs.OV_SERVER_PORT: counter.port,
                                                               procs.OPTILLM_PORT: free_port()})
    env = {"LITELLM_MASTER_KEY": keys["master"], "OV_SERVER_API_KEY": keys["ov"],
           "OPTILLM_PROXY_KEY": keys["optillm"]}
    wrapper = ["strace", "-f", "-qq", "-e", "trace=connect,sendto,sendmsg", "-o", str(trace)]
    gateway = procs.start_gateway(logdir, config, env, name="gateway-offline", wrapper=wrapper)
    try:
        resp = httpx.post(f"{gateway.base}/v1/chat/completions", timeout=120,
                          headers={"Authorization": f"Bearer {keys['master']}"},
                          json={"model": "jerry-tiny", "messages": [{"role": "user", "content": "hi"}],
                                "max_tokens": 4})
        assert resp.status_code == 200, resp.text
    finally:
        gateway.stop()
    yield trace


def test_every_connection_is_local(traced: Path) -> None:
    text = traced.read_text(errors="replace")
    seen, remote = 0, []
    for match in CONNECT.finditer(text):
        family, v4, v6 = match.groups()
        if family in ("AF_UNIX", "AF_NETLINK"):
            continue
        seen += 1
        address = ipaddress.ip_address(v4 or v6)
        if not (address.is_loopback or address.is_unspecified
                or (address.version == 6 and address.ipv4_mapped and address.ipv4_mapped.is_loopback)):
            remote.append(str(address))
    assert seen > 0, "trace recorded no TCP connect at all: the check would be vacuous"
    assert remote == [], f"outbound connections attempted: {sorted(set(remote))}"
