"""`homelab check` (HL401) and every client refuse the same addresses: both use the view's
`never_call` list (homelab.addresses.never_call) and meshkit.addresses to compare.

The mesh here is where the two old computations disagreed: a backend bound to ::1. HL401 used to
compare (host, port) with `localhost` folded into 127.0.0.1, so a client pointing at
http://localhost:PORT passed check; tiny-agents kept "localhost:PORT" and an unbracketed "::1:PORT"
in its list, refused localhost:PORT and failed on "::1:PORT" as an invalid URL, so it refused
even the gateway."""

from __future__ import annotations

from pathlib import Path

import pytest
from meshkit.view import parse

from homelab.load.repo import load_repo
from homelab.render.view import VIEW, view

from conftest import by_code, edit

OV = "layer-inference/ov/SERVICE_SPEC.md"
AGENT = "layer-orchestration/agent/SERVICE_SPEC.md"
GATEWAY = "http://127.0.0.1:4000/v1"


def _port(mesh: Path) -> int:
    return int(next(l for l in (mesh / OV).read_text().splitlines() if l.startswith("port:")).split()[1])


@pytest.mark.parametrize("template", ["http://[::1]:{p}/v1", "http://localhost:{p}/v1",
                                      "http://[0:0::1]:{p}/v1", "http://127.0.0.1:{p}/v1", GATEWAY])
def test_check_and_the_agent_refuse_the_same_urls(mesh: Path, template: str) -> None:
    edit(mesh, OV, "bind: 127.0.0.1", 'bind: "::1"')
    url = template.format(p=_port(mesh))
    edit(mesh, AGENT, f"default: {GATEWAY}", f'default: "{url}"')
    repo = load_repo(mesh)
    agent_refuses = parse(view(repo), mesh / VIEW).never_call_owner(url)  # what tiny-agents asks
    check_refuses = [v for v in by_code(mesh, "HL401") if "the address of ov" in v.message]
    assert bool(check_refuses) == (agent_refuses is not None)
    # ::1 and localhost reach the backend; 127.0.0.1 does not (it binds ::1 only).
    assert (agent_refuses is not None) == ("[" in url or "localhost" in url)
