"""ServerProcess: healthy start, fail fast with the log tail, the whole group stopped."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from meshkit.testing import ServerFailed, ServerProcess, free_port, status

# A tiny health server, and a child of it in the same group (what `uv run` + a server look like).
SERVER = """
import http.server, subprocess, sys
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
print("child", child.pid, flush=True)
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 404); self.end_headers()
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_starts_waits_for_health_and_stops_the_whole_group(tmp_path: Path) -> None:
    port = free_port()
    with ServerProcess.start("tiny", [sys.executable, "-c", SERVER, str(port)],
                             log=tmp_path / "tiny.log", port=port, timeout=30) as server:
        assert server.alive() and status(f"{server.base}/health") == 200
        deadline = time.monotonic() + 10
        while "child" not in server.log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        child = int(server.log.read_text().split()[1])
        assert _alive(child)
    assert not server.alive()
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child), "the server's child outlived stop(): the group was not signalled"


def test_a_process_that_dies_fails_fast_with_its_log_tail(tmp_path: Path) -> None:
    cmd = [sys.executable, "-c", "import sys; print('config broken: no such model jerry-x'); sys.exit(3)"]
    start = time.monotonic()
    with pytest.raises(ServerFailed) as failed:
        ServerProcess.start("broken", cmd, log=tmp_path / "broken.log", port=free_port(), timeout=60)
    assert time.monotonic() - start < 20  # did not wait for the deadline
    message = str(failed.value)
    assert "broken exited with 3" in message
    assert "config broken: no such model jerry-x" in message


def test_the_deadline_names_the_url_shows_the_log_and_stops_the_process(tmp_path: Path) -> None:
    port = free_port()
    cmd = [sys.executable, "-c", "import time; print('still loading weights', flush=True); time.sleep(600)"]
    with pytest.raises(ServerFailed) as failed:
        ServerProcess.start("slow", cmd, log=tmp_path / "slow.log", port=port, timeout=1.5)
    message = str(failed.value)
    assert f"not healthy on http://127.0.0.1:{port}/health after 2 s" in message
    assert "still loading weights" in message
    pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    leftovers = [p for p in pids if _alive(p) and "still loading weights" in
                 Path(f"/proc/{p}/cmdline").read_bytes().decode(errors="replace")]
    assert leftovers == []
