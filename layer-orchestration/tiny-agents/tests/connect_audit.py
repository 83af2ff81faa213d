"""Run the tiny-agents CLI with every socket connect() logged (as JSON lines) to $CONNECT_AUDIT_LOG.

asyncio and httpx open sockets through socket.socket.connect/connect_ex, so this sees every TCP
connection the agent process makes (stdio MCP servers use pipes, not sockets)."""

import json
import os
import runpy
import socket
import sys

_log = open(os.environ["CONNECT_AUDIT_LOG"], "a")  # noqa: SIM115 - lives as long as the process
_connect, _connect_ex = socket.socket.connect, socket.socket.connect_ex


def _record(address) -> None:
    _log.write(json.dumps(list(address)[:2] if isinstance(address, tuple) else [str(address)]) + "\n")
    _log.flush()


def connect(self, address):
    _record(address)
    return _connect(self, address)


def connect_ex(self, address):
    _record(address)
    return _connect_ex(self, address)


socket.socket.connect, socket.socket.connect_ex = connect, connect_ex
sys.argv = ["tiny-agents", *sys.argv[1:]]
runpy.run_module("tiny_agents.cli", run_name="__main__")
