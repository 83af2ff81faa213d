"""meshkit.probe against real loopback servers: each failure has one wording."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from meshkit.probe import Target, failed_required, probe, probe_all


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/slow":
            time.sleep(1.5)
        if self.path == "/garbage":
            self.wfile.write(b"SSH-2.0-not-http\r\n\r\n")
            return
        if self.path == "/auth" and self.headers.get("Authorization") != "Bearer k1":
            self.send_response(401)
            self.end_headers()
            return
        code = 503 if self.path == "/down" else 200
        body = {"status": "ok"}
        if self.path == "/models":
            body = {"models": {"a": {"state": "ok"}, "b": {"state": "failed", "error": "died"}}}
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    httpd.handle_error = lambda *args: None  # the timed-out client has gone
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_each_failure_has_one_wording(base: str) -> None:
    dead = f"127.0.0.1:{closed_port()}"
    got = {r.service: r for r in probe_all([
        Target("ok", f"http://{base}/health", expect_body='"status": "ok"'),
        Target("status", f"http://{base}/down"),
        Target("body", f"http://{base}/health", expect_body="nope"),
        Target("slow", f"http://{base}/slow", timeout_s=0.3),
        Target("refused", f"http://{dead}/health", required=False),
        Target("garbage", f"http://{base}/garbage"),
        Target("scheme", "ftp://x/health"),
        Target("auth", f"http://{base}/auth", headers={"Authorization": "Bearer k1"}),
    ])}
    assert got["ok"].ok and got["ok"].status == 200 and got["ok"].problem is None
    assert got["status"].error == "expected HTTP 200, got 503" and got["status"].status == 503
    assert got["body"].error == "body does not contain 'nope'"
    assert got["slow"].error == "timed out after 0.3 s"
    assert got["refused"].error == f"connection refused by {dead}"
    assert got["refused"].problem == f"http://{dead}/health: connection refused by {dead}"
    assert got["garbage"].error.startswith(f"not an HTTP answer from {base}: ")
    assert got["scheme"].error == "not an http(s) URL: 'ftp://x/health'"
    assert got["auth"].ok
    assert {r.service for r in failed_required(list(got.values()))} == {
        "status", "body", "slow", "garbage", "scheme"}


# docs/foundation/running.md: `homelab health --json` prints these rows.
JSON_FIELDS = ("service", "url", "ok", "status", "latency_ms", "error", "required", "host", "models_down")


def test_the_json_row_of_homelab_health(base: str) -> None:
    result = probe(Target("be", f"http://{base}/down", host="box"))
    row = json.loads(json.dumps(result.as_json()))
    assert row == {"service": "be", "url": f"http://{base}/down", "ok": False, "status": 503,
                   "latency_ms": result.latency_ms, "error": "expected HTTP 200, got 503",
                   "required": True, "host": "box", "models_down": {}}
    assert sorted(row) == sorted(JSON_FIELDS)


def test_a_sweep_takes_about_the_slowest_probe(base: str) -> None:
    start = time.perf_counter()
    results = probe_all([Target(f"s{i}", f"http://{base}/slow", timeout_s=0.5) for i in range(6)])
    assert all(r.error == "timed out after 0.5 s" for r in results)
    assert time.perf_counter() - start < 6 * 0.5  # concurrent, not one after another


def test_models_a_healthy_service_reports_down(base: str) -> None:
    result = probe(Target("be", f"http://{base}/models"))
    assert result.ok and result.models_down == {"b": "died"}
    assert probe_all([]) == []
