"""`homelab logs --request ID`: one request's lines from every service's log, in time order.

The lines below are in the formats the services really write (copied from the ov-server,
gateway and OptiLLM test runs: `rid=` in brackets; OptiLLM's ` - ` separators; a traceback).
"""

from __future__ import annotations

from pathlib import Path

from homelab.runtime import requestlog

from .conftest import write_mesh

RID = "test-7f3a"
GATEWAY = [
    "2026-12-02 16:01:00,100 INFO litellm_orch.requests [rid=req-other] chat model=jerry-tiny status=200",
    "2026-12-02 16:01:16,540 INFO litellm_orch.requests [rid=test-7f3a] chat model=jerry-tiny-re2 status=200 "
    "stream=False ttft=- duration=0.342s",
]
OPTILLM = [
    "2026-12-02 16:01:16,010 - INFO - optillm [rid=test-7f3a] - Using approach(es) ['re2'], with model jerry-tiny",
    "2026-12-02 16:01:16,400 - INFO - optillm_guard.requests [rid=test-7f3a] - chat model=re2-jerry-tiny status=200",
    "2026-12-02 16:01:16,401 - INFO - werkzeug [rid=test-7f3a] - 127.0.0.1 - - \"POST /v1/chat/completions HTTP/1.1\" 200 -",
]
OV_SERVER_OLD = [  # rotated by supervisord: NAME.log.1 is older than NAME.log
    "2026-12-02 16:01:16,200 ERROR ov_server.app [rid=test-7f3a] unhandled error",
    "Traceback (most recent call last):",
    '  File "x.py", line 1, in <module>',
    "2026-12-02 16:01:16,210 INFO uvicorn.access [rid=test-7f3ab] a longer id is another request",
]
OV_SERVER = [
    "2026-12-02 16:01:16,300 INFO ov_server.requests [rid=test-7f3a] chat model=jerry-tiny status=200",
    "2026-12-02 16:01:16,301 INFO uvicorn.access [rid=-] 127.0.0.1:1 - \"GET /health HTTP/1.1\" 200",
]


def test_trace_orders_lines_of_every_service_and_keeps_tracebacks() -> None:
    logs = {"gw": GATEWAY, "opt": OPTILLM, "ov": OV_SERVER_OLD + OV_SERVER}
    found = [line.render() for line in requestlog.trace(sorted(logs), RID, logs.__getitem__)]
    assert found == [
        "opt: " + OPTILLM[0],
        "ov: " + OV_SERVER_OLD[0], "ov: " + OV_SERVER_OLD[1], "ov: " + OV_SERVER_OLD[2],
        "ov: " + OV_SERVER[0],
        "opt: " + OPTILLM[1], "opt: " + OPTILLM[2],
        "gw: " + GATEWAY[1],
    ]


def test_an_id_matches_only_itself() -> None:
    assert requestlog.matches("x [rid=abc] y", "abc")
    assert not requestlog.matches("x [rid=abcd] y", "abc")
    assert not requestlog.matches("x [rid=xabc] y", "abc")
    assert not requestlog.matches("x abc y", "abc")  # the id as text is not the field
    assert not requestlog.valid_id("a b") and not requestlog.valid_id("") and requestlog.valid_id("req-1:2.3_x")


def test_logs_request_reads_every_service_and_rotated_files(tmp_path: Path) -> None:
    mesh = write_mesh(tmp_path / "repo")
    logs = mesh.root / ".homelab/logs"
    logs.mkdir(parents=True)
    (logs / "fake-gw.log").write_text("\n".join(GATEWAY) + "\n")
    (logs / "fake-backend.log.1").write_text("\n".join(OV_SERVER_OLD) + "\n")
    (logs / "fake-backend.log").write_text("\n".join(OV_SERVER) + "\n")
    result = mesh.run("logs", "--request", RID)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "fake-backend: " + OV_SERVER_OLD[0], "fake-backend: " + OV_SERVER_OLD[1], "fake-backend: " + OV_SERVER_OLD[2],
        "fake-backend: " + OV_SERVER[0], "fake-gw: " + GATEWAY[1]]
    only = mesh.run("logs", "fake-gw", "--request", RID)
    assert only.stdout.splitlines() == ["fake-gw: " + GATEWAY[1]]
    missing = mesh.run("logs", "--request", "req-nothing")
    assert missing.exit_code == 1 and "no log line names request req-nothing" in missing.stderr
    bad = mesh.run("logs", "--request", "a b")
    assert bad.exit_code == 2 and "not a request id" in bad.stderr
    assert mesh.run("logs").exit_code == 2  # neither NAME nor --request
