"""The CLI surface: output formats, exit codes, the test runner's bookkeeping, the repo itself."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import edit
from test_bad_input import run_cli

from homelab.load.repo import load_repo
from homelab.rules.engine import run_checks
from homelab.testrun import Counts, parse_pytest_summary, suites

REPO = Path(__file__).resolve().parents[3]


def test_check_clean_is_quiet(mesh: Path) -> None:
    assert run_cli(mesh, "check") == (0, "", "")


def test_check_text_and_json(mesh: Path) -> None:
    (mesh / "layer-inference/ov/AGENTS.md").unlink()
    code, out, err = run_cli(mesh, "check")
    assert code == 1
    fix = "write the file (`homelab new` writes all three) with what is true of the service"
    assert out == ("layer-inference/ov/AGENTS.md:1: HL101 AGENTS.md of ov is missing "
                   f"[missing-contract-file]\n    fix: {fix}\n")
    assert "Found 1 violation(s) (HL101); see docs/foundation/rules.md." in err
    code, out, _ = run_cli(mesh, "check", "--json")
    assert code == 1
    assert json.loads(out) == {"count": 1, "bases": ["HEAD"], "violations": [{
        "code": "HL101", "name": "missing-contract-file", "path": "layer-inference/ov/AGENTS.md",
        "line": 1, "message": "AGENTS.md of ov is missing", "fix": fix}]}


def test_check_json_line_numbers(mesh: Path) -> None:
    edit(mesh, "layer-inference/ov/SERVICE_SPEC.md", "bind: 127.0.0.1", "bind: 0.0.0.0")
    _, out, _ = run_cli(mesh, "check", "--json")
    rows = {(v["code"], v["line"]) for v in json.loads(out)["violations"]}
    assert ("HL301", 7) in rows and ("HL303", 9) in rows


def test_pytest_summary_parsing() -> None:
    assert parse_pytest_summary("..\n===== 3 passed, 1 skipped in 2.10s =====\n") == Counts(3, 0, 1)
    assert parse_pytest_summary("2 failed, 5 passed, 1 error in 1.0s") == Counts(5, 3, 0)
    assert parse_pytest_summary("collected 0 items\n") is None


def test_every_service_suite_is_listed() -> None:
    names = [s.name for s in suites(load_repo(REPO))]
    assert names[:2] == ["control-plane", "meshkit"]
    assert {"ov-server", "litellm-orch", "optillm-proxy", "web-fetch", "mesh-status",
            "tiny-agents"} <= set(names)


def test_the_repository_itself_passes_check() -> None:
    violations = run_checks(load_repo(REPO))
    assert violations == [], "\n".join(v.as_text() for v in violations)
