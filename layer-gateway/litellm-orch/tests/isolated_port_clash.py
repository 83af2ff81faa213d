"""Run inside a private network namespace (`unshare --net --map-root-user`, see test_launcher.py):
hold 127.0.0.1:4000, start the gateway on exactly that address, and report whether it exited with
an error and whether any other listening socket appeared meanwhile (in a fresh namespace, every
other listener is the gateway's).

    python isolated_port_clash.py WORKDIR     -> one JSON line on stdout
"""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import procs

PORT = 4000


def listeners() -> set[tuple[str, int]]:
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A":  # LISTEN
                address, port = fields[1].split(":")
                raw = bytes.fromhex(address)
                raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))  # host byte order per word
                found.add((str(ipaddress.ip_address(raw)), int(port, 16)))
    return found


def main() -> int:
    workdir = Path(sys.argv[1])
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", PORT))
    blocker.listen()
    config = workdir / "router.yaml"
    config.write_text(json.dumps({"model_list": [{"model_name": "jerry-tiny", "litellm_params": {
        "model": "openai/jerry-tiny", "api_base": "http://127.0.0.1:9/v1", "api_key": "x"}}],
        "general_settings": {"master_key": "os.environ/LITELLM_MASTER_KEY"}}))
    env = procs.base_env(LITELLM_MASTER_KEY="sk-isolated", LITELLM_NUM_WORKERS="1", UV_PYTHON_DOWNLOADS="never")
    log = workdir / "gateway.stderr"
    with open(log, "w") as err:  # a file, not a pipe: a stray child cannot keep us waiting on it
        gateway = subprocess.Popen([str(procs.SERVICE / "scripts" / "start.sh"), "--host", "127.0.0.1", "--port",
                                    str(PORT), "--config", str(config)], env=env, cwd=procs.SERVICE,
                                   stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
    others: set[tuple[str, int]] = set()
    deadline = time.monotonic() + 180
    while gateway.poll() is None and time.monotonic() < deadline:
        others |= {entry for entry in listeners() if entry[1] != PORT}
        if others:
            break  # the bug: it listens somewhere else
        time.sleep(0.1)
    code = gateway.poll()
    try:
        os.killpg(gateway.pid, signal.SIGKILL)  # whatever is left of it, in every case
    except ProcessLookupError:
        pass
    gateway.wait(30)
    print(json.dumps({"exit_code": code, "other_listeners": sorted(f"{a}:{p}" for a, p in others),
                      "stderr": log.read_text(errors="replace")[-3000:]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
