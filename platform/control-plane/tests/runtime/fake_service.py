"""A stand-in service for runtime tests: GET /health answers 200 {"status":"ok"}.

--child spawns a long-lived child in the same process group (like `uv run` does), so tests can
check that `homelab down` leaves nothing behind. --fail exits at once (a crashing service).
--crash-like-uv runs a child that dies of SIGFPE and exits 128+8, as `uv run` reports it (the
native crash of issue 9). --workers serves from a forked worker (one process group, like
LiteLLM's uvicorn workers): kill only the master and the worker lives on, orphaned, on the port;
a master that finds its port taken listens on a random port on --fallback-bind instead, as
LiteLLM does.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        ok = self.path == "/health"
        body = json.dumps({"status": "ok"} if ok else {"error": "not found"}).encode()
        self.send_response(200 if ok else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt: str, *args: object) -> None:
        try:
            print(fmt % args, flush=True)
        except OSError:  # an orphaned worker's log pipe is gone; it keeps serving regardless
            pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--fail", action="store_true")
    parser.add_argument("--crash-like-uv", action="store_true")
    parser.add_argument("--workers", action="store_true")
    parser.add_argument("--fallback-bind", default="127.0.0.1")
    args = parser.parse_args()
    if args.fail:
        print("fake service: failing on purpose", flush=True)
        sys.exit(3)
    if args.crash_like_uv:
        print("fake service: loading the model", flush=True)
        child = subprocess.run([sys.executable, "-c",
                                "import os, signal; os.kill(os.getpid(), signal.SIGFPE)"])
        sys.exit(128 - child.returncode)  # -8 -> 136, like `uv run`
    if args.child:
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
    try:
        server = ThreadingHTTPServer((args.bind, args.port), Handler)
    except OSError:
        if not args.workers:
            raise
        server = ThreadingHTTPServer((args.fallback_bind, 0), Handler)
        print(f"port {args.port} is taken; listening on {args.fallback_bind}:"
              f"{server.server_address[1]} instead", flush=True)
    print(f"fake service listening on {args.bind}:{args.port}", flush=True)
    if args.workers and os.fork() != 0:
        os.wait()  # the master: its worker serves
        return
    server.serve_forever()


if __name__ == "__main__":
    main()
