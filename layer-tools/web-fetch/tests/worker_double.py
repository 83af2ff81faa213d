"""A stand-in for `web_fetch.worker` that speaks its protocol, to drive the pool's failure paths
(the pool is under test, not extraction): a body containing HANG never gets an answer, CRASH
kills the worker with SIGSEGV, GARBLE answers with a line that is not JSON; anything else gets
a small text answer naming the worker's pid."""

import json
import os
import signal
import sys
import time

inp, out = sys.stdin.buffer, sys.stdout.buffer
while True:
    line = inp.readline()
    if not line:
        sys.exit(0)
    body = inp.read(json.loads(line)["size"])
    if b"HANG" in body:
        time.sleep(600)
    if b"CRASH" in body:
        os.kill(os.getpid(), signal.SIGSEGV)
    if b"GARBLE" in body:
        out.write(b"this is not json\n")
        out.flush()
        continue
    text = f"answered by {os.getpid()}".encode()
    out.write(json.dumps({"ok": True, "title": "double", "truncated": False, "size": len(text), "rss_bytes": 0}).encode()
              + b"\n" + text)
    out.flush()
