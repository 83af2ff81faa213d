"""`homelab test` itself, on tiny synthetic suites: what makes a run green or red, the wall clock
that kills a hung suite (and says in which test), skips judged against the allow-list."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from homelab.testrun.process import MARKER, marked_processes

HOMELAB = Path(sys.executable).with_name("homelab")  # the console script under test

MESH = """\
name: runnertest
gateway: {service: gw, public_base_url: "http://127.0.0.1:1/v1"}
hosts:
  - {name: local, address: 127.0.0.1, role: test}
"""
SPEC = """\
---
name: {name}
kind: interface
layer: interface
description: Synthetic suite for the test runner's own tests.
host: local
run:
  uv_project: null
  command: [/bin/true]
  autostart: false
test: {{command: [{python}, -m, pytest, -q, -p, no:cacheprovider], timeout_s: {timeout}}}
---
# {name}
"""
SUITES = {
    "passes": "def test_one():\n    assert 1 + 1 == 2\n",
    "fails": "def test_one():\n    assert 1 + 1 == 3\n",
    "breaks": "import module_that_does_not_exist\n\ndef test_one():\n    pass\n",
    "skips": "import pytest\n\ndef test_one():\n    pytest.skip('no reason anyone agreed to')\n",
    "xfails": ("import pytest\n\n@pytest.mark.xfail(reason='known bug')\n"
               "def test_one():\n    assert False\n"),
    "cpu": ("import pytest\n\ndef test_ok():\n    pass\n\n"
            "def test_amx():\n    pytest.skip('CPU lacks AMX (amx_tile)')\n"),
    "empty": "",
    "hangs": textwrap.dedent("""\
        import subprocess, time

        def test_quick():
            pass

        def test_hang():
            # A daemon in its own session, as a real service would be: the runner must find it.
            subprocess.Popen(["setsid", "sleep", "600"])
            time.sleep(600)
        """),
}
HANG_WALL_CLOCK_S = 20  # past pytest's start-up even on a loaded machine
ALLOWED = """\
allowed:
  - suite: cpu
    reason: "^CPU lacks "
    why: test fixture entry, as for the real ISA-family tests
"""


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("runner")
    (root / "mesh").mkdir()
    (root / "mesh/mesh.yaml").write_text(MESH)
    (root / "mesh/ports.yaml").write_text("ports: []\n")
    (root / "mesh/approvals.yaml").write_text("approvals: []\n")
    (root / "platform/testing").mkdir(parents=True)
    (root / "platform/testing/allowed-skips.yaml").write_text(ALLOWED)
    for name, body in SUITES.items():
        folder = root / "layer-interface" / name
        (folder / "tests").mkdir(parents=True)
        timeout = HANG_WALL_CLOCK_S if name == "hangs" else 120
        (folder / "SERVICE_SPEC.md").write_text(SPEC.format(name=name, python=sys.executable,
                                                            timeout=timeout))
        if body:
            (folder / "tests" / f"test_{name}.py").write_text(body)
    return root


def homelab_test(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(HOMELAB), "--repo", str(repo), "test", *args], capture_output=True,
                          text=True, timeout=180, stdin=subprocess.DEVNULL)


def summary_of(out: subprocess.CompletedProcess[str]) -> list[str]:
    return out.stdout.split("=== summary\n", 1)[1].splitlines()


def test_passing_suite_exits_0(repo: Path) -> None:
    out = homelab_test(repo, "passes")
    assert out.returncode == 0, out.stdout + out.stderr
    lines = summary_of(out)
    assert lines[0].startswith("passes") and lines[0].endswith("ok")
    assert "1 passed, 0 failed, 0 skipped  (" in lines[0]
    assert lines[-1] == "1 passed, 0 failed, 0 skipped"
    assert lines[-2].startswith("total run time ")


def test_failing_test_exits_1_and_is_named(repo: Path) -> None:
    out = homelab_test(repo, "fails", "passes")
    assert out.returncode == 1
    lines = summary_of(out)
    assert "0 passed, 1 failed, 0 skipped" in lines[0] and "FAILED (exit 1)" in lines[0]
    assert "fails: failed: tests/test_fails.py::test_one" in lines
    assert "failed suites: fails" in out.stdout
    assert lines[-1] == "1 passed, 1 failed, 0 skipped"


def test_collection_error_exits_1(repo: Path) -> None:
    out = homelab_test(repo, "breaks")
    assert out.returncode == 1
    lines = summary_of(out)
    assert "0 passed, 1 failed, 0 skipped" in lines[0] and "FAILED (exit 2)" in lines[0]
    assert "breaks: failed: tests/test_breaks.py" in lines


def test_suite_that_runs_no_test_exits_1(repo: Path) -> None:
    out = homelab_test(repo, "empty")
    assert out.returncode == 1
    assert "NO TESTS RAN (exit 5)" in summary_of(out)[0]


def test_skip_not_on_the_allow_list_exits_1_with_its_reason(repo: Path) -> None:
    out = homelab_test(repo, "skips")
    assert out.returncode == 1
    lines = summary_of(out)
    assert "0 passed, 0 failed, 1 skipped" in lines[0]
    assert lines[0].endswith("FAILED: 1 skip(s) not allowed")
    assert ("skips: tests/test_skips.py::test_one: no reason anyone agreed to  [NOT ALLOWED]"
            in lines)


def test_xfail_counts_as_a_skip(repo: Path) -> None:
    out = homelab_test(repo, "xfails")
    assert out.returncode == 1
    assert "xfails: tests/test_xfails.py::test_one: xfail known bug  [NOT ALLOWED]" in out.stdout


def test_allowed_skip_exits_0_and_is_still_listed(repo: Path) -> None:
    out = homelab_test(repo, "cpu")
    assert out.returncode == 0, out.stdout
    lines = summary_of(out)
    assert "1 passed, 0 failed, 1 skipped" in lines[0] and lines[0].endswith("ok")
    assert ("cpu: tests/test_cpu.py::test_amx: CPU lacks AMX (amx_tile)  "
            "[allowed: test fixture entry, as for the real ISA-family tests]") in lines


def test_allow_skip_option_accepts_a_skip_for_one_run(repo: Path) -> None:
    out = homelab_test(repo, "skips", "--allow-skip", "^no reason")
    assert out.returncode == 0, out.stdout
    assert "[allowed: accepted for this run with --allow-skip]" in out.stdout
    bad = homelab_test(repo, "skips", "--allow-skip", "(")
    assert bad.returncode == 2 and "error: --allow-skip: '(' is not a valid regular" in bad.stderr


def test_wall_clock_kills_the_suite_and_names_the_test(repo: Path) -> None:
    start = time.monotonic()
    out = homelab_test(repo, "hangs")
    took = time.monotonic() - start
    assert out.returncode == 1
    assert took < 120, f"the suite's {HANG_WALL_CLOCK_S} s wall clock did not fire ({took:.0f} s)"
    lines = summary_of(out)
    assert "1 passed, 1 failed, 0 skipped" in lines[0], lines  # test_quick, then the hung one
    assert "TIMEOUT while running tests/test_hangs.py::test_hang" in lines[0]
    assert "hangs: killed by its wall clock while running tests/test_hangs.py::test_hang" in lines
    # The daemon the test started in its own session was found by the runner's marker, stopped.
    stopped = [line.split("stopped: ", 1)[1] for line in lines
               if "still running after the suite ended, stopped: " in line]
    daemons = [int(s.split()[0]) for s in stopped if s.endswith("sleep 600")]
    assert len(daemons) == 1, lines
    assert not _alive(daemons[0])


def _alive(pid: int) -> bool:
    """Running, not a zombie waiting for whoever adopted it to reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_marker_finds_only_marked_processes() -> None:
    proc = subprocess.Popen(["sleep", "30"], env={MARKER: "t0k3n", "PATH": "/usr/bin:/bin"})
    try:
        assert marked_processes("t0k3n") == [proc.pid]
        assert marked_processes("other") == []
    finally:
        proc.kill()
        proc.wait()
