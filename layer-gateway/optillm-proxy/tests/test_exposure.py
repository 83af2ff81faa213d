"""Loopback only: bound to 127.0.0.1, not reachable on this host's other addresses, and the
start script refuses a non-loopback --host. The client key never shows on a command line."""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
from pathlib import Path

import pytest
from conftest import PROXY_KEY, SERVICE, START, clean_env

from meshkit.testing import ServerProcess


def _listening_addresses(port: int) -> set[str]:
    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state = fields[1], fields[3]
            addr_hex, port_hex = local.split(":")
            if state == "0A" and int(port_hex, 16) == port:  # 0A = LISTEN
                raw = bytes.fromhex(addr_hex)
                # /proc stores each 32-bit word in host (little-endian) order.
                raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
                found.add(str(ipaddress.ip_address(raw)))
    return found


def _own_non_loopback_addresses() -> list[str]:
    out = subprocess.run(["ip", "-o", "addr", "show"], capture_output=True, text=True).stdout
    addrs = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) > 3 and parts[2] in ("inet", "inet6"):
            addr = ipaddress.ip_interface(parts[3]).ip
            if not addr.is_loopback and not addr.is_link_local:
                addrs.append(str(addr))
    return addrs


def _command_lines(pgid: int) -> list[str]:
    """The command lines of every process in a process group, as `ps` shows them to anyone."""
    lines = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if os.getpgid(int(proc.name)) == pgid:
                lines.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except (OSError, ProcessLookupError):
            continue  # exited meanwhile
    return lines


def test_client_key_never_on_a_command_line(optillm: ServerProcess) -> None:
    lines = _command_lines(optillm.popen.pid)
    assert any("launch.py" in line for line in lines), lines  # found OptiLLM's own process
    assert not [line for line in lines if PROXY_KEY in line]


def test_launcher_refuses_the_key_as_a_flag() -> None:
    env = clean_env(HOMELAB_OPTILLM_CLIENT_KEY="k")
    proc = subprocess.run(["uv", "run", "--frozen", "python", "scripts/launch.py", "--optillm-api-key", "k"],
                          cwd=SERVICE, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "not as --optillm-api-key" in proc.stderr and "Traceback" not in proc.stderr
    proc = subprocess.run(["uv", "run", "--frozen", "python", "scripts/launch.py"], cwd=SERVICE, env=clean_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "HOMELAB_OPTILLM_CLIENT_KEY is not set" in proc.stderr


def test_listens_on_loopback_only(optillm: ServerProcess) -> None:
    assert _listening_addresses(optillm.port) == {"127.0.0.1"}


def test_not_reachable_on_this_hosts_other_addresses(optillm: ServerProcess) -> None:
    addrs = _own_non_loopback_addresses()
    if not addrs:
        pytest.skip("this host has no non-loopback address to try")
    # Traffic to the host's own addresses never leaves the machine.
    for addr in addrs:
        family = socket.AF_INET6 if ":" in addr else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.settimeout(2)
            assert s.connect_ex((addr, optillm.port)) != 0, f"OptiLLM answered on {addr}"


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10"])
def test_start_script_refuses_non_loopback_host(host: str) -> None:
    env = clean_env(LITELLM_MASTER_KEY="sk-x", OPTILLM_PROXY_KEY="k")
    result = subprocess.run([str(START), "--host", host, "--port", "1"], env=env, capture_output=True,
                            text=True, cwd=SERVICE, timeout=30)
    assert result.returncode == 2
    assert "loopback" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("env,needle", [
    ({"OPTILLM_PROXY_KEY": "k"}, "LITELLM_MASTER_KEY is not set"),
    ({"LITELLM_MASTER_KEY": "sk-x"}, "OPTILLM_PROXY_KEY is not set"),
    ({"LITELLM_MASTER_KEY": "sk-x", "OPTILLM_PROXY_KEY": "sk-oops"}, "must NOT start with 'sk-'"),
])
def test_start_script_refuses_bad_keys(env: dict[str, str], needle: str) -> None:
    result = subprocess.run([str(START), "--port", "1"], env=clean_env(**env), capture_output=True, text=True,
                            cwd=SERVICE, timeout=30)
    assert result.returncode == 2 and needle in result.stderr
