"""Test helpers every suite shares (standard library only, so no suite needs a new dependency):

- `free_port()` (ports.py);
- `ServerProcess`: start a command, wait for its health URL, fail fast with its log tail, stop
  its whole process group (process.py); `wait_until`, `status` (http.py);
- `spawn_gateway`, `gateway_env`: the mesh's real gateway (scripts/start.sh) on a free loopback
  port; `mesh_free_env`: an environment without the shell's mesh settings (gateway.py);
- `OpenAIDouble` / `Reply`: one recording OpenAI-compatible double (openai_double.py);
- `Netns` and `PrivateMesh`: a network namespace with the real contract ports, and a clone of
  the checkout run in one (netns.py, privatemesh.py).
"""

from meshkit.testing.gateway import gateway_env, mesh_free_env, spawn_gateway
from meshkit.testing.http import status, wait_until
from meshkit.testing.netns import Netns, netns_unavailable
from meshkit.testing.openai_double import Call, OpenAIDouble, Reply
from meshkit.testing.ports import free_port
from meshkit.testing.privatemesh import PrivateMesh, bash_blocks, clone_checkout, processes_with_env
from meshkit.testing.process import ServerFailed, ServerProcess

__all__ = ["Call", "Netns", "OpenAIDouble", "PrivateMesh", "Reply", "ServerFailed", "ServerProcess",
           "bash_blocks", "clone_checkout", "free_port", "gateway_env", "mesh_free_env", "netns_unavailable",
           "processes_with_env", "spawn_gateway", "status", "wait_until"]
