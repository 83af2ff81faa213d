"""The tests' own file server: serves bytes over HTTP with Range support, and can cut the
connection mid-file; its `/<repo>/resolve/<rev>/<file>` paths answer like the Hugging Face hub
does for `huggingface_hub` (HEAD metadata headers, then GET), so HF_ENDPOINT can point at it.
Standard library only; never reached from outside loopback (or the test's own namespace)."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class Served:
    files: dict[str, bytes]  # URL path -> content
    cut_after: int | None = None  # the next `cuts` GETs stop after this many bytes of their part
    cuts: int = 0
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)  # (method, path, Range)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    served: Served

    def log_message(self, *args: object) -> None:
        pass

    def _lookup(self) -> bytes | None:
        path = self.path.split("?", 1)[0]
        return self.served.files.get(path)

    def do_HEAD(self) -> None:
        self._respond(head=True)

    def do_GET(self) -> None:
        self._respond(head=False)

    def _respond(self, head: bool) -> None:
        rng = self.headers.get("Range")
        self.served.requests.append((self.command, self.path, rng))
        body = self._lookup()
        if body is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        start = 0
        if rng and rng.startswith("bytes=") and rng[6:].endswith("-") and rng[6:-1].isdigit():
            start = int(rng[6:-1])
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
        part = body[start:]
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.send_header("Content-Length", str(len(part)))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("ETag", f'"{hashlib.sha256(body).hexdigest()}"')
        self.send_header("X-Repo-Commit", COMMIT)
        self.end_headers()
        if head:
            return
        if self.served.cuts > 0 and self.served.cut_after is not None:
            self.served.cuts -= 1
            self.wfile.write(part[: self.served.cut_after])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)  # cut: the client sees fewer bytes than announced
            return
        self.wfile.write(part)


class FileServer:
    def __init__(self, served: Served, host: str = "127.0.0.1") -> None:
        handler = type("Handler", (_Handler,), {"served": served})
        self.served = served
        self.httpd = ThreadingHTTPServer((host, 0), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FileServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def hf_path(repo: str, filename: str, revision: str = "main") -> str:
    return f"/{repo}/resolve/{revision}/{filename}"
