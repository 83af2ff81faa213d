"""Health probes against real local HTTP servers."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from homelab.runtime.probe import Target, failed_required, probe_all

from meshkit.testing import free_port


# docs/foundation/running.md: health --json -> [{service, url, ok, status, latency_ms, error,
# required, host}]
JSON_FIELDS = ("service", "url", "ok", "status", "latency_ms", "error", "required", "host", "models_down")


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/slow":
            time.sleep(2)
        if self.path == "/auth" and self.headers.get("Authorization") != "Bearer k1":
            self.send_response(401)
            self.end_headers()
            return
        code = 503 if self.path == "/down" else 200
        body = json.dumps({"status": "ok" if code == 200 else "bad"}).encode()
        if self.path == "/models":
            body = json.dumps({"status": "degraded", "models": {
                "a": {"state": "ok"}, "b": {"state": "restarting", "error": "engine for b died: SIGKILL (signal 9)"},
                "c": {"state": "failed"}, "d": "not a model entry"}}).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    # The timed-out client has gone: a broken pipe in the slow handler is expected.
    httpd.handle_error = lambda *args: None
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_outcomes(server: str) -> None:
    dead = f"http://127.0.0.1:{free_port()}/health"
    results = probe_all([
        Target("ok", f"{server}/health", expect_body='"status": "ok"'),
        Target("status", f"{server}/down"),
        Target("body", f"{server}/health", expect_body="nope"),
        Target("slow", f"{server}/slow", timeout_s=0.3),
        Target("refused", dead, required=False),
        Target("auth", f"{server}/auth", headers={"Authorization": "Bearer k1"}),
        Target("noauth", f"{server}/auth"),
    ])
    by = {r.service: r for r in results}
    assert [r.service for r in results] == ["ok", "status", "body", "slow", "refused", "auth",
                                            "noauth"]
    assert by["ok"].ok and by["ok"].status == 200 and by["ok"].error is None
    assert not by["status"].ok and by["status"].error == "expected HTTP 200, got 503"
    assert not by["body"].ok and "does not contain 'nope'" in by["body"].error
    assert not by["slow"].ok and by["slow"].error == "timed out"
    assert not by["refused"].ok and by["refused"].error == "connection refused"
    assert by["auth"].ok and by["noauth"].status == 401
    assert {r.service for r in failed_required(results)} == {"status", "body", "slow", "noauth"}
    # What `homelab health --json` prints: the documented row shape, values as probed.
    rows = json.loads(json.dumps([r.as_json() for r in results]))
    assert [sorted(row) for row in rows] == [sorted(JSON_FIELDS)] * len(results)
    assert rows[1] == {"service": "status", "url": f"{server}/down", "ok": False, "status": 503,
                       "latency_ms": by["status"].latency_ms, "error": "expected HTTP 200, got 503",
                       "required": True, "host": "", "models_down": {}}
    assert rows[4]["status"] is None and rows[4]["required"] is False


def test_models_a_healthy_service_reports_down(server: str) -> None:
    (r,) = probe_all([Target("backend", f"{server}/models")])
    assert r.ok and r.models_down == {"b": "engine for b died: SIGKILL (signal 9)", "c": "failed"}
    (plain,) = probe_all([Target("plain", f"{server}/health")])
    assert plain.models_down == {}


def test_empty_sweep() -> None:
    assert probe_all([]) == []
