"""Stand-in for the gateway OptiLLM calls back: records every call, answers OpenAI-shaped.

    python upstream_double.py PORT_FILE

Binds 127.0.0.1 on a free port, writes the port to PORT_FILE. `GET /_calls` returns the recorded
calls (model, n, authorization, x-request-id), `DELETE /_calls` clears them. Answers finish with "stop" so
approaches that reject truncated answers (re2) succeed, except:
- a request with `max_tokens` <= 2 gets answers cut there (`finish_reason: "length"`);
- model `jerry-fail-<status>` gets that HTTP status with an OpenAI-shaped error (the gateway's).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CALLS: list[dict] = []
LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, payload: object) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/_calls":
            with LOCK:
                return self._send(200, CALLS)
        if self.path == "/v1/models":
            return self._send(200, {"object": "list", "data": [{"id": "jerry-tiny", "object": "model"}]})
        self._send(404, {"error": {"message": "not found", "type": "invalid_request_error", "param": None,
                                   "code": None}})

    def do_DELETE(self) -> None:
        with LOCK:
            CALLS.clear()
        self._send(200, [])

    def do_POST(self) -> None:
        data = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
        n = int(data.get("n") or 1)
        with LOCK:
            CALLS.append({"model": data.get("model"), "n": n, "authorization": self.headers.get("authorization"),
                          "request_id": self.headers.get("x-request-id")})
            index = len(CALLS)
        model = str(data.get("model"))
        if model.startswith("jerry-fail-"):
            status = int(model.rsplit("-", 1)[1])
            return self._send(status, {"error": {"message": f"{model} failed on purpose ({status}).",
                                                 "type": "server_error", "param": None, "code": "injected"}})
        cut = isinstance(data.get("max_tokens"), int) and data["max_tokens"] <= 2
        self._send(200, {
            "id": f"chatcmpl-{index}", "object": "chat.completion", "created": int(time.time()),
            "model": data.get("model"),
            "choices": [{"index": i, "message": {"role": "assistant",
                                                 "content": f"Cut{index}.{i}" if cut else f"The answer is 4. ({index}.{i})"},
                         "finish_reason": "length" if cut else "stop"} for i in range(n)],
            "usage": {"prompt_tokens": 10, "completion_tokens": 6 * n, "total_tokens": 10 + 6 * n},
        })


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(sys.argv[1], "w") as fh:
        fh.write(str(server.server_address[1]))
    server.serve_forever()


if __name__ == "__main__":
    main()
